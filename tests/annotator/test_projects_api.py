"""Projects, labels and members over the API: the rules a manager runs into."""
from __future__ import annotations

from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from annotator.annotations.models import Annotation
from annotator.annotations.services import annotations_replace
from annotator.images.models import Image
from annotator.jobs.models import Job
from annotator.jobs.services import job_execute
from annotator.projects.models import Label, Membership, Project
from tests.factories import make_images, polygon_geometry, square


def _order(project) -> list[str]:
    return [label.name for label in Label.objects.filter(project=project).order_by("order")]


def test_admin_creates_a_project_with_labels_and_becomes_its_manager(world) -> None:
    response = world.client("admin").post(
        "/api/projects/", {"name": "Cells", "labels": [{"name": "nucleus"}, {"name": "membrane", "color": "#00ff00"}]},
        format="json",
    )
    assert response.status_code == 201, response.data
    assert [label["name"] for label in response.data["labels"]] == ["nucleus", "membrane"]
    assert response.data["my_role"] == "admin"
    assert Membership.objects.get(project_id=response.data["id"], user=world.users["admin"]).role == "manager"


def test_project_names_are_unique(world) -> None:
    response = world.client("admin").post("/api/projects/", {"name": world.project.name}, format="json")
    assert response.status_code == 400
    assert "already exists" in response.data["detail"]


def test_guidelines_markdown_is_rendered_without_scripts(world) -> None:
    response = world.client("manager").patch(
        f"/api/projects/{world.project.pk}/", {"guidelines": "**bold** <script>alert(1)</script>"}, format="json"
    )
    assert response.status_code == 200
    assert "<strong>bold</strong>" in response.data["guidelines_html"]
    assert "<script>" not in response.data["guidelines_html"]


def test_moving_a_label_to_a_taken_position_swaps_the_two(world) -> None:
    dog = world.labels[1]
    response = world.client("manager").patch(f"/api/labels/{dog.pk}/", {"order": 0}, format="json")
    assert response.status_code == 200, response.data
    assert _order(world.project) == ["dog", "cat"]


def test_adding_a_label_at_a_position_shifts_the_later_ones(world) -> None:
    response = world.client("manager").post(
        f"/api/projects/{world.project.pk}/labels/", {"name": "bird", "order": 0}, format="json"
    )
    assert response.status_code == 201
    assert _order(world.project) == ["bird", "cat", "dog"]


def test_label_names_are_unique_in_a_project(world) -> None:
    client = world.client("manager")
    assert client.post(f"/api/projects/{world.project.pk}/labels/", {"name": "cat"}, format="json").status_code == 400
    response = client.patch(f"/api/labels/{world.labels[1].pk}/", {"name": "cat"}, format="json")
    assert response.status_code == 400 and "already has a label named 'cat'" in response.data["detail"]


def test_bad_label_colour_is_refused(world) -> None:
    response = world.client("manager").post(
        f"/api/projects/{world.project.pk}/labels/", {"name": "x", "color": "red"}, format="json"
    )
    assert response.status_code == 400
    assert "color" in response.data["detail"]


def test_a_label_in_use_cannot_be_deleted(world, image) -> None:
    annotations_replace(image=image, user=world.users["manager"], base_version=0,
                        items=[{"label": world.labels[0].pk, "geometry": polygon_geometry(square(1, 1, 9))}])
    response = world.client("manager").delete(f"/api/labels/{world.labels[0].pk}/")
    assert response.status_code == 409
    assert Label.objects.filter(pk=world.labels[0].pk).exists()


def test_the_last_manager_can_be_neither_removed_nor_demoted(world) -> None:
    client = world.client("manager")
    membership = Membership.objects.get(project=world.project, user=world.users["manager"])
    assert client.delete(f"/api/members/{membership.pk}/").status_code == 409
    demoted = client.patch(f"/api/members/{membership.pk}/", {"role": "annotator"}, format="json")
    assert demoted.status_code == 409
    assert "at least one manager" in demoted.data["detail"]
    membership.refresh_from_db()
    assert membership.role == "manager"


def test_a_manager_can_step_down_once_there_is_another(world) -> None:
    client = world.client("manager")
    client.post(f"/api/projects/{world.project.pk}/members/", {"username": "reviewer", "role": "manager"}, format="json")
    membership = Membership.objects.get(project=world.project, user=world.users["manager"])
    assert client.patch(f"/api/members/{membership.pk}/", {"role": "annotator"}, format="json").status_code == 200
    # Now an annotator, the former manager can no longer manage (a fresh login: roles are cached per request user).
    client = APIClient()
    client.force_authenticate(get_user_model().objects.get(username="manager"))
    assert client.patch(f"/api/projects/{world.project.pk}/", {"description": "x"}, format="json").status_code == 403


def test_adding_an_unknown_user_is_refused(world) -> None:
    response = world.client("manager").post(
        f"/api/projects/{world.project.pk}/members/", {"username": "ghost", "role": "annotator"}, format="json"
    )
    assert response.status_code == 400
    assert "no user named 'ghost'" in response.data["detail"]


def test_deleting_a_project_removes_its_images_annotations_jobs_and_files(world) -> None:
    image = make_images(world.project, 1, width=50, height=50)[0]
    annotations_replace(image=image, user=world.users["manager"], base_version=0,
                        items=[{"label": world.labels[0].pk, "geometry": polygon_geometry(square(1, 1, 9))}])
    Job.objects.create(kind="export", project=world.project)
    storage, names = image.file.storage, [image.file.name, image.thumbnail.name]
    assert all(storage.exists(name) for name in names)

    response = world.client("manager").delete(f"/api/projects/{world.project.pk}/", {"confirm": world.project.name}, format="json")
    assert response.status_code == 202  # a job: run it here
    job_execute(job_id=response.json()["id"])
    assert not Project.objects.filter(pk=world.project.pk).exists()
    assert not Image.objects.exists() and not Annotation.objects.exists() and not Job.objects.filter(project__isnull=False).exists()
    assert not any(storage.exists(name) for name in names)


def test_image_patch_refuses_an_assignee_who_is_not_a_member(world, image) -> None:
    response = world.client("manager").patch(f"/api/images/{image.pk}/", {"assignee": "outsider"}, format="json")
    assert response.status_code == 400
    assert "not a member" in response.data["detail"]
    image.refresh_from_db()
    assert image.assignee is None


def test_image_listing_filters_by_status_assignee_and_name(world) -> None:
    a, b, c = make_images(world.project, 3)
    b.status, b.assignee = "in_progress", world.users["annotator"]
    b.save()
    client = world.client("reviewer")
    url = f"/api/projects/{world.project.pk}/images/"

    def ids(**params) -> list[int]:
        return [item["id"] for item in client.get(url, params).data["results"]]

    assert ids() == [a.pk, b.pk, c.pk]
    assert ids(status="in_progress") == [b.pk]
    assert ids(status="new,in_progress") == [a.pk, b.pk, c.pk]
    assert ids(assignee="annotator") == [b.pk]
    assert ids(assignee="none") == [a.pk, c.pk]
    assert ids(search="img2") == [c.pk]
