"""A real Celery worker backs a project up, restores the upload of its archive, and deletes the original."""
from __future__ import annotations

from urllib.parse import urlencode

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from annotator.annotations.models import Annotation
from annotator.annotations.services import annotations_replace
from annotator.backups.models import ProjectBackup
from annotator.jobs.models import Job, JobState
from annotator.projects.models import Project
from tests.backup_helpers import assert_same_content, project_content
from tests.factories import LabelFactory, MembershipFactory, ProjectFactory, UserFactory, make_images, polygon_geometry, square
from tests.integration.conftest import wait_for

pytestmark = pytest.mark.worker


def _finished(client: APIClient, response, worker) -> Job:  # type: ignore[no-untyped-def]
    assert response.status_code == 202, response.json()
    job = wait_for(Job.objects.get(pk=response.json()["id"]), lambda j: j.is_finished, 90, worker)
    assert job.state == JobState.SUCCEEDED, job.error
    return job


def test_worker_backs_up_restores_and_deletes(worker) -> None:
    project = ProjectFactory()
    label = LabelFactory(project=project, name="cat")
    admin = UserFactory(username="root", is_superuser=True, is_staff=True)
    annotator = UserFactory(username="ann")
    MembershipFactory(project=project, user=annotator, role="annotator")
    image = make_images(project, 2)[0]
    annotations_replace(image=image, user=annotator, base_version=0,
                        items=[{"label": label.pk, "geometry": polygon_geometry(square(2, 2, 20))}])
    client = APIClient()
    client.force_authenticate(admin)

    job = _finished(client, client.post(f"/api/projects/{project.pk}/backups/", {"images": True}, format="json"), worker)
    backup = ProjectBackup.objects.get(pk=job.result["backup"])
    with backup.file.open("rb") as fh:
        archive = fh.read()
    response = client.post("/api/restores/", {"file": SimpleUploadedFile("p.zip", archive), "name": "Elsewhere"}, format="multipart")
    job = _finished(client, response, worker)
    restored = Project.objects.get(name="Elsewhere")
    assert_same_content(project_content(project), project_content(restored))

    job = _finished(client, client.delete(f"/api/projects/{project.pk}/?{urlencode({'confirm': project.name})}"), worker)
    assert not Project.objects.filter(pk=project.pk).exists()
    assert Annotation.objects.filter(image__project=restored).count() == 1
