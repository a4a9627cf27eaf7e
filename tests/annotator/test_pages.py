"""The server-rendered pages, as each persona sees them.

Members see the pages of their project, outsiders get 404, anonymous visitors are sent to the log
in page, and only managers see (and may use) the manage actions. Bad form input comes back as a
visible error message, never as a server error.
"""
from __future__ import annotations

import pytest
from django.test import Client

from annotator.images.models import ImageStatus
from annotator.projects.models import Label, Membership, Project
from tests.factories import make_images

MEMBERS = ("annotator", "reviewer", "manager", "admin")


@pytest.fixture
def browser(world):
    """A Django test client logged in as `persona` (a session, as a browser would have)."""

    def login(persona: str) -> Client:
        client = Client()
        if persona != "anonymous":
            client.force_login(world.users[persona])
        return client

    return login


def _html(response) -> str:
    return response.content.decode()


def test_login_page_renders_and_a_correct_password_logs_in(world) -> None:
    client = Client()
    page = client.get("/login/")
    assert page.status_code == 200 and "Log in" in _html(page)
    response = client.post("/login/", {"username": "annotator", "password": "pass-word-123"})
    assert response.status_code == 302 and response["Location"] == "/"
    assert world.project.name in _html(client.get("/"))


def test_wrong_password_shows_an_error_on_the_login_page(world) -> None:
    response = Client().post("/login/", {"username": "annotator", "password": "nope"})
    assert response.status_code == 200
    assert "did not match" in _html(response)


def test_logout_ends_the_session(browser) -> None:
    client = browser("annotator")
    assert client.post("/logout/").status_code == 302
    assert client.get("/").status_code == 302


@pytest.mark.parametrize("path", ["/", "/projects/{p}/", "/projects/{p}/images/", "/projects/{p}/labels/"])
def test_anonymous_visitors_are_sent_to_the_login_page(world, path: str) -> None:
    response = Client().get(path.format(p=world.project.pk))
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


@pytest.mark.parametrize("persona", MEMBERS)
def test_project_list_shows_the_project_to_its_members(world, browser, persona: str) -> None:
    response = browser(persona).get("/")
    assert response.status_code == 200
    assert world.project.name in _html(response)


def test_project_list_hides_the_project_from_outsiders(world, browser) -> None:
    response = browser("outsider").get("/")
    assert response.status_code == 200
    assert world.project.name not in _html(response)


PROJECT_PAGES = ["/projects/{p}/", "/projects/{p}/images/", "/projects/{p}/labels/", "/projects/{p}/members/"]


@pytest.mark.parametrize("persona", MEMBERS)
@pytest.mark.parametrize("path", PROJECT_PAGES)
def test_members_see_the_project_pages(world, browser, persona: str, path: str) -> None:
    response = browser(persona).get(path.format(p=world.project.pk))
    assert response.status_code == 200
    assert world.project.name in _html(response)


@pytest.mark.parametrize(
    "path", [*PROJECT_PAGES, "/projects/{p}/upload/", "/projects/{p}/edit/", "/images/{i}/edit/"]
)
def test_outsiders_get_404_on_every_project_page(world, browser, image, path: str) -> None:
    response = browser("outsider").get(path.format(p=world.project.pk, i=image.pk))
    assert response.status_code == 404
    assert world.project.name not in _html(response)


def test_dashboard_shows_counts_by_status_and_people(world, browser) -> None:
    images = make_images(world.project, 3)
    images[0].status, images[0].assignee = ImageStatus.IN_PROGRESS, world.users["annotator"]
    images[0].save()
    html = _html(browser("reviewer").get(f"/projects/{world.project.pk}/"))
    assert 'data-testid="count-total">3<' in html
    assert 'data-testid="count-new">2<' in html
    assert 'data-testid="count-in_progress">1<' in html
    assert "<td>annotator</td>" in html


def test_only_people_who_annotate_see_the_annotate_button(world, browser) -> None:
    assert "start-annotating" in _html(browser("annotator").get(f"/projects/{world.project.pk}/"))
    assert "start-annotating" not in _html(browser("reviewer").get(f"/projects/{world.project.pk}/"))


def test_image_list_filters_by_status_and_assignee(world, browser) -> None:
    new, mine, other = make_images(world.project, 3)
    mine.status, mine.assignee = ImageStatus.IN_PROGRESS, world.users["annotator"]
    mine.save()
    other.status, other.assignee = ImageStatus.SUBMITTED, world.users["annotator2"]
    other.save()
    client = browser("manager")
    url = f"/projects/{world.project.pk}/images/"
    assert _html(client.get(url)).count('data-testid="image-tile"') == 3
    in_progress = _html(client.get(url, {"status": "in_progress"}))
    assert in_progress.count('data-testid="image-tile"') == 1 and f"/images/{mine.pk}/edit/" in in_progress
    by_person = _html(client.get(url, {"assignee": "annotator2"}))
    assert by_person.count('data-testid="image-tile"') == 1 and f"/images/{other.pk}/edit/" in by_person
    nobody = _html(client.get(url, {"assignee": "none"}))
    assert nobody.count('data-testid="image-tile"') == 1 and f"/images/{new.pk}/edit/" in nobody
    assert f'/api/images/{new.pk}/thumbnail/' in nobody


def test_annotators_see_no_manage_actions(world, browser) -> None:
    client = browser("annotator")
    labels = _html(client.get(f"/projects/{world.project.pk}/labels/"))
    assert "Add a label" not in labels and 'value="delete"' not in labels
    members = _html(client.get(f"/projects/{world.project.pk}/members/"))
    assert "Add or change a member" not in members and 'value="remove"' not in members
    dashboard = _html(client.get(f"/projects/{world.project.pk}/"))
    assert f"/projects/{world.project.pk}/upload/" not in dashboard
    assert f"/projects/{world.project.pk}/edit/" not in dashboard


def test_managers_see_the_manage_actions(world, browser) -> None:
    client = browser("manager")
    assert "Add a label" in _html(client.get(f"/projects/{world.project.pk}/labels/"))
    assert "Add or change a member" in _html(client.get(f"/projects/{world.project.pk}/members/"))
    assert f"/projects/{world.project.pk}/upload/" in _html(client.get(f"/projects/{world.project.pk}/"))


@pytest.mark.parametrize("persona", ["annotator", "reviewer"])
def test_non_managers_cannot_post_to_labels_or_members(world, browser, persona: str) -> None:
    client = browser(persona)
    label = world.labels[0]
    assert client.post(f"/projects/{world.project.pk}/labels/", {"action": "add", "name": "x", "color": "#000000"}).status_code == 403
    assert client.post(f"/projects/{world.project.pk}/labels/", {"action": "delete", "label": label.pk}).status_code == 403
    assert client.post(f"/projects/{world.project.pk}/members/", {"username": persona, "role": "manager"}).status_code == 403
    assert Label.objects.filter(pk=label.pk).exists() and not Label.objects.filter(name="x").exists()
    assert Membership.objects.get(project=world.project, user=world.users[persona]).role == persona


@pytest.mark.parametrize("persona", ["annotator", "reviewer"])
def test_non_managers_cannot_open_upload_or_settings(world, browser, persona: str) -> None:
    client = browser(persona)
    assert client.get(f"/projects/{world.project.pk}/upload/").status_code == 403
    assert client.get(f"/projects/{world.project.pk}/edit/").status_code == 403
    assert client.post(f"/projects/{world.project.pk}/edit/", {"name": "hijacked", "required_accepts": 1, "queue_order": "priority"}).status_code == 403
    world.project.refresh_from_db()
    assert world.project.name != "hijacked"


def test_upload_page_has_the_file_input_and_progress_bar(world, browser) -> None:
    html = _html(browser("manager").get(f"/projects/{world.project.pk}/upload/"))
    assert 'data-testid="upload-input"' in html and 'id="upload-progress"' in html
    assert f"/api/projects/{world.project.pk}/images/" in html


def test_editor_shell_carries_the_image_and_the_role(world, browser, image) -> None:
    html = _html(browser("annotator").get(f"/images/{image.pk}/edit/"))
    assert f'data-image-id="{image.pk}"' in html
    assert 'data-role="annotator"' in html and 'data-mode="annotate"' in html


def test_annotate_next_button_opens_the_editor_on_a_new_image(world, browser, image) -> None:
    response = browser("annotator").post(f"/projects/{world.project.pk}/queue/next/")
    assert response.status_code == 302 and response["Location"] == f"/images/{image.pk}/edit/"
    image.refresh_from_db()
    assert image.assignee == world.users["annotator"]


def test_annotate_next_with_an_empty_queue_says_so(world, browser) -> None:
    response = browser("annotator").post(f"/projects/{world.project.pk}/queue/next/", follow=True)
    assert "Your queue is empty" in _html(response)


def test_admin_creates_a_project_with_labels_through_the_form(world, browser) -> None:
    client = browser("admin")
    assert client.get("/projects/new/").status_code == 200
    response = client.post("/projects/new/", {
        "name": "Street scenes", "description": "cars", "guidelines": "# Be precise", "required_accepts": 2,
        "queue_order": "priority", "labels": "car #ff0000\ntraffic light\n",
    })
    project = Project.objects.get(name="Street scenes")
    assert response.status_code == 302 and response["Location"] == f"/projects/{project.pk}/"
    assert [(label.name, label.color) for label in project.labels.all()][0] == ("car", "#ff0000")
    assert [label.name for label in project.labels.all()] == ["car", "traffic light"]
    assert project.required_accepts == 2
    assert project.memberships.get(user=world.users["admin"]).role == "manager"
    assert "Be precise" in _html(client.get(f"/projects/{project.pk}/"))


def test_non_admins_cannot_create_projects(world, browser) -> None:
    response = browser("manager").post("/projects/new/", {"name": "Mine", "required_accepts": 1, "queue_order": "priority"})
    assert response.status_code == 403
    assert not Project.objects.filter(name="Mine").exists()


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"name": "", "required_accepts": 1, "queue_order": "priority"}, "This field is required"),
        ({"name": "Bad colour", "required_accepts": 1, "queue_order": "priority", "labels": "car #zzzzzz"}, "not a #rrggbb colour"),
        ({"name": "Twice", "required_accepts": 1, "queue_order": "priority", "labels": "car\ncar"}, "must be unique"),
        ({"name": "Zero", "required_accepts": 0, "queue_order": "priority"}, "greater than or equal to 1"),
    ],
)
def test_bad_project_form_input_shows_an_error_and_creates_nothing(world, browser, fields: dict, message: str) -> None:
    count = Project.objects.count()
    response = browser("admin").post("/projects/new/", fields)
    assert response.status_code == 200
    assert message in _html(response) and 'role="alert"' in _html(response)
    assert Project.objects.count() == count


def test_creating_a_project_with_a_taken_name_shows_an_error(world, browser) -> None:
    response = browser("admin").post("/projects/new/", {"name": world.project.name, "required_accepts": 1, "queue_order": "priority"})
    assert response.status_code == 200
    assert "already exists" in _html(response)


def test_manager_edits_project_settings(world, browser) -> None:
    response = browser("manager").post(f"/projects/{world.project.pk}/edit/", {
        "name": "Renamed", "guidelines": "new rules", "required_accepts": 3, "queue_order": "uncertainty",
    })
    assert response.status_code == 302
    world.project.refresh_from_db()
    assert (world.project.name, world.project.required_accepts, world.project.queue_order) == ("Renamed", 3, "uncertainty")


def _labels(project) -> list[tuple[str, str]]:
    return [(label.name, label.color) for label in project.labels.all()]


def test_manager_adds_edits_reorders_and_deletes_labels(world, browser) -> None:
    client = browser("manager")
    url = f"/projects/{world.project.pk}/labels/"
    added = client.post(url, {"action": "add", "name": "bird", "color": "#00ff00"}, follow=True)
    assert "Label added" in _html(added)
    assert _labels(world.project) == [("cat", "#ff0000"), ("dog", "#ff0000"), ("bird", "#00ff00")]

    bird = Label.objects.get(project=world.project, name="bird")
    client.post(url, {"action": "edit", "label": bird.pk, "name": "parrot", "color": "#0000ff"})
    assert _labels(world.project)[-1] == ("parrot", "#0000ff")

    client.post(url, {"action": "up", "label": bird.pk})
    assert [name for name, _ in _labels(world.project)] == ["cat", "parrot", "dog"]
    client.post(url, {"action": "up", "label": bird.pk})
    client.post(url, {"action": "up", "label": bird.pk})  # already first: stays
    assert [name for name, _ in _labels(world.project)] == ["parrot", "cat", "dog"]
    client.post(url, {"action": "down", "label": world.labels[1].pk})  # dog is last: stays
    assert [name for name, _ in _labels(world.project)] == ["parrot", "cat", "dog"]

    deleted = client.post(url, {"action": "delete", "label": bird.pk}, follow=True)
    assert "Label deleted" in _html(deleted)
    assert [name for name, _ in _labels(world.project)] == ["cat", "dog"]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"action": "add", "name": "cat", "color": "#00ff00"}, "already has a label named"),
        ({"action": "add", "name": "", "color": "#00ff00"}, "This field is required"),
        ({"action": "add", "name": "x", "color": "red"}, "Enter a valid value"),
        ({"action": "edit", "name": "dog", "color": "#00ff00"}, "already has a label named"),
        ({"action": "edit", "name": "cat", "color": "nope"}, "Enter a valid value"),
    ],
)
def test_bad_label_input_shows_an_error_message(world, browser, fields: dict, message: str) -> None:
    before = _labels(world.project)
    response = browser("manager").post(
        f"/projects/{world.project.pk}/labels/", {**fields, "label": world.labels[0].pk}, follow=True
    )
    assert response.status_code == 200
    assert message in _html(response)
    assert _labels(world.project) == before


def test_deleting_a_label_in_use_shows_why_it_cannot(world, browser, image) -> None:
    from annotator.annotations.services import annotations_replace
    from tests.factories import polygon_geometry, square

    annotations_replace(image=image, user=world.users["manager"], base_version=0,
                        items=[{"label": world.labels[0].pk, "geometry": polygon_geometry(square(1, 1, 9))}])
    response = browser("manager").post(
        f"/projects/{world.project.pk}/labels/", {"action": "delete", "label": world.labels[0].pk}, follow=True
    )
    assert "is used by 1 annotations" in _html(response)
    assert Label.objects.filter(pk=world.labels[0].pk).exists()


@pytest.mark.parametrize("label", ["not-a-number", "", "999999"])
def test_label_actions_on_a_missing_label_are_404(world, browser, label: str) -> None:
    response = browser("manager").post(f"/projects/{world.project.pk}/labels/", {"action": "delete", "label": label})
    assert response.status_code == 404


def test_label_of_another_project_cannot_be_deleted_from_this_one(world, browser) -> None:
    foreign = Label.objects.create(project=Project.objects.create(name="Elsewhere"), name="x", color="#000000")
    response = browser("manager").post(f"/projects/{world.project.pk}/labels/", {"action": "delete", "label": foreign.pk})
    assert response.status_code == 404
    assert Label.objects.filter(pk=foreign.pk).exists()


def test_manager_adds_changes_and_removes_members(world, browser) -> None:
    client = browser("manager")
    url = f"/projects/{world.project.pk}/members/"
    added = client.post(url, {"username": "outsider", "role": "reviewer"}, follow=True)
    assert "outsider is now reviewer" in _html(added)
    membership = Membership.objects.get(project=world.project, user=world.users["outsider"])
    assert membership.role == "reviewer"
    client.post(url, {"username": "outsider", "role": "annotator"})
    membership.refresh_from_db()
    assert membership.role == "annotator"
    removed = client.post(url, {"action": "remove", "membership": membership.pk}, follow=True)
    assert "outsider removed" in _html(removed)
    assert not Membership.objects.filter(pk=membership.pk).exists()


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"username": "nobody-here", "role": "annotator"}, "There is no user named"),
        ({"username": "outsider", "role": "owner"}, "Select a valid choice"),
        ({"username": "manager", "role": "annotator"}, "at least one manager"),
    ],
)
def test_bad_member_input_shows_an_error_message(world, browser, fields: dict, message: str) -> None:
    before = list(Membership.objects.filter(project=world.project).values_list("user__username", "role"))
    response = browser("manager").post(f"/projects/{world.project.pk}/members/", fields)
    assert response.status_code == 200
    assert message in _html(response)
    assert list(Membership.objects.filter(project=world.project).values_list("user__username", "role")) == before


def test_removing_the_last_manager_shows_an_error(world, browser) -> None:
    membership = Membership.objects.get(project=world.project, user=world.users["manager"])
    response = browser("manager").post(
        f"/projects/{world.project.pk}/members/", {"action": "remove", "membership": membership.pk}, follow=True
    )
    assert "at least one manager" in _html(response)
    assert Membership.objects.filter(pk=membership.pk).exists()


def test_member_removal_with_a_bad_id_is_404(world, browser) -> None:
    response = browser("manager").post(f"/projects/{world.project.pk}/members/", {"action": "remove", "membership": "x"})
    assert response.status_code == 404
