"""Moving between images: the image list remembers its filters, the editor knows its neighbours,
and it knows (and says) when the caller may only look."""
from __future__ import annotations

import pytest
from django.test import Client

from annotator.images.models import ImageStatus
from tests.factories import make_images

pytestmark = pytest.mark.django_db


def _browser(world, persona: str) -> Client:
    client = Client()
    client.force_login(world.users[persona])
    return client


def test_neighbours_follow_the_filtered_list(world):
    images = make_images(world.project, 5)
    for image in images[1::2]:
        image.status = ImageStatus.SUBMITTED
        image.save()
    client = world.client("annotator")

    everything = client.get(f"/api/images/{images[2].pk}/neighbours/").json()
    assert everything == {"previous": images[1].pk, "next": images[3].pk, "position": 3, "count": 5}

    submitted = client.get(f"/api/images/{images[1].pk}/neighbours/", {"status": "submitted"}).json()
    assert submitted == {"previous": None, "next": images[3].pk, "position": 1, "count": 2}

    outside = client.get(f"/api/images/{images[2].pk}/neighbours/", {"status": "submitted"}).json()
    assert outside == {"previous": images[1].pk, "next": images[3].pk, "position": None, "count": 2}


def test_outsiders_get_no_neighbours(world, image):
    assert world.client("outsider").get(f"/api/images/{image.pk}/neighbours/").status_code == 404


def test_the_image_list_remembers_its_filters(world):
    make_images(world.project, 2)
    client = _browser(world, "annotator")
    url = f"/projects/{world.project.pk}/images/"

    assert client.get(url, {"status": "new", "q": "img"}).status_code == 200
    back = client.get(url)
    assert back.status_code == 302 and "status=new" in back["Location"] and "q=img" in back["Location"]

    client.get(url, {"status": "", "q": ""})
    assert client.get(url).status_code == 200  # cleared filters: nothing to restore


def test_the_editor_page_links_the_neighbours_in_the_remembered_list(world):
    images = make_images(world.project, 3)
    client = _browser(world, "annotator")
    client.get(f"/projects/{world.project.pk}/images/", {"q": "img"})

    html = client.get(f"/images/{images[1].pk}/edit/").content.decode()
    assert f'data-prev-image="{images[0].pk}"' in html and f'data-next-image="{images[2].pk}"' in html
    assert 'data-list-position="2"' in html and 'data-list-count="3"' in html and 'data-list-filters="q: img"' in html


def test_an_image_assigned_to_someone_else_opens_read_only_with_what_to_do(world, image):
    image.assignee = world.users["annotator"]
    image.status = ImageStatus.IN_PROGRESS
    image.save()

    access = world.client("annotator2").get(f"/api/images/{image.pk}/access/").json()
    assert access["can_edit"] is False
    assert access["reason"] == "This image is assigned to another annotator."
    assert "reassign" in access["hint"]
    html = _browser(world, "annotator2").get(f"/images/{image.pk}/edit/").content.decode()
    assert 'data-read-only="1"' in html and "reassign" in html

    assert world.client("annotator").get(f"/api/images/{image.pk}/access/").json() == {"can_edit": True, "reason": None, "hint": None}
    assert 'data-read-only="1"' not in _browser(world, "annotator").get(f"/images/{image.pk}/edit/").content.decode()


@pytest.mark.parametrize(("status", "persona", "hint"), [
    (ImageStatus.ACCEPTED, "annotator", "training data"),
    (ImageStatus.SUBMITTED, "annotator", "waiting for review"),
    (ImageStatus.NEW, "reviewer", "review queue"),
])
def test_read_only_reasons_come_with_a_hint(world, image, status, persona, hint):
    image.status = status
    image.save()
    access = world.client(persona).get(f"/api/images/{image.pk}/access/").json()
    assert access["can_edit"] is False and hint in access["hint"]


def test_a_reviewer_opening_a_submitted_image_for_review_is_not_read_only(world, image):
    image.status = ImageStatus.SUBMITTED
    image.assignee = world.users["annotator"]
    image.save()
    html = _browser(world, "reviewer").get(f"/images/{image.pk}/edit/?mode=review").content.decode()
    assert 'data-read-only="1"' not in html
