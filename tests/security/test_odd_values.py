"""Odd values get a 400 naming the problem, the same on SQLite and PostgreSQL, never a 500.

Reproduces the report: a z_order of 2^31 (PostgreSQL: integer out of range; SQLite stored it), a
NUL character in an attribute key or value (jsonb cannot hold it), attributes nested 1,000 deep
(RecursionError). Attributes are also checked against the label's attribute schema.
"""
from __future__ import annotations

from typing import Any

import orjson
import pytest
from rest_framework.test import APIClient

from annotator.annotations.models import Annotation
from annotator.annotations.services import annotations_replace
from annotator.core.errors import DomainError
from tests.factories import polygon_geometry, square

pytestmark = pytest.mark.django_db


def _save(client: APIClient, image, **fields: Any):  # type: ignore[no-untyped-def]
    item = {"label": image.project.labels.first().pk, "geometry": polygon_geometry(square(10, 10, 20)), **fields}
    image.refresh_from_db()
    return client.put(f"/api/images/{image.pk}/annotations/", {"version": image.version, "annotations": [item]}, format="json")


def _deep(levels: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(levels - 1):
        value = {"a": value}
    return value


@pytest.mark.parametrize("z_order", [2**31, -(2**31) - 1, 2**63])
def test_z_order_outside_32_bits_is_refused(world, image, z_order: int) -> None:
    response = _save(world.client("manager"), image, z_order=z_order)
    assert response.status_code == 400, response.content
    assert "z_order" in response.json()["detail"]
    assert not Annotation.objects.filter(image=image).exists()


@pytest.mark.parametrize("z_order", [2**31 - 1, -(2**31)])
def test_z_order_at_the_32_bit_bounds_is_stored(world, image, z_order: int) -> None:
    response = _save(world.client("manager"), image, z_order=z_order)
    assert response.status_code == 200, response.content
    assert Annotation.objects.get(image=image).z_order == z_order


@pytest.mark.parametrize("attributes", [{"note": "a\x00b"}, {"a\x00b": True}, {"list": ["ok", "\x00"]}])
def test_nul_character_in_attributes_is_refused(world, image, attributes: dict) -> None:
    response = _save(world.client("manager"), image, attributes=attributes)
    assert response.status_code == 400, response.content
    assert "NUL" in response.json()["detail"]


def test_attributes_nested_a_thousand_deep_are_refused(world, image) -> None:
    # Written by hand: the test client's json encoder cannot nest that deep either.
    item = orjson.dumps({"label": world.labels[0].pk, "geometry": polygon_geometry(square(10, 10, 20))})
    deep = b'{"a":' * 999 + b"{}" + b"}" * 999
    body = b'{"version": 0, "annotations": [' + item[:-1] + b', "attributes": ' + deep + b"}]}"
    response = world.client("manager").generic(
        "PUT", f"/api/images/{image.pk}/annotations/", body, content_type="application/json"
    )
    assert response.status_code == 400, response.content
    assert "nested" in response.json()["detail"]


def test_values_that_bypass_the_api_parser_are_checked_by_the_service(world, image) -> None:
    """Imports call the service with what they read from a file: the same limits apply."""
    label = world.labels[0].pk
    for attributes, reason in [({"k": "\x00"}, "NUL"), (_deep(1000), "nested"), ({"k": "x" * 5000}, "longer")]:
        items = [{"label": label, "geometry": polygon_geometry(square(10, 10, 20)), "attributes": attributes}]
        with pytest.raises(DomainError, match=reason):
            annotations_replace(image=image, user=None, base_version=0, items=items)
    with pytest.raises(DomainError, match="z_order"):
        annotations_replace(image=image, user=None, base_version=0, items=[
            {"label": label, "geometry": polygon_geometry(square(10, 10, 20)), "z_order": 2**40},
        ])


# --- Attributes against the label's schema ----------------------------------------------------

SCHEMA = {
    "occluded": {"type": "boolean"},
    "colour": {"type": "string", "choices": ["red", "green"]},
    "count": {"type": "integer", "min": 0, "max": 10},
    "note": {"type": "string", "max_length": 5},
}


@pytest.fixture
def schema_label(world):
    label = world.labels[0]
    response = world.client("manager").patch(f"/api/labels/{label.pk}/", {"attributes_schema": SCHEMA}, format="json")
    assert response.status_code == 200, response.content
    return label


@pytest.mark.parametrize(("attributes", "reason"), [
    ({"occluded": "yes"}, "true or false"),
    ({"colour": "blue"}, "one of"),
    ({"count": 11}, "at most 10"),
    ({"count": 1.5}, "integer"),
    ({"note": "too long"}, "longer than 5"),
])
def test_attribute_values_are_checked_against_the_label_schema(world, image, schema_label, attributes, reason) -> None:
    response = _save(world.client("manager"), image, label=schema_label.pk, attributes=attributes)
    assert response.status_code == 400, response.content
    assert reason in response.json()["detail"]


def test_attributes_that_fit_the_schema_are_stored(world, image, schema_label) -> None:
    attributes = {"occluded": True, "colour": "red", "count": 3, "note": "ok", "iscrowd": False, "colour_2": None}
    response = _save(world.client("manager"), image, label=schema_label.pk, attributes=attributes)
    assert response.status_code == 200, response.content
    assert Annotation.objects.get(image=image).attributes == attributes


@pytest.mark.parametrize("schema", [
    ["occluded"],
    {"occluded": {"type": "date"}},
    {"colour": {"type": "string", "choices": [1, 2]}},
    {"count": {"type": "integer", "min": "zero"}},
    {"note": {"type": "string", "max_length": 10**9}},
    {"bad\x00name": {"type": "boolean"}},
    {"deep": _deep(100)},
])
def test_malformed_attribute_schemas_are_refused(world, schema) -> None:
    client = world.client("manager")
    created = client.post(f"/api/projects/{world.project.pk}/labels/", {"name": "bird", "attributes_schema": schema}, format="json")
    assert created.status_code == 400, created.content
    edited = client.patch(f"/api/labels/{world.labels[0].pk}/", {"attributes_schema": schema}, format="json")
    assert edited.status_code == 400, edited.content


# --- Every other JSON field from clients ---------------------------------------------------------


def test_nul_characters_are_refused_in_every_json_body(world, image) -> None:
    client = world.client("manager")
    cases = [
        ("patch", f"/api/projects/{world.project.pk}/", {"description": "a\x00b"}),
        ("post", f"/api/projects/{world.project.pk}/labels/", {"name": "bird\x00"}),
        ("post", f"/api/images/{image.pk}/comments/", {"text": "look\x00here"}),
        ("post", f"/api/projects/{world.project.pk}/exports/", {"format": "coco", "name": "v\x00"}),
        ("post", "/api/geometry/convert/", {"geometry": {"type": "polygons\x00"}, "to": "mask", "width": 5, "height": 5}),
    ]
    for method, url, body in cases:
        response = getattr(client, method)(url, body, format="json")
        assert response.status_code == 400, (url, response.content)
        assert response["Content-Type"] == "application/json"


def test_deep_nesting_is_refused_in_every_json_body(world) -> None:
    response = world.client("manager").post(
        f"/api/projects/{world.project.pk}/exports/", {"format": "coco", "status": [_deep(40)]}, format="json"
    )
    assert response.status_code == 400, response.content
    assert "nested" in response.json()["detail"]


def test_label_order_past_32_bits_is_refused(world) -> None:
    response = world.client("manager").post(
        f"/api/projects/{world.project.pk}/labels/", {"name": "bird", "order": 2**31}, format="json"
    )
    assert response.status_code == 400, response.content


def test_nul_in_a_query_parameter_is_refused(world) -> None:
    response = world.client("manager").get(f"/api/projects/{world.project.pk}/images/?search=a%00b")
    assert response.status_code == 400
    assert "NUL" in response.json()["detail"]


def test_nul_in_a_json_form_field_is_refused(world) -> None:
    # a multipart field holding JSON does not come through the API's JSON parser
    import io

    from tests.factories import png_bytes

    upload = io.BytesIO(png_bytes())
    upload.name = "a.zip"
    response = world.client("manager").post(
        f"/api/projects/{world.project.pk}/imports/",
        {"format": "coco", "file": upload, "label_map": '{"cat\\u0000": "dog"}'},
        format="multipart",
    )
    assert response.status_code == 400
    assert "NUL" in response.data["detail"]
