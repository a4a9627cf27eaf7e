"""Real worker processes share an uploaded import's chunks; a failing chunk leaves nothing behind."""
from __future__ import annotations

import io
import json
import random
import zipfile
from pathlib import Path

import pytest
from django.conf import settings

from annotator.annotations.models import Annotation, Revision
from annotator.datasets.services import dataset_import_start, upload_store
from annotator.images.models import Image
from annotator.images.selectors import image_status_counts
from annotator.jobs.models import Job, JobKind, JobState
from annotator.projects.models import Label
from tests.factories import ProjectFactory, png_bytes
from tests.integration.conftest import WorkerProcess, wait_for

pytestmark = pytest.mark.worker

COUNT = 9


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    # Read by the worker processes the fixtures start: 9 images make 5 chunks.
    monkeypatch.setenv("ANNOTATOR_IMPORT_CHUNK_IMAGES", "2")


def _coco_zip(*, corrupt: int | None = None, seed: int) -> io.BytesIO:
    rng = random.Random(seed)
    images, annotations = [], []
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for k in range(COUNT):
            color = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
            archive.writestr(f"set/images/{k}.png", b"broken" if k == corrupt else png_bytes(48, 32, color=color))
            images.append({"id": k + 1, "file_name": f"{k}.png", "width": 48, "height": 32})
            annotations.append({"id": k + 1, "image_id": k + 1, "category_id": 1, "iscrowd": 0,
                                "segmentation": [[2, 2, 30, 2, 30, 20, 2, 20]]})
        archive.writestr("set/annotations.json", json.dumps({
            "images": images, "annotations": annotations, "categories": [{"id": 1, "name": "box"}]}))
    buffer.seek(0)
    return buffer


def _start(project, data: io.BytesIO) -> Job:  # type: ignore[no-untyped-def]
    stored = upload_store(data, name="set.zip")
    return dataset_import_start(project=project, fmt="coco", user=None, options={"status": "submitted"},
                                upload=stored, filename="set.zip")


def _project_files(project) -> set[str]:  # type: ignore[no-untyped-def]
    root = Path(settings.MEDIA_ROOT) / "projects" / str(project.pk)
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()} if root.is_dir() else set()


def test_two_worker_processes_share_the_chunks_of_an_uploaded_import(worker, request) -> None:  # type: ignore[no-untyped-def]
    helper = WorkerProcess(broker=request.node.callspec.params["worker"])
    try:
        helper.wait_ready()
        project = ProjectFactory()
        job = wait_for(_start(project, _coco_zip(seed=11)), lambda j: j.is_finished, 120, worker)
    finally:
        helper.stop()

    assert job.state == JobState.SUCCEEDED, job.error
    assert (job.result["created_count"], job.result["annotation_count"]) == (COUNT, COUNT)
    assert Revision.objects.filter(image__project=project, version=1).count() == COUNT
    assert {s: n for s, n in image_status_counts(project).items() if n} == {"submitted": COUNT}
    assert not Job.objects.filter(kind=JobKind.IMPORT_CHUNK).exists(), "the chunks' jobs are staging, removed at the end"
    stored = {name for pair in Image.objects.filter(project=project).values_list("file", "thumbnail") for name in pair}
    assert {f"projects/{project.pk}/{name}" for name in _project_files(project)} >= stored


def test_a_chunk_that_fails_on_a_worker_leaves_no_row_no_label_and_no_file(worker) -> None:  # type: ignore[no-untyped-def]
    project = ProjectFactory()
    before = _project_files(project)

    job = wait_for(_start(project, _coco_zip(corrupt=7, seed=12)), lambda j: j.is_finished, 120, worker)

    assert job.state == JobState.FAILED
    assert "7.png" in job.error
    assert not Image.objects.filter(project=project).exists()
    assert not Annotation.objects.filter(image__project=project).exists()
    assert not Label.objects.filter(project=project).exists()
    assert not Job.objects.filter(kind=JobKind.IMPORT_CHUNK).exists()
    assert _project_files(project) == before, "the files of the chunks that had succeeded are removed"
