"""A real Celery worker runs jobs end to end, survives the loss of its pool process, and cancels."""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

from annotator.images.models import Image
from annotator.jobs.models import Job, JobKind, JobState
from annotator.jobs.services import job_cancel, job_start, jobs_reap_stale
from tests.factories import ProjectFactory
from tests.integration.conftest import wait_for

pytestmark = pytest.mark.worker


def _image_folder(root: Path, count: int, size: int) -> Path:
    """Noise images: slow enough to decode that a test can act while the job runs."""
    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        pixels = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
        PILImage.fromarray(pixels).save(root / f"noise_{index:03d}.png", compress_level=1)
    return root


def test_worker_runs_an_import_job_to_completion(worker, tmp_path):
    project = ProjectFactory()
    folder = _image_folder(tmp_path / "images", 12, 64)
    job = job_start(kind=JobKind.IMPORT, project=project, params={"format": "images", "path": str(folder)}, user=None)

    job = wait_for(job, lambda j: j.is_finished, 60, worker)

    assert job.state == JobState.SUCCEEDED, job.error
    assert job.percent == 100
    assert job.result["created_count"] == 12
    assert Image.objects.filter(project=project).count() == 12
    assert job.attempts == 1


def test_job_survives_its_pool_process_being_killed(worker, tmp_path):
    project = ProjectFactory()
    folder = _image_folder(tmp_path / "images", 40, 900)
    job = job_start(kind=JobKind.IMPORT, project=project, params={"format": "images", "path": str(folder)}, user=None)
    job = wait_for(job, lambda j: j.state == JobState.RUNNING and j.progress_done > 0, 60, worker)

    os.kill(int(job.worker.rsplit(":", 1)[1]), signal.SIGKILL)

    job = wait_for(job, lambda j: j.is_finished, 120, worker)
    assert job.state == JobState.SUCCEEDED, job.error
    assert job.attempts == 2
    # The retried import neither lost nor duplicated images.
    assert Image.objects.filter(project=project).count() == 40


def test_running_job_can_be_cancelled(worker, tmp_path):
    project = ProjectFactory()
    folder = _image_folder(tmp_path / "images", 40, 900)
    job = job_start(kind=JobKind.IMPORT, project=project, params={"format": "images", "path": str(folder)}, user=None)
    job = wait_for(job, lambda j: j.state == JobState.RUNNING and j.progress_done > 0, 60, worker)

    job_cancel(job=job)

    job = wait_for(job, lambda j: j.is_finished, 60, worker)
    assert job.state == JobState.CANCELLED
    assert Image.objects.filter(project=project).count() == 0  # an import is all or nothing


def test_failing_job_reports_its_error(worker, tmp_path):
    project = ProjectFactory()
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "a.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    job = job_start(kind=JobKind.IMPORT, project=project, params={"format": "images", "path": str(folder)}, user=None)

    job = wait_for(job, lambda j: j.is_finished, 60, worker)

    assert job.state == JobState.FAILED
    assert "a.png" in job.error


def test_orphaned_job_is_requeued_by_the_reaper_and_finished(worker, tmp_path, settings):
    project = ProjectFactory()
    folder = _image_folder(tmp_path / "images", 3, 32)
    # A job a vanished worker left "running" a long time ago.
    job = Job.objects.create(
        kind=JobKind.IMPORT, project=project, params={"format": "images", "path": str(folder)},
        state=JobState.RUNNING, attempts=1, worker="gone-host:1",
        heartbeat_at="2020-01-01T00:00:00Z",
    )

    assert jobs_reap_stale() == [job.pk]

    job = wait_for(job, lambda j: j.is_finished, 60, worker)
    assert job.state == JobState.SUCCEEDED
    assert job.attempts == 2


def test_running_worker_is_seen_by_the_readiness_check(worker, client):
    from annotator.jobs.models import WorkerHeartbeat

    deadline = time.monotonic() + 30
    while not WorkerHeartbeat.objects.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    beat = WorkerHeartbeat.objects.get()
    assert "default" in beat.queues and "ml" in beat.queues

    workers = client.get("/readyz").json()["workers"]
    assert workers["ok"] and workers["alive"] == 1 and workers["names"] == [beat.name]

    worker.stop()  # a clean shutdown removes the row
    assert not WorkerHeartbeat.objects.exists()
