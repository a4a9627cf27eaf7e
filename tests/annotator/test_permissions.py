"""The permission matrix: every REST endpoint × every persona, written once as one table.

Each row names an endpoint, how to call it, and the status each persona must get. Outsiders (who
manage another project) get 404 on anything project-scoped, members without the needed role get
403, anonymous callers are refused. Two former managers made every job, dataset version, model
version and comment the rows reach: one removed from the project (answered as an outsider), one
demoted to annotator (answered as an annotator who holds no image). A separate test checks that
the table covers every route in annotator/api_urls.py, so a new endpoint cannot ship without a
row here.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.core.files.base import ContentFile
from django.urls import URLPattern

from annotator import api_urls
from annotator.annotations.services import annotations_replace
from annotator.backups.models import ProjectBackup
from annotator.datasets.models import DatasetVersion
from annotator.images.models import ImageStatus
from annotator.jobs.models import Job
from annotator.learning.models import ModelVersion
from annotator.projects.models import Membership
from annotator.review.models import ReviewComment
from tests.factories import ProjectFactory, former_member, make_images, png_bytes, polygon_geometry, square, upload

PERSONAS = ("anonymous", "outsider", "annotator", "reviewer", "manager", "admin", "removed", "demoted")
# Former managers: made the objects the rows reach, then left the project or became annotators.
FORMER = {"removed": None, "demoted": "annotator"}
# DRF answers 403 to anonymous callers when session auth is listed first, 401 with token auth first.
DENIED_ANON = (401, 403)


@dataclass
class Objects:
    """The ids one row's URL and body may refer to."""

    project: int
    image: int
    label: int
    spare_label: int
    membership: int
    job: int
    version: int
    submitted: int  # submitted by the annotator, waiting for review
    in_review: int  # being reviewed by the reviewer
    comment: int
    dataset: int
    model: int
    backup: int


@dataclass
class Row:
    name: str
    method: str
    url: str  # formatted with the fields of Objects
    expect: dict[str, int | tuple[int, ...]]
    body: Callable[[Objects], Any] | None = None
    format: str = "json"
    route: str = ""  # the api_urls route the row exercises
    extra: dict[str, Any] = field(default_factory=dict)


def _expect(outsider: int, annotator: int, reviewer: int, manager: int, admin: int) -> dict[str, Any]:
    return {
        "anonymous": DENIED_ANON, "outsider": outsider, "annotator": annotator, "reviewer": reviewer,
        "manager": manager, "admin": admin, "removed": outsider, "demoted": annotator,
    }


def anyone(status: int) -> dict[str, Any]:
    """Every signed-in user gets `status` (listings filter what they show)."""
    return _expect(status, status, status, status, status)


# The demoted manager is an annotator who holds none of the images: like the reviewer, it may not
# change the image the annotator is working on.
NOT_HIS_IMAGE = {"demoted": 403}


def members(status: int | tuple[int, ...]) -> dict[str, Any]:
    """Every member and the admin get `status`; the outsider gets 404."""
    return _expect(404, status, status, status, status)


def manage(status: int) -> dict[str, Any]:
    """Managers and the admin get `status`; annotators and reviewers 403; the outsider 404."""
    return _expect(404, 403, 403, status, status)


def annotate(status: int) -> dict[str, Any]:
    """The image's annotator, managers and the admin get `status`; reviewers 403; the outsider 404."""
    return _expect(404, status, 403, status, status)


def review(status: int) -> dict[str, Any]:
    """Reviewers, managers and the admin get `status`; annotators 403; the outsider 404."""
    return _expect(404, 403, status, status, status)


def _upload_body(o: Objects) -> dict[str, Any]:
    return {"files": [upload("fresh.png", png_bytes(30, 20, color=(1, 2, 3)))]}


ROWS: list[Row] = [
    Row("list projects", "get", "/api/projects/", anyone(200), route="projects/"),
    Row("create project", "post", "/api/projects/", _expect(403, 403, 403, 403, 201),
        body=lambda o: {"name": "Brand new"}, route="projects/"),
    Row("read project", "get", "/api/projects/{project}/", members(200), route="projects/<int:pk>/"),
    Row("edit project", "patch", "/api/projects/{project}/", manage(200),
        body=lambda o: {"description": "changed"}, route="projects/<int:pk>/"),
    # Deleting is a job; without the confirming name it is refused after the permission check.
    Row("delete project", "delete", "/api/projects/{project}/", manage(400), route="projects/<int:pk>/"),
    Row("project stats", "get", "/api/projects/{project}/stats/", members(200), route="projects/<int:pk>/stats/"),
    Row("list labels", "get", "/api/projects/{project}/labels/", members(200), route="projects/<int:pk>/labels/"),
    Row("add label", "post", "/api/projects/{project}/labels/", manage(201),
        body=lambda o: {"name": "bird"}, route="projects/<int:pk>/labels/"),
    Row("list members", "get", "/api/projects/{project}/members/", members(200), route="projects/<int:pk>/members/"),
    Row("add member", "post", "/api/projects/{project}/members/", manage(201),
        body=lambda o: {"username": "outsider", "role": "annotator"}, route="projects/<int:pk>/members/"),
    Row("invite member", "post", "/api/projects/{project}/invitations/", manage(201),
        body=lambda o: {"invitee": "newcomer@example.org", "role": "annotator"}, route="projects/<int:pk>/invitations/"),
    # Accounts: admins only; your own account: anyone signed in (a wrong old password is a 400).
    Row("list accounts", "get", "/api/users/", _expect(403, 403, 403, 403, 200), route="users/"),
    Row("create account", "post", "/api/users/", _expect(403, 403, 403, 403, 201),
        body=lambda o: {"username": "brand-new"}, route="users/"),
    Row("own account", "get", "/api/me/", anyone(200), route="me/"),
    Row("change own password", "post", "/api/me/password/", anyone(400),
        body=lambda o: {"old_password": "not it", "new_password": "long-enough-1"}, route="me/password/"),
    Row("list images", "get", "/api/projects/{project}/images/", members(200), route="projects/<int:pk>/images/"),
    Row("upload images", "post", "/api/projects/{project}/images/", manage(201),
        body=_upload_body, format="multipart", route="projects/<int:pk>/images/"),
    Row("take next image", "post", "/api/projects/{project}/queue/next/", annotate(200),
        route="projects/<int:pk>/queue/next/"),
    Row("read label", "get", "/api/labels/{label}/", members(200), route="labels/<int:pk>/"),
    Row("edit label", "patch", "/api/labels/{label}/", manage(200),
        body=lambda o: {"color": "#00ff00"}, route="labels/<int:pk>/"),
    Row("delete label", "delete", "/api/labels/{spare_label}/", manage(204), route="labels/<int:pk>/"),
    Row("change member role", "patch", "/api/members/{membership}/", manage(200),
        body=lambda o: {"role": "reviewer"}, route="members/<int:pk>/"),
    Row("remove member", "delete", "/api/members/{membership}/", manage(204), route="members/<int:pk>/"),
    Row("read image", "get", "/api/images/{image}/", members(200), route="images/<int:pk>/"),
    Row("edit image", "patch", "/api/images/{image}/", manage(200),
        body=lambda o: {"priority": 5}, route="images/<int:pk>/"),
    Row("delete image", "delete", "/api/images/{image}/", manage(204), route="images/<int:pk>/"),
    Row("image file", "get", "/api/images/{image}/file/", members(200), route="images/<int:pk>/file/"),
    Row("image thumbnail", "get", "/api/images/{image}/thumbnail/", members(200), route="images/<int:pk>/thumbnail/"),
    Row("submit image", "post", "/api/images/{image}/submit/", {**annotate(200), **NOT_HIS_IMAGE}, route="images/<int:pk>/submit/"),
    Row("release image", "post", "/api/images/{image}/release/", {**annotate(200), **NOT_HIS_IMAGE}, route="images/<int:pk>/release/"),
    Row("read annotations", "get", "/api/images/{image}/annotations/", members(200),
        route="images/<int:pk>/annotations/"),
    Row("save annotations", "put", "/api/images/{image}/annotations/", {**annotate(200), **NOT_HIS_IMAGE},
        body=lambda o: {"version": o.version, "annotations": []}, route="images/<int:pk>/annotations/"),
    Row("list revisions", "get", "/api/images/{image}/revisions/", members(200), route="images/<int:pk>/revisions/"),
    Row("read revision", "get", "/api/images/{image}/revisions/{version}/", members(200),
        route="images/<int:pk>/revisions/<int:version>/"),
    Row("restore revision", "post", "/api/images/{image}/revisions/{version}/restore/", {**annotate(200), **NOT_HIS_IMAGE},
        body=lambda o: {"version": o.version}, route="images/<int:pk>/revisions/<int:version>/restore/"),
    Row("edit access", "get", "/api/images/{image}/access/", members(200), route="images/<int:pk>/access/"),
    Row("image neighbours", "get", "/api/images/{image}/neighbours/", members(200), route="images/<int:pk>/neighbours/"),
    Row("list predictions", "get", "/api/images/{image}/predictions/", members(200),
        route="images/<int:pk>/predictions/"),
    Row("list jobs", "get", "/api/jobs/", anyone(200), route="jobs/"),
    Row("read job", "get", "/api/jobs/{job}/", members(200), route="jobs/<int:pk>/"),
    Row("cancel job", "post", "/api/jobs/{job}/cancel/", manage(200), route="jobs/<int:pk>/cancel/"),
    Row("download job result", "get", "/api/jobs/{job}/result/", members(200), route="jobs/<int:pk>/result/"),
    Row("convert geometry", "post", "/api/geometry/convert/", anyone(200),
        body=lambda o: {"geometry": polygon_geometry(square(1, 1, 8)), "to": "mask", "width": 20, "height": 20},
        route="geometry/convert/"),
    # Review
    Row("take next review", "post", "/api/projects/{project}/review/next/", review(200),
        route="projects/<int:pk>/review/next/"),
    Row("review stats", "get", "/api/projects/{project}/review-stats/", review(200),
        route="projects/<int:pk>/review-stats/"),
    Row("read review state", "get", "/api/images/{submitted}/review/", members(200), route="images/<int:pk>/review/"),
    Row("decide review", "post", "/api/images/{submitted}/review/", review(201),
        body=lambda o: {"decision": "accept", "version": 0}, route="images/<int:pk>/review/"),
    Row("take image for review", "post", "/api/images/{submitted}/review/take/", review(200),
        route="images/<int:pk>/review/take/"),
    Row("release review", "post", "/api/images/{in_review}/review/release/", review(200),
        route="images/<int:pk>/review/release/"),
    Row("list comments", "get", "/api/images/{image}/comments/", members(200), route="images/<int:pk>/comments/"),
    Row("add comment", "post", "/api/images/{image}/comments/", members(201),
        body=lambda o: {"text": "check the tail"}, route="images/<int:pk>/comments/"),
    Row("resolve comment", "patch", "/api/comments/{comment}/", members(200),
        body=lambda o: {"resolved": True}, route="comments/<int:pk>/"),
    # Datasets. Job-starting endpoints get an invalid body: 400 proves the caller got past the
    # permission check (which runs first) without queueing real work.
    Row("import dataset", "post", "/api/projects/{project}/imports/", manage(400),
        body=lambda o: {"format": "nonsense"}, format="multipart", route="projects/<int:pk>/imports/"),
    Row("list exports", "get", "/api/projects/{project}/exports/", members(200), route="projects/<int:pk>/exports/"),
    Row("export dataset", "post", "/api/projects/{project}/exports/", manage(400),
        body=lambda o: {"format": "nonsense"}, route="projects/<int:pk>/exports/"),
    Row("read dataset version", "get", "/api/datasets/{dataset}/", members(200), route="datasets/<int:pk>/"),
    Row("download dataset", "get", "/api/datasets/{dataset}/download/", members(200),
        route="datasets/<int:pk>/download/"),
    # Model-assisted annotation
    Row("box to mask", "post", "/api/assist/box-to-mask/", members(200),
        body=lambda o: {"image": o.image, "box": [20, 20, 40, 30]}, route="assist/box-to-mask/"),
    Row("intelligent scissors", "post", "/api/assist/scissors/", members(200),
        body=lambda o: {"image": o.image, "points": [[10, 10], [60, 40]]}, route="assist/scissors/"),
    # 501 where no SAM checkpoint is configured, 200 where one is: either way past the access check.
    Row("segment anything", "post", "/api/assist/sam/", members((200, 501)),  # type: ignore[arg-type]
        body=lambda o: {"image": o.image}, route="assist/sam/"),
    Row("list models", "get", "/api/projects/{project}/models/", members(200), route="projects/<int:pk>/models/"),
    Row("box engines", "get", "/api/projects/{project}/box-engines/", members(200), route="projects/<int:pk>/box-engines/"),
    Row("pre-annotate", "post", "/api/projects/{project}/preannotate/", manage(400),
        body=lambda o: {"threshold": 5}, route="projects/<int:pk>/preannotate/"),
    Row("train", "post", "/api/projects/{project}/train/", manage(400),
        body=lambda o: {"held_out": 0.9}, route="projects/<int:pk>/train/"),
    # Too few accepted objects to learn from: 400 once past the permission check; none learned yet: 404.
    Row("learn shape", "post", "/api/projects/{project}/learn-shape/", manage(400), route="projects/<int:pk>/learn-shape/"),
    Row("read learned shape", "get", "/api/projects/{project}/learn-shape/", members(404), route="projects/<int:pk>/learn-shape/"),
    Row("read model", "get", "/api/models/{model}/", members(200), route="models/<int:pk>/"),
    Row("activate model", "post", "/api/models/{model}/activate/", manage(200), route="models/<int:pk>/activate/"),
    Row("evaluate model", "post", "/api/models/{model}/evaluate/", manage(400),
        body=lambda o: {"label_map": "not a map"}, route="models/<int:pk>/evaluate/"),
    # Backups, restores, duplicates; archiving. Restoring and duplicating create projects: administrators only.
    Row("archive project", "post", "/api/projects/{project}/archive/", manage(200), route="projects/<int:pk>/archive/"),
    Row("unarchive project", "post", "/api/projects/{project}/unarchive/", manage(409), route="projects/<int:pk>/unarchive/"),
    Row("list backups", "get", "/api/projects/{project}/backups/", manage(200), route="projects/<int:pk>/backups/"),
    Row("start backup", "post", "/api/projects/{project}/backups/", manage(400),
        body=lambda o: {"images": "nonsense"}, route="projects/<int:pk>/backups/"),
    Row("read backup schedule", "get", "/api/projects/{project}/backup-schedule/", manage(200),
        route="projects/<int:pk>/backup-schedule/"),
    Row("set backup schedule", "put", "/api/projects/{project}/backup-schedule/", manage(400),
        body=lambda o: {"every_hours": 0, "keep": 1}, route="projects/<int:pk>/backup-schedule/"),
    Row("duplicate project", "post", "/api/projects/{project}/duplicate/", _expect(404, 403, 403, 403, 400),
        body=lambda o: {"name": "x" * 300}, route="projects/<int:pk>/duplicate/"),
    Row("read backup", "get", "/api/backups/{backup}/", manage(200), route="backups/<int:pk>/"),
    Row("delete backup", "delete", "/api/backups/{backup}/", manage(204), route="backups/<int:pk>/"),
    Row("download backup", "get", "/api/backups/{backup}/download/", manage(200), route="backups/<int:pk>/download/"),
    Row("restore backup", "post", "/api/backups/{backup}/restore/", _expect(404, 403, 403, 403, 400),
        body=lambda o: {"create_users": "nonsense"}, route="backups/<int:pk>/restore/"),
    Row("restore upload", "post", "/api/restores/", _expect(403, 403, 403, 403, 400),
        body=lambda o: {"name": "no file"}, format="multipart", route="restores/"),
    # Quality control (annotator.quality). Time is the caller's own: anyone who may annotate in the
    # project reports and reads it, on any of its images.
    Row("read my time on an image", "get", "/api/images/{image}/time/", annotate(200), route="images/<int:pk>/time/"),
    Row("report time on an image", "post", "/api/images/{image}/time/", annotate(201),
        body=lambda o: {"seconds": 5}, route="images/<int:pk>/time/"),
    # Managers see everybody's time, other members their own.
    Row("time report", "get", "/api/projects/{project}/quality/time/", members(200), route="projects/<int:pk>/quality/time/"),
    # The quality report (and its downloads) is the managers', also on an archived project (EXPORT).
    Row("quality report", "get", "/api/projects/{project}/quality/", manage(200), route="projects/<int:pk>/quality/"),
    Row("quality report as CSV", "get", "/api/projects/{project}/quality/?format=csv", manage(200), route="projects/<int:pk>/quality/"),
    # Ground truth (annotator.groundtruth): managers only. The image is in progress, so marking and
    # unmarking it are refused by the workflow (409) once past the permission check.
    Row("read ground truth", "get", "/api/images/{image}/ground-truth/", manage(404), route="images/<int:pk>/ground-truth/"),
    Row("mark ground truth", "post", "/api/images/{image}/ground-truth/", manage(409), route="images/<int:pk>/ground-truth/"),
    Row("unmark ground truth", "delete", "/api/images/{image}/ground-truth/", manage(409), route="images/<int:pk>/ground-truth/"),
    Row("ground truth attempts", "get", "/api/projects/{project}/ground-truth/attempts/", manage(200),
        route="projects/<int:pk>/ground-truth/attempts/"),
    # An attempt with its objects (managers; tests/annotator/test_quality_report.py checks the roles on a real one).
    Row("ground truth attempt", "get", "/api/ground-truth/attempts/999999/", anyone(404), route="ground-truth/attempts/<int:pk>/"),
    Row("ground truth report", "get", "/api/projects/{project}/quality/ground-truth/", manage(200),
        route="projects/<int:pk>/quality/ground-truth/"),
    Row("consensus of an image", "get", "/api/images/{image}/consensus/", review(200), route="images/<int:pk>/consensus/"),
]

CASES = [pytest.param(row, persona, id=f"{row.name}-{persona}") for row in ROWS for persona in PERSONAS]


@pytest.fixture
def objects(world) -> Objects:
    """An image the annotator is working on (one saved revision), a new one, a spare label, a queued job."""
    image, _untouched = make_images(world.project, 2, width=120, height=80)  # the second waits in the queue
    image.assignee = world.users["annotator"]
    image.status = ImageStatus.IN_PROGRESS
    image.save()
    cat = world.labels[0]
    saved, _, _ = annotations_replace(
        image=image, user=world.users["annotator"], base_version=0,
        items=[{"label": cat.pk, "geometry": polygon_geometry(square(10, 10, 20))}],
    )
    spare = world.project.labels.create(name="unused", color="#123456", order=9)
    membership = Membership.objects.get(project=world.project, user=world.users["annotator2"])
    job = Job.objects.create(kind="export", project=world.project, created_by=world.users["manager"])
    job.result_file.save("result.txt", ContentFile(b"export"), save=True)
    submitted, in_review = _review_images(world)
    comment = ReviewComment.objects.create(image=image, author=world.users["reviewer"], text="fix the ear", version=1)
    dataset = DatasetVersion(project=world.project, name="v1", format="coco", sha256="0" * 64, size=4)
    dataset.file.save("v1.zip", ContentFile(b"PK.."), save=True)
    model = ModelVersion.objects.create(project=world.project, name="m1", kind="coco")
    backup = ProjectBackup(project=world.project, sha256="0" * 64, size=4, format_version=1, created_by=world.users["manager"])
    backup.file.save("b.zip", ContentFile(b"PK.."), save=True)
    for persona, now in FORMER.items():
        world.users[persona] = former_member(world.project, username=persona, now=now)
    return Objects(
        project=world.project.pk, image=image.pk, label=cat.pk, spare_label=spare.pk, membership=membership.pk,
        job=job.pk, version=saved.version, submitted=submitted.pk, in_review=in_review.pk, comment=comment.pk,
        dataset=dataset.pk, model=model.pk, backup=backup.pk,
    )


def _review_images(world):  # type: ignore[no-untyped-def]
    """One image the annotator submitted, one the reviewer is reviewing (distinct pixels from the others)."""
    from annotator.images.services import images_add

    sources = [(f"r{i}.png", lambda i=i: png_bytes(60, 40, color=(200, i, 9))) for i in range(2)]
    submitted, in_review = images_add(project=world.project, sources=sources).created
    submitted.status, submitted.assignee = ImageStatus.SUBMITTED, world.users["annotator"]
    submitted.save()
    in_review.status, in_review.assignee = ImageStatus.IN_REVIEW, world.users["annotator"]
    in_review.reviewer = world.users["reviewer"]
    in_review.save()
    return submitted, in_review


@pytest.mark.parametrize(("row", "persona"), CASES)
def test_endpoint_answers_each_persona_with_the_status_of_its_role(world, objects, row: Row, persona: str) -> None:
    if persona in FORMER:
        _hand_over(objects, world.users[persona])
    client = world.client(persona)
    url = row.url.format(**vars(objects))
    kwargs: dict[str, Any] = {}
    if row.body is not None:
        kwargs = {"data": row.body(objects), "format": row.format}
    response = getattr(client, row.method)(url, **kwargs)
    expected = row.expect[persona]
    allowed = expected if isinstance(expected, tuple) else (expected,)
    assert response.status_code in allowed, (
        f"{row.method.upper()} {url} as {persona}: {response.status_code} "
        f"{getattr(response, 'data', b'') if not hasattr(response, 'streaming_content') else ''}"
    )


def _hand_over(o: Objects, user: Any) -> None:
    """Make `user` the creator (or author) of every object the rows reach that records one."""
    Job.objects.filter(pk=o.job).update(created_by=user)
    DatasetVersion.objects.filter(pk=o.dataset).update(created_by=user)
    ModelVersion.objects.filter(pk=o.model).update(created_by=user)
    ReviewComment.objects.filter(pk=o.comment).update(author=user)
    ProjectBackup.objects.filter(pk=o.backup).update(created_by=user)


def test_permission_table_covers_every_api_route() -> None:
    routes = {str(p.pattern) for p in api_urls.urlpatterns if isinstance(p, URLPattern)}
    routes -= {"schema/", "docs/", "redoc/"}
    covered = {row.route for row in ROWS}
    assert routes - covered == set(), "endpoints without a row in the permission table"
    assert covered - routes == set(), "rows naming routes that no longer exist"


# --- Nobody sees another project's images ---------------------------------------------------


@pytest.fixture
def other_image(world):
    """An image in the project the outsider manages (and our members are not in)."""
    other = ProjectFactory()
    Membership.objects.create(project=other, user=world.users["outsider"], role="manager")
    return make_images(other, 1, width=40, height=30)[0]


def test_image_listing_shows_only_the_projects_own_images(world, objects, other_image) -> None:
    response = world.client("manager").get(f"/api/projects/{world.project.pk}/images/")
    assert response.status_code == 200
    ids = {item["id"] for item in response.data["results"]}
    assert objects.image in ids and len(ids) == 4
    assert other_image.pk not in ids


def test_outsider_listing_its_own_project_never_sees_ours(world, objects, other_image) -> None:
    response = world.client("outsider").get(f"/api/projects/{other_image.project_id}/images/")
    assert response.status_code == 200
    assert [item["id"] for item in response.data["results"]] == [other_image.pk]


def test_project_list_hides_projects_the_user_is_not_in(world, other_image) -> None:
    names = {p["name"] for p in world.client("annotator").get("/api/projects/").data}
    assert world.project.name in names
    assert other_image.project.name not in names
    outsider_names = {p["name"] for p in world.client("outsider").get("/api/projects/").data}
    assert world.project.name not in outsider_names


@pytest.mark.parametrize("suffix", ["", "file/", "thumbnail/", "annotations/", "revisions/", "predictions/"])
def test_members_of_one_project_get_404_for_another_projects_image(world, other_image, suffix: str) -> None:
    for persona in ("annotator", "reviewer", "manager"):
        response = world.client(persona).get(f"/api/images/{other_image.pk}/{suffix}")
        assert response.status_code == 404, persona


def test_manager_cannot_write_annotations_on_another_projects_image(world, other_image) -> None:
    response = world.client("manager").put(
        f"/api/images/{other_image.pk}/annotations/", {"version": 0, "annotations": []}, format="json"
    )
    assert response.status_code == 404
    other_image.refresh_from_db()
    assert other_image.version == 0


def test_job_listing_hides_other_projects_jobs(world, objects) -> None:
    ids = [job["id"] for job in world.client("outsider").get("/api/jobs/").data["results"]]
    assert objects.job not in ids
    assert objects.job in [job["id"] for job in world.client("annotator").get("/api/jobs/").data["results"]]


def test_outsider_404_is_indistinguishable_from_a_missing_project(world) -> None:
    client = world.client("outsider")
    missing = client.get("/api/projects/999999/")
    hidden = client.get(f"/api/projects/{world.project.pk}/")
    assert missing.status_code == hidden.status_code == 404
    assert missing.data == hidden.data
