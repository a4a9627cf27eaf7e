"""Per-object attributes: label schemas with defaults, required and multiple choice; submission checks them."""
from __future__ import annotations

import pytest

from annotator.annotations.attributes import attribute_defaults, attributes_coerce, attributes_missing
from annotator.annotations.models import Annotation
from tests.factories import polygon_geometry, square

pytestmark = pytest.mark.django_db

SCHEMA = {
    "occluded": {"type": "boolean", "default": False},
    "colour": {"type": "string", "choices": ["red", "green", "blue"], "required": True},
    "parts": {"type": "string", "choices": ["wheel", "door", "roof"], "multiple": True, "default": []},
    "count": {"type": "integer", "min": 0, "max": 10},
    "note": {"type": "string"},
}


@pytest.fixture
def car(world):
    response = world.client("manager").patch(f"/api/labels/{world.labels[0].pk}/", {"attributes_schema": SCHEMA}, format="json")
    assert response.status_code == 200, response.content
    return world.labels[0]


def _save(world, image, persona: str, label, attributes: dict):
    return world.client(persona).put(
        f"/api/images/{image.pk}/annotations/",
        {"version": image.version, "annotations": [{"label": label.pk, "geometry": polygon_geometry(square(10, 10, 20)), "attributes": attributes}]},
        format="json",
    )


def test_a_schema_with_defaults_required_and_multiple_choice_is_stored(world, car):
    response = world.client("annotator").get(f"/api/projects/{world.project.pk}/labels/")
    assert next(label for label in response.json() if label["id"] == car.pk)["attributes_schema"] == SCHEMA


@pytest.mark.parametrize(("spec", "reason"), [
    ({"type": "string", "multiple": True}, "needs choices"),
    ({"type": "integer", "min": 0, "default": -1}, "default must be at least 0"),
    ({"type": "string", "choices": ["a"], "default": "b"}, "default must be one of"),
    ({"type": "boolean", "required": "yes"}, "required is true or false"),
    ({"type": "string", "choices": ["a", "b"], "multiple": True, "default": ["a", "c"]}, "default has 'c'"),
])
def test_inconsistent_attribute_specs_are_refused_with_the_reason(world, spec, reason):
    response = world.client("manager").patch(f"/api/labels/{world.labels[0].pk}/", {"attributes_schema": {"x": spec}}, format="json")
    assert response.status_code == 400
    assert reason in response.json()["detail"]


def test_multiple_choice_values_are_lists_of_distinct_choices(world, image, car):
    ok = _save(world, image, "annotator", car, {"colour": "red", "parts": ["wheel", "door"]})
    assert ok.status_code == 200, ok.content
    assert Annotation.objects.get(image=image).attributes["parts"] == ["wheel", "door"]
    image.refresh_from_db()
    for value, reason in ((["wheel", "wing"], "has 'wing'"), ("wheel", "list of choices"), (["door", "door"], "twice")):
        refused = _save(world, image, "annotator", car, {"colour": "red", "parts": value})
        assert refused.status_code == 400 and reason in refused.json()["detail"], refused.content


def test_submitting_with_a_required_attribute_unset_is_refused_and_names_the_object(world, image, car):
    assert _save(world, image, "annotator", car, {"occluded": True}).status_code == 200
    refused = world.client("annotator").post(f"/api/images/{image.pk}/submit/")
    assert refused.status_code == 400
    body = refused.json()
    assert "colour" in body["detail"] and body["objects"][0]["missing"] == ["colour"]
    assert body["objects"][0]["uid"] == str(Annotation.objects.get(image=image).uid)

    image.refresh_from_db()
    assert _save(world, image, "annotator", car, {"occluded": True, "colour": "blue"}).status_code == 200
    assert world.client("annotator").post(f"/api/images/{image.pk}/submit/").status_code == 200


def test_defaults_and_missing_required_attributes():
    assert attribute_defaults(SCHEMA) == {"occluded": False, "parts": []}
    assert attributes_missing({"colour": ""}, SCHEMA) == ["colour"]
    assert attributes_missing({"colour": "red"}, SCHEMA) == []
    assert attributes_missing({}, {"tags": {"type": "string", "choices": ["a"], "multiple": True, "required": True}}) == ["tags"]


def test_imported_text_values_are_converted_to_the_schema_types():
    values, warnings = attributes_coerce(
        {"occluded": "True", "count": "3", "parts": "wheel, roof", "colour": "purple", "note": 12, "extra": "kept"}, SCHEMA,
    )
    assert values == {"occluded": True, "count": 3, "parts": ["wheel", "roof"], "note": "12", "extra": "kept"}
    assert len(warnings) == 1 and "colour" in warnings[0]
    assert attributes_coerce({"parts": '["door"]'}, SCHEMA)[0] == {"parts": ["door"]}


def test_the_api_filters_objects_by_attribute_as_the_editor_does(world, image, car):
    objects = [
        {"label": car.pk, "geometry": polygon_geometry(square(10, 10, 20)), "attributes": {"colour": "red", "parts": ["wheel"], "occluded": True}},
        {"label": car.pk, "geometry": polygon_geometry(square(40, 10, 20)), "attributes": {"colour": "green", "occluded": False}},
    ]
    assert world.client("annotator").put(f"/api/images/{image.pk}/annotations/", {"version": 0, "annotations": objects}, format="json").status_code == 200
    client = world.client("reviewer")

    def colours(**params: str) -> list[str]:
        response = client.get(f"/api/images/{image.pk}/annotations/", params)
        return sorted(a["attributes"]["colour"] for a in response.json()["annotations"])

    assert colours(attribute="colour", value="RED") == ["red"]
    assert colours(attribute="parts", value="wheel") == ["red"]
    assert colours(attribute="parts", value="-") == ["green"]
    assert colours(attribute="occluded", value="yes") == ["red"]
    assert colours(attribute="occluded", value="-") == ["green"]
    assert colours(attribute="note") == []
    assert colours() == ["green", "red"]
