"""A worker that runs import jobs never loads torch (only a model job does, in its pool process)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

from annotator.jobs.models import JobKind, JobState
from annotator.jobs.services import job_start
from tests.factories import ProjectFactory
from tests.integration.conftest import wait_for

pytestmark = pytest.mark.worker


def _processes(pid: int) -> list[int]:
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [pid] + [p for child in children for p in _processes(int(child))]


def test_worker_that_ran_an_import_has_not_loaded_torch(worker, tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    for index in range(3):
        PILImage.fromarray(np.full((32, 32, 3), index * 40, dtype=np.uint8)).save(folder / f"{index}.png")
    job = job_start(kind=JobKind.IMPORT, project=ProjectFactory(), params={"format": "images", "path": str(folder)}, user=None)

    job = wait_for(job, lambda j: j.is_finished, 60, worker)

    assert job.state == JobState.SUCCEEDED, job.error
    pids = _processes(worker.process.pid)
    assert len(pids) >= 2  # the main process and its pool process
    loaded = [pid for pid in pids if "libtorch" in Path(f"/proc/{pid}/maps").read_text()]
    assert loaded == []
