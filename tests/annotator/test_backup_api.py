"""Backups, restores, duplicates, schedules, archived and deleted projects through the REST API."""
from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from annotator.annotations.models import Annotation, Revision
from annotator.annotations.services import annotations_replace
from annotator.backups.models import BackupSchedule, ProjectBackup
from annotator.backups.services import backups_start_due
from annotator.images.models import Image
from annotator.jobs.models import Job
from annotator.jobs.services import job_execute
from annotator.projects.models import Membership, Project
from annotator.review.models import ReviewComment
from tests.backup_helpers import add_consensus, add_ground_truth, assert_same_content, project_content
from tests.factories import make_images, png_bytes, polygon_geometry, square, upload


def _run(response) -> Job:  # type: ignore[no-untyped-def]
    assert response.status_code == 202, response.content
    job_execute(job_id=response.json()["id"])
    job = Job.objects.get(pk=response.json()["id"])
    assert job.state == "succeeded", job.error
    return job


@pytest.fixture
def annotated(world):  # type: ignore[no-untyped-def]
    image = make_images(world.project, 2)[0]
    image.assignee = world.users["annotator"]
    image.save()
    annotations_replace(image=image, user=world.users["annotator"], base_version=0,
                        items=[{"label": world.labels[0].pk, "geometry": polygon_geometry(square(2, 2, 10))}])
    ReviewComment.objects.create(image=image, author=world.users["reviewer"], text="look", version=1,
                                 annotation_uid=Annotation.objects.get(image=image).uid)
    return Image.objects.get(pk=image.pk)


def test_manager_backs_up_lists_and_downloads_with_the_checksum(world, annotated) -> None:
    client = world.client("manager")
    job = _run(client.post(f"/api/projects/{world.project.pk}/backups/", {"images": True}, format="json"))
    listing = client.get(f"/api/projects/{world.project.pk}/backups/").json()
    assert [b["id"] for b in listing] == [job.result["backup"]]
    backup = listing[0]
    assert backup["size"] > 0 and len(backup["sha256"]) == 64 and backup["created_at"] and backup["counts"]["images"] == 2
    response = client.get(backup["download_url"])
    data = b"".join(response.streaming_content)
    assert response["X-Checksum-SHA256"] == backup["sha256"] == hashlib.sha256(data).hexdigest()
    assert world.client("annotator").get(f"/api/projects/{world.project.pk}/backups/").status_code == 403


def test_admin_uploads_an_archive_and_gets_a_new_project(world, annotated, tmp_path: Path) -> None:
    manager = world.client("manager")
    backup_job = _run(manager.post(f"/api/projects/{world.project.pk}/backups/", {}, format="json"))
    with ProjectBackup.objects.get(pk=backup_job.result["backup"]).file.open("rb") as fh:
        archive = fh.read()

    refused = manager.post("/api/restores/", {"file": SimpleUploadedFile("b.zip", archive)}, format="multipart")
    assert refused.status_code == 403 and "administrators" in refused.json()["detail"]

    admin = world.client("admin")
    job = _run(admin.post("/api/restores/", {"file": SimpleUploadedFile("b.zip", archive), "name": "Moved",
                                              "map_users": "annotator=annotator2"}, format="multipart"))
    restored = Project.objects.get(name="Moved")
    assert job.result["project"] == restored.pk and Job.objects.get(pk=job.pk).project_id == restored.pk
    assert not default_storage.exists(job.params["upload"]), "the upload is removed once restored"
    assert set(Annotation.objects.filter(image__project=restored).values_list("author__username", flat=True)) == {"annotator2"}


def test_a_refused_upload_names_the_problem_and_creates_nothing(world, annotated) -> None:
    admin = world.client("admin")
    projects = Project.objects.count()
    job_id = admin.post("/api/restores/", {"file": SimpleUploadedFile("junk.zip", b"PK\x03\x04 not a zip")},
                        format="multipart").json()["id"]
    job_execute(job_id=job_id)
    job = Job.objects.get(pk=job_id)
    assert job.state == "failed" and "junk.zip" in job.error and "truncated" in job.error
    assert Project.objects.count() == projects


def test_duplicate_copies_everything_under_a_new_name(world, annotated) -> None:
    response = world.client("manager").post(f"/api/projects/{world.project.pk}/duplicate/", {}, format="json")
    assert response.status_code == 403
    job = _run(world.client("admin").post(f"/api/projects/{world.project.pk}/duplicate/", {"name": "Twin"}, format="json"))
    twin = Project.objects.get(name="Twin")
    assert job.result["project"] == twin.pk
    assert_same_content(project_content(world.project), project_content(twin))
    assert Membership.objects.filter(project=twin).count() == Membership.objects.filter(project=world.project).count()


def test_ground_truth_attempts_scores_and_the_rate_come_back_from_an_uploaded_backup(world) -> None:
    add_ground_truth(world)
    add_consensus(world)
    manager, admin = world.client("manager"), world.client("admin")
    backup_job = _run(manager.post(f"/api/projects/{world.project.pk}/backups/", {}, format="json"))
    with ProjectBackup.objects.get(pk=backup_job.result["backup"]).file.open("rb") as fh:
        archive = fh.read()
    job = _run(admin.post("/api/restores/", {"file": SimpleUploadedFile("b.zip", archive), "name": "Honeypots"}, format="multipart"))
    restored = Project.objects.get(pk=job.result["project"])
    assert job.result["counts"]["ground_truth"] == 2 and job.result["counts"]["ground_truth_attempts"] == 2
    assert job.result["counts"]["replicas"] == 3
    assert_same_content(project_content(world.project), project_content(restored))
    # What a manager reads: the same rate, and the same report once label ids are names.
    assert admin.get(f"/api/projects/{restored.pk}/").json()["ground_truth_rate"] == 0.25

    def report(project: Project) -> dict[str, object]:
        data = admin.get(f"/api/projects/{project.pk}/quality/ground-truth/").json()
        names = dict(project.labels.values_list("pk", "name"))

        def by_name(rows: list[dict[str, object]]) -> list[dict[str, object]]:  # the report orders by id
            return sorted(({**x, "label": names.get(x["label"])} for x in rows), key=lambda x: str(x["label"]))

        return {
            "annotators": [{**row, "per_label": by_name(row["per_label"])} for row in data["annotators"]],
            "labels": by_name(data["labels"]),
            "conflicts": [{k: v for k, v in c.items() if k not in ("image", "truth_label", "attempt_label")} for c in data["conflicts"]],
        }

    original = report(world.project)
    assert original["annotators"] and original["conflicts"]
    assert report(restored) == original


def _writes(world, image: Image) -> dict[str, object]:  # type: ignore[no-untyped-def]
    """One call per kind of change a member can make; each must be refused on an archived project."""
    p = world.project.pk
    comment = ReviewComment.objects.filter(image=image).first()
    return {
        "save annotations": ("annotator", "put", f"/api/images/{image.pk}/annotations/", {"version": image.version, "annotations": []}),
        "restore revision": ("annotator", "post", f"/api/images/{image.pk}/revisions/1/restore/", {"version": image.version}),
        "comment": ("reviewer", "post", f"/api/images/{image.pk}/comments/", {"text": "hello"}),
        "resolve comment": ("annotator", "patch", f"/api/comments/{comment.pk}/", {"resolved": True}),
        "take next image": ("annotator", "post", f"/api/projects/{p}/queue/next/", None),
        "take next review": ("reviewer", "post", f"/api/projects/{p}/review/next/", None),
        "submit": ("annotator", "post", f"/api/images/{image.pk}/submit/", None),
        "edit project": ("manager", "patch", f"/api/projects/{p}/", {"description": "x"}),
        "add label": ("admin", "post", f"/api/projects/{p}/labels/", {"name": "bird"}),
        "add member": ("manager", "post", f"/api/projects/{p}/members/", {"username": "outsider", "role": "annotator"}),
        "edit image": ("admin", "patch", f"/api/images/{image.pk}/", {"priority": 3}),
        "train": ("manager", "post", f"/api/projects/{p}/train/", {}),
    }


def test_an_archived_project_refuses_every_write_with_a_reason_and_still_exports(world, annotated) -> None:
    manager = world.client("manager")
    response = manager.post(f"/api/projects/{world.project.pk}/archive/")
    assert response.status_code == 200 and response.json()["archived_at"]
    before = (Revision.objects.count(), ReviewComment.objects.count(), world.project.labels.count())
    for name, (persona, method, url, body) in _writes(world, annotated).items():
        response = getattr(world.client(persona), method)(url, body, format="json")
        assert response.status_code == 403, (name, response.status_code, response.content)
        assert "archived" in response.json()["detail"], name
    assert (Revision.objects.count(), ReviewComment.objects.count(), world.project.labels.count()) == before
    upload_response = manager.post(f"/api/projects/{world.project.pk}/images/",
                                   {"files": [upload("new.png", png_bytes(9, 9))]}, format="multipart")
    assert upload_response.status_code == 403 and Image.objects.filter(project=world.project).count() == 2
    # Reading, exporting and backing up still work.
    assert world.client("annotator").get(f"/api/images/{annotated.pk}/annotations/").status_code == 200
    _run(manager.post(f"/api/projects/{world.project.pk}/exports/", {"format": "coco", "status": "all"}, format="json"))
    _run(manager.post(f"/api/projects/{world.project.pk}/backups/", {}, format="json"))
    access = world.client("annotator").get(f"/api/images/{annotated.pk}/access/").json()
    assert access["can_edit"] is False and "archived" in access["reason"]
    # Unarchived, the project takes changes again.
    assert manager.post(f"/api/projects/{world.project.pk}/unarchive/").status_code == 200
    assert manager.patch(f"/api/projects/{world.project.pk}/", {"description": "x"}, format="json").status_code == 200


def test_archiving_waits_for_jobs_that_change_the_project(world) -> None:
    Job.objects.create(kind="import", project=world.project, state="running")
    response = world.client("manager").post(f"/api/projects/{world.project.pk}/archive/")
    assert response.status_code == 409 and "import" in response.json()["detail"]


def test_delete_asks_for_the_name_then_removes_rows_and_files(world, annotated) -> None:
    manager = world.client("manager")
    _run(manager.post(f"/api/projects/{world.project.pk}/backups/", {}, format="json"))
    _run(manager.post(f"/api/projects/{world.project.pk}/exports/", {"format": "coco", "status": "all"}, format="json"))
    pk = world.project.pk
    names = [n for pair in Image.objects.filter(project_id=pk).values_list("file", "thumbnail") for n in pair]
    names += list(ProjectBackup.objects.filter(project_id=pk).values_list("file", flat=True))
    assert all(default_storage.exists(n) for n in names)

    wrong = manager.delete(f"/api/projects/{pk}/", {"confirm": "not the name"}, format="json")
    assert wrong.status_code == 400 and world.project.name in wrong.json()["detail"]
    assert world.client("annotator").delete(f"/api/projects/{pk}/", {"confirm": world.project.name}, format="json").status_code == 403

    response = manager.delete(f"/api/projects/{pk}/", {"confirm": world.project.name}, format="json")
    assert response.status_code == 202
    # Hidden at once, refused everything but viewing while the job runs.
    assert world.project.name not in [p["name"] for p in manager.get("/api/projects/").json()]
    assert manager.patch(f"/api/projects/{pk}/", {"description": "x"}, format="json").status_code == 403
    job = _run(response)
    assert not Project.objects.filter(pk=pk).exists()
    assert not Image.objects.filter(project_id=pk).exists() and not Annotation.objects.exists() and not Revision.objects.exists()
    assert not ReviewComment.objects.exists() and not ProjectBackup.objects.exists()
    assert not any(default_storage.exists(n) for n in names) and not default_storage.exists(f"projects/{pk}")
    # The job outlives the project; whoever started it still sees how it went.
    assert job.project_id is None and job.result["images"] == 2
    assert manager.get(f"/api/jobs/{job.pk}/").json()["state"] == "succeeded"


def test_scheduled_backups_start_when_due_and_keep_the_newest(world, annotated) -> None:
    manager = world.client("manager")
    response = manager.put(f"/api/projects/{world.project.pk}/backup-schedule/",
                           {"enabled": True, "every_hours": 6, "keep": 2, "with_images": False}, format="json")
    assert response.status_code == 200 and response.json()["every_hours"] == 6
    now = timezone.now()
    for hours in (0, 7, 14):
        started = backups_start_due(now=now + timedelta(hours=hours))
        assert len(started) == 1
        assert backups_start_due(now=now + timedelta(hours=hours, minutes=1)) == []  # not due again yet
        job_execute(job_id=started[0])
        assert Job.objects.get(pk=started[0]).state == "succeeded"
    kept = ProjectBackup.objects.filter(project=world.project)
    assert kept.count() == 2 and all(b.scheduled and not b.options["images"] for b in kept)
    BackupSchedule.objects.filter(project=world.project).update(enabled=False)
    assert backups_start_due(now=now + timedelta(days=9)) == []
