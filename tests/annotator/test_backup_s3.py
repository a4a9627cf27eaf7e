"""Backups from and to an S3 bucket (moto's in-process S3): the archive is kept in the bucket and restores from it."""
from __future__ import annotations

import pytest

from annotator.annotations.models import Annotation
from annotator.annotations.services import annotations_replace
from annotator.backups.services import BackupOptions, RestoreOptions, backup_create, restore_start
from annotator.images.models import Image
from annotator.jobs.services import job_execute
from annotator.projects.models import Project
from annotator.projects.services import project_delete
from tests.factories import make_images, polygon_geometry, square

moto = pytest.importorskip("moto")


@pytest.fixture
def bucket(settings):  # type: ignore[no-untyped-def]
    import boto3

    with moto.mock_aws():
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="annotator-test")
        settings.STORAGES = {
            **settings.STORAGES,
            "default": {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": {
                "bucket_name": "annotator-test", "region_name": "us-east-1", "access_key": "x", "secret_key": "y",
                "default_acl": None, "file_overwrite": False,
            }},
        }
        yield boto3.client("s3", region_name="us-east-1")


def _keys(client) -> set[str]:  # type: ignore[no-untyped-def]
    return {o["Key"] for o in client.list_objects_v2(Bucket="annotator-test").get("Contents", [])}


def test_backup_restore_and_delete_on_a_bucket(world, bucket) -> None:
    image = make_images(world.project, 2)[0]
    annotations_replace(image=image, user=world.users["annotator"], base_version=0,
                        items=[{"label": world.labels[0].pk, "geometry": polygon_geometry(square(3, 3, 9))}])
    assert any(key.startswith(f"projects/{world.project.pk}/images/") for key in _keys(bucket))

    backup = backup_create(project=world.project, options=BackupOptions(), user=world.users["manager"])
    assert backup.file.name in _keys(bucket)

    job = restore_start(options=RestoreOptions(name="From the bucket"), user=world.users["admin"], backup=backup)
    job_execute(job_id=job.pk)
    job.refresh_from_db()
    assert job.state == "succeeded", job.error
    restored = Project.objects.get(name="From the bucket")
    for original, copy in zip(Image.objects.filter(project=world.project).order_by("id"), Image.objects.filter(project=restored).order_by("id")):
        with original.file.open("rb") as a, copy.file.open("rb") as b:
            assert a.read() == b.read()
        assert copy.file.name in _keys(bucket)
    assert Annotation.objects.filter(image__project=restored).count() == 1

    project_delete(project_id=world.project.pk)
    assert not any(key.startswith(f"projects/{world.project.pk}/") for key in _keys(bucket))
    assert any(key.startswith(f"projects/{restored.pk}/") for key in _keys(bucket))
