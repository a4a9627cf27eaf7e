"""The labels page: attribute schemas edited in words (kind, choices, range, default, required)."""
from __future__ import annotations

import pytest
from django.test import Client

from annotator.projects.models import Label

pytestmark = pytest.mark.django_db


def _browser(world, persona: str) -> Client:
    client = Client()
    client.force_login(world.users[persona])
    return client


def _rows(*rows: dict) -> dict:
    data = {"form-TOTAL_FORMS": str(len(rows)), "form-INITIAL_FORMS": "0", "form-MIN_NUM_FORMS": "0", "form-MAX_NUM_FORMS": "64"}
    for i, row in enumerate(rows):
        data.update({f"form-{i}-{k}": v for k, v in row.items()})
    return data


def test_a_manager_defines_attributes_in_words(world):
    label = world.labels[0]
    client = _browser(world, "manager")
    url = f"/projects/{world.project.pk}/labels/{label.pk}/attributes/"
    assert client.get(url).status_code == 200
    response = client.post(url, _rows(
        {"name": "occluded", "kind": "boolean", "default": "no"},
        {"name": "colour", "kind": "one", "choices": "red, green , blue", "required": "on"},
        {"name": "parts", "kind": "several", "choices": "wheel, door", "default": "wheel"},
        {"name": "count", "kind": "integer", "min": "0", "max": "10"},
        {"name": "", "kind": "text"},
    ), follow=True)
    assert "Attributes of cat saved" in response.content.decode()
    label.refresh_from_db()
    assert label.attributes_schema == {
        "occluded": {"type": "boolean", "default": False},
        "colour": {"type": "string", "choices": ["red", "green", "blue"], "required": True},
        "parts": {"type": "string", "choices": ["wheel", "door"], "multiple": True, "default": ["wheel"]},
        "count": {"type": "integer", "min": 0, "max": 10},
    }
    page = client.get(f"/projects/{world.project.pk}/labels/").content.decode()
    assert "colour (one of 3, required) · count (whole number 0–10) · occluded (yes/no) · parts (several of 2)" in page

    edit = client.get(url).content.decode()
    assert 'value="red, green, blue"' in edit
    removed = client.post(url, _rows(
        {"name": "occluded", "kind": "boolean", "default": "no", "DELETE": "on"},
        {"name": "colour", "kind": "one", "choices": "red, green, blue", "required": "on"},
    ))
    assert removed.status_code == 302
    label.refresh_from_db()
    assert list(label.attributes_schema) == ["colour"]


@pytest.mark.parametrize(("row", "message"), [
    ({"name": "colour", "kind": "one", "choices": ""}, "list the choices"),
    ({"name": "count", "kind": "text", "min": "3"}, "min is for numbers"),
    ({"name": "count", "kind": "integer", "min": "5", "default": "1"}, "default must be at least 5"),
])
def test_schemas_that_do_not_make_sense_are_refused_with_the_reason(world, row, message):
    label = world.labels[0]
    response = _browser(world, "manager").post(f"/projects/{world.project.pk}/labels/{label.pk}/attributes/", _rows(row))
    assert response.status_code == 200 and message in response.content.decode()
    assert Label.objects.get(pk=label.pk).attributes_schema == {}


@pytest.mark.parametrize("persona", ["annotator", "reviewer"])
def test_only_managers_edit_schemas(world, persona):
    label = world.labels[0]
    response = _browser(world, persona).post(f"/projects/{world.project.pk}/labels/{label.pk}/attributes/", _rows({"name": "x", "kind": "text"}))
    assert response.status_code == 403
    assert Label.objects.get(pk=label.pk).attributes_schema == {}


def test_the_labels_page_lines_its_cells_up_with_the_headers(world):
    page = _browser(world, "manager").get(f"/projects/{world.project.pk}/labels/").content.decode()
    row = page.split('data-testid="label-row"', 1)[1].split("</tr>", 1)[0]
    assert row.count("<td") == 5 and "colspan" not in row  # #, colour, name, attributes, actions
