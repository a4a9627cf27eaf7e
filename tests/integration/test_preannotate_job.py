"""Pre-annotation on a real Celery worker: duplicated deliveries never duplicate predictions, cancel, corrupt files."""
from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings

from annotator.annotations.models import Prediction
from annotator.images.models import Image
from annotator.images.services import images_add
from annotator.jobs.models import Job, JobState
from annotator.jobs.services import job_cancel, job_enqueue
from annotator.learning.params import PreannotateParams
from annotator.learning.services import preannotate_start
from ml.synthetic import generate_dataset
from tests.annotator.test_learning import png, tiny_checkpoint
from tests.factories import LabelFactory, ProjectFactory
from tests.integration.conftest import wait_for

pytestmark = pytest.mark.worker


def _project_with_images(count: int, size: tuple[int, int]):  # type: ignore[no-untyped-def]
    project = ProjectFactory()
    LabelFactory(project=project, name="date", order=0)
    samples = generate_dataset(count, seed=11, size=size, objects=(1, 3))
    sources = [(f"shape_{i:03d}.png", lambda data=png(s.image): data) for i, s in enumerate(samples)]
    return project, images_add(project=project, sources=sources).created


def _checkpoint(name: str, **kwargs) -> Path:  # type: ignore[no-untyped-def]
    return tiny_checkpoint(Path(settings.ANNOTATOR_MODEL_DIR) / "it" / name, ["date", "apple"], [4.0, 3.9], **kwargs)


def test_preannotation_delivered_twice_creates_predictions_once(worker):
    project, images = _project_with_images(6, (90, 120))
    checkpoint = _checkpoint("twice.pt")
    job = preannotate_start(project=project, user=None, params=PreannotateParams(model=str(checkpoint), threshold=0.3, batch_size=4))
    job_enqueue(job=job, queue="ml")  # the broker hands the same job to the worker a second time

    job = wait_for(job, lambda j: j.is_finished, 90, worker)
    assert job.state == JobState.SUCCEEDED, job.error
    first = set(Prediction.objects.filter(image__project=project).values_list("pk", flat=True))
    assert len(first) == job.result["predictions"] > 0
    assert job.result["predicted_images"] == 6
    assert job.message == job.result["summary"]  # the jobs table's line: proposals, duplicates suppressed
    assert not Image.objects.filter(project=project, uncertainty__isnull=True).exists()

    # The worker died after saving everything but before recording success: the job runs again.
    Job.objects.filter(pk=job.pk).update(state=JobState.QUEUED)
    job_enqueue(job=job, queue="ml")
    job = wait_for(job, lambda j: j.is_finished, 90, worker)
    assert job.state == JobState.SUCCEEDED, job.error
    assert job.attempts == 2
    rows = Prediction.objects.filter(image__project=project)
    assert rows.count() == len(first)
    assert first.isdisjoint(rows.values_list("pk", flat=True))  # rewritten, not added to


def test_running_preannotation_can_be_cancelled(worker):
    project, images = _project_with_images(24, (240, 320))
    checkpoint = _checkpoint("slow.pt", size=320, proposals=40)
    job = preannotate_start(project=project, user=None, params=PreannotateParams(model=str(checkpoint), threshold=0.3, batch_size=1))
    job = wait_for(job, lambda j: j.state == JobState.RUNNING and j.progress_done > 0 or j.is_finished, 90, worker)
    assert not job.is_finished, "the job finished before it could be cancelled; make it slower"

    job_cancel(job=job)

    job = wait_for(job, lambda j: j.is_finished, 60, worker)
    assert job.state == JobState.CANCELLED
    done = Image.objects.filter(project=project, predictions__isnull=False).distinct().count()
    assert 0 < done < len(images)


def test_a_corrupt_image_is_reported_and_does_not_stop_the_job(worker):
    project, images = _project_with_images(5, (90, 120))
    broken = images[1]
    Path(broken.file.path).write_bytes(b"this is not a png at all")
    job = preannotate_start(project=project, user=None, params=PreannotateParams(
        model=str(_checkpoint("corrupt.pt")), threshold=0.3, batch_size=2))

    job = wait_for(job, lambda j: j.is_finished, 90, worker)

    assert job.state == JobState.SUCCEEDED, job.error
    assert job.result["predicted_images"] == 4
    [error] = job.result["errors"]
    assert error["image"] == broken.pk and error["file"] == broken.original_name and error["reason"]
    predicted = set(Prediction.objects.filter(image__project=project).values_list("image", flat=True))
    assert predicted == {i.pk for i in images if i.pk != broken.pk}
