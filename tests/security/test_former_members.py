"""Former members: a manager removed from a project, or demoted, keeps nothing of the old role.

Reproduces the report: a removed manager still read, listed and downloaded the export job it had
started, and a creator demoted to annotator could still cancel it.
"""
from __future__ import annotations

import pytest
from django.core.files.base import ContentFile
from rest_framework.test import APIClient

from annotator.datasets.models import DatasetVersion
from annotator.jobs.models import Job, JobState
from annotator.learning.models import ModelVersion
from annotator.projects.models import Membership
from annotator.review.models import ReviewComment
from tests.factories import make_images

pytestmark = pytest.mark.django_db


def _client(user) -> APIClient:  # type: ignore[no-untyped-def]
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def creator(world):
    """A second manager who starts an export (through the API) and leaves a zip behind."""
    user = world.users["annotator2"]
    Membership.objects.filter(project=world.project, user=user).update(role="manager")
    job = Job.objects.create(kind="export", project=world.project, created_by=user, state=JobState.QUEUED)
    job.result_file.save("export.zip", ContentFile(b"PK.."), save=True)
    return user, job


def _leave(world, user, *, now: str | None) -> None:  # type: ignore[no-untyped-def]
    """The project's other manager removes `user` or changes its role, through the API."""
    membership = Membership.objects.get(project=world.project, user=user)
    manager = _client(world.users["manager"])
    if now is None:
        response = manager.delete(f"/api/members/{membership.pk}/")
        assert response.status_code == 204
    else:
        response = manager.patch(f"/api/members/{membership.pk}/", {"role": now}, format="json")
        assert response.status_code == 200


def test_removed_creator_can_no_longer_read_list_or_download_its_job(world, creator) -> None:
    user, job = creator
    client = _client(user)
    assert client.get(f"/api/jobs/{job.pk}/").status_code == 200  # while still a manager

    _leave(world, user, now=None)

    assert client.get(f"/api/jobs/{job.pk}/").status_code == 404
    assert client.get(f"/api/jobs/{job.pk}/result/").status_code == 404
    assert job.pk not in [j["id"] for j in client.get("/api/jobs/").json()["results"]]
    assert client.post(f"/api/jobs/{job.pk}/cancel/").status_code == 404


def test_demoted_creator_cannot_cancel_its_job_any_more(world, creator) -> None:
    user, job = creator
    client = _client(user)
    assert client.get(f"/api/jobs/{job.pk}/").status_code == 200

    _leave(world, user, now="annotator")

    response = client.post(f"/api/jobs/{job.pk}/cancel/")
    assert response.status_code == 403
    job.refresh_from_db()
    assert job.state == JobState.QUEUED and not job.cancel_requested
    # As an annotator it still sees the project's jobs, as every annotator does.
    assert client.get(f"/api/jobs/{job.pk}/").status_code == 200


def test_removed_member_loses_what_it_made_in_the_project(world) -> None:
    user = world.users["reviewer"]
    image = make_images(world.project, 1)[0]
    comment = ReviewComment.objects.create(image=image, author=user, text="my note", version=0)
    dataset = DatasetVersion(project=world.project, name="v1", format="coco", sha256="0" * 64, size=4, created_by=user)
    dataset.file.save("v1.zip", ContentFile(b"PK.."), save=True)
    model = ModelVersion.objects.create(project=world.project, name="m1", kind="coco", created_by=user)

    _leave(world, user, now=None)

    client = _client(user)
    for url in (f"/api/datasets/{dataset.pk}/", f"/api/datasets/{dataset.pk}/download/", f"/api/models/{model.pk}/",
                f"/api/images/{image.pk}/revisions/", f"/api/images/{image.pk}/predictions/",
                f"/api/images/{image.pk}/comments/"):
        assert client.get(url).status_code == 404, url
    assert client.patch(f"/api/comments/{comment.pk}/", {"resolved": True}, format="json").status_code == 404
