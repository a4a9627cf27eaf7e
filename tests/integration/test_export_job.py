"""A real Celery worker imports an uploaded COCO zip and exports it again through the REST API."""
from __future__ import annotations

import hashlib
import io
import json
import zipfile

import pytest
from rest_framework.test import APIClient

from annotator.annotations.models import Annotation
from annotator.datasets.models import DatasetVersion
from annotator.jobs.models import Job, JobState
from tests.factories import MembershipFactory, ProjectFactory, UserFactory, png_bytes, upload
from tests.integration.conftest import wait_for

pytestmark = pytest.mark.worker


def _coco_zip() -> bytes:
    hole = {"exterior": [[10, 10], [50, 10], [50, 50], [10, 50]], "holes": [[[20, 20], [40, 20], [40, 40], [20, 40]]]}
    from ml.geometry import polygons_to_rle

    data = {
        "images": [{"id": 1, "file_name": "a.png", "width": 64, "height": 64}],
        "categories": [{"id": 5, "name": "ring"}, {"id": 9, "name": "pair"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 5, "segmentation": polygons_to_rle([hole], width=64, height=64),
             "iscrowd": 0, "bbox": [10, 10, 40, 40], "area": 1200},
            {"id": 2, "image_id": 1, "category_id": 9, "segmentation": [[2, 2, 8, 2, 8, 8], [55, 55, 62, 55, 62, 62]],
             "iscrowd": 0, "bbox": [2, 2, 60, 60], "area": 42.5},
        ],
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("dataset/annotations.json", json.dumps(data))
        archive.writestr("dataset/images/a.png", png_bytes(64, 64))
    return buffer.getvalue()


def test_worker_imports_an_upload_and_exports_a_dataset_version(worker) -> None:
    project = ProjectFactory()
    manager = UserFactory(username="boss")
    MembershipFactory(project=project, user=manager, role="manager")
    client = APIClient()
    client.force_authenticate(manager)

    response = client.post(
        f"/api/projects/{project.pk}/imports/",
        {"file": upload("set.zip", _coco_zip(), "application/zip"), "format": "coco", "status": "accepted"},
        format="multipart",
    )
    assert response.status_code == 202, response.json()
    job = wait_for(Job.objects.get(pk=response.json()["id"]), lambda j: j.is_finished, 90, worker)
    assert job.state == JobState.SUCCEEDED, job.error
    assert Annotation.objects.filter(image__project=project).count() == 2

    response = client.post(f"/api/projects/{project.pk}/exports/", {"format": "coco", "name": "v1"}, format="json")
    assert response.status_code == 202
    job = wait_for(Job.objects.get(pk=response.json()["id"]), lambda j: j.is_finished, 90, worker)
    assert job.state == JobState.SUCCEEDED, job.error
    assert job.percent == 100
    version = DatasetVersion.objects.get(project=project, name="v1")
    download = client.get(f"/api/jobs/{job.pk}/result/")
    body = b"".join(download.streaming_content)
    assert hashlib.sha256(body).hexdigest() == version.sha256
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        coco = json.loads(archive.read("annotations/instances_default.json"))
    ring, pair = sorted(coco["annotations"], key=lambda a: a["category_id"])
    assert isinstance(ring["segmentation"], dict) and ring["iscrowd"] == 0  # the hole survives as RLE
    assert len(pair["segmentation"]) == 2  # two parts, one object
