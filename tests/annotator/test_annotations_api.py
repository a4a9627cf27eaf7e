"""Saving an image's annotations over the API: what is accepted, and every bad geometry refused.

A refused save is a 400 whose `detail` says what is wrong, and leaves the image exactly as it was:
same version, same objects, no new revision.
"""
from __future__ import annotations

import json
import uuid

import numpy as np
import pycocotools.mask as mask_utils
import pytest

from annotator.annotations.models import Annotation, Revision
from annotator.images.models import ImageStatus
from tests.factories import LabelFactory, polygon_geometry, square


def _rle(height: int, width: int, box: tuple[int, int, int, int]) -> dict:
    mask = np.zeros((height, width), dtype=np.uint8)
    x0, y0, x1, y1 = box
    mask[y0:y1, x0:x1] = 1
    rle = mask_utils.encode(np.asfortranarray(mask))
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}


@pytest.fixture
def saved(world, image):
    """The image (200x100) with one cat saved by the annotator: version 1, one revision."""
    client = world.client("annotator")
    response = client.put(
        f"/api/images/{image.pk}/annotations/",
        {"version": 0, "annotations": [{"label": world.labels[0].pk, "geometry": polygon_geometry(square(10, 10, 30))}]},
        format="json",
    )
    assert response.status_code == 200, response.data
    image.refresh_from_db()
    return image


def _put(client, image, annotations: list, version: int):
    return client.put(f"/api/images/{image.pk}/annotations/", {"version": version, "annotations": annotations}, format="json")


def _assert_unchanged(image, uids_before: set[str]) -> None:
    image.refresh_from_db()
    assert image.version == 1
    assert Revision.objects.filter(image=image).count() == 1
    assert {str(a.uid) for a in Annotation.objects.filter(image=image)} == uids_before


# Garbage: nothing a person or a tool would mean.  Refused, naming the object, nothing saved.
BAD_GEOMETRIES = {
    "fewer than 3 points": ({"type": "polygons", "polygons": [{"exterior": [[1, 1], [20, 1]], "holes": []}]}, "no area"),
    "all points on one line": (polygon_geometry([[10, 10], [20, 20], [30, 30]]), "no area"),
    "wholly outside the image": (polygon_geometry([[250, 10], [260, 10], [260, 60]]), "entirely outside"),
    "coordinate that is not a number": (polygon_geometry([["a", 1], [5, 5], [9, 1]]), "coordinates must be finite numbers"),
    "boolean coordinate": (polygon_geometry([[1, True], [5, 5], [9, 1]]), "coordinates must be finite numbers"),
    "empty polygons list": ({"type": "polygons", "polygons": []}, "empty"),
    "unknown geometry type": ({"type": "circle", "center": [5, 5]}, "polygons"),
    "RLE sized for another image": ({"type": "mask", "rle": _rle(50, 50, (5, 5, 20, 20))}, "does not match the 200x100 image"),
    "RLE with garbage counts": ({"type": "mask", "rle": {"size": [100, 200], "counts": "\x01\x02"}}, "RLE"),
    "empty mask": ({"type": "mask", "rle": _rle(100, 200, (0, 0, 0, 0))}, "empty"),
}


@pytest.mark.parametrize("case", BAD_GEOMETRIES.keys())
def test_bad_geometry_is_refused_with_a_reason_and_nothing_is_saved(world, saved, case: str) -> None:
    geometry, reason = BAD_GEOMETRIES[case]
    before = {str(a.uid) for a in Annotation.objects.filter(image=saved)}
    good = {"label": world.labels[1].pk, "geometry": polygon_geometry(square(100, 50, 20))}
    bad_uid = str(uuid.uuid4())
    response = _put(
        world.client("annotator"), saved, [good, {"uid": bad_uid, "label": world.labels[0].pk, "geometry": geometry}], version=1
    )
    assert response.status_code == 400
    assert reason in response.data["detail"]
    assert response.data["detail"].startswith("annotation 1"), "the reason names the object at fault"
    # ... and says which object in a form a client can act on: hold that one back, save the rest
    assert response.data["object"]["index"] == 1 and response.data["object"]["uid"] == bad_uid
    plain = response.data["object"]["reason"]
    assert plain and "part 0" not in plain and bad_uid not in plain
    _assert_unchanged(saved, before)


# What people and tools really produce: repaired, reported, saved.
REPAIRED_GEOMETRIES = {
    "click a hair below the bottom edge": (polygon_geometry([[10, 10], [60, 10], [60, 100.0000148]]), ["snapped"]),
    "vertex in the margin": (polygon_geometry([[150, 10], [190, 10], [190, 104]]), ["clipped"]),
    "part reaching out of the image": (polygon_geometry([[150, 10], [260, 10], [260, 60]]), ["clipped"]),
    "negative coordinate": (polygon_geometry([[-5, 10], [20, 10], [20, 30]]), ["clipped"]),
    "self-crossing bow tie": (polygon_geometry([[10, 10], [50, 50], [50, 10], [10, 50]]), ["untangled"]),
    "hole outside its exterior": (polygon_geometry(square(10, 10, 20), holes=[square(60, 60, 10)]), ["holes_fixed"]),
    "double click": (polygon_geometry([[10, 10], [40, 10], [40, 10], [40, 40]]), ["repeated_points"]),
    "a degenerate extra part": (polygon_geometry(square(10, 10, 20), [[50, 50], [60, 60]]), ["dropped_parts"]),
}


@pytest.mark.parametrize("case", REPAIRED_GEOMETRIES.keys())
@pytest.mark.parametrize("minimal", [False, True], ids=["full", "minimal"])
def test_imprecise_geometry_is_repaired_saved_and_reported(world, saved, case: str, minimal: bool) -> None:
    geometry, changes = REPAIRED_GEOMETRIES[case]
    good = {"uid": str(uuid.uuid4()), "label": world.labels[1].pk, "geometry": polygon_geometry(square(100, 50, 20))}
    odd = {"uid": str(uuid.uuid4()), "label": world.labels[0].pk, "geometry": geometry}
    headers = {"HTTP_PREFER": "return=minimal"} if minimal else {}
    response = world.client("annotator").put(
        f"/api/images/{saved.pk}/annotations/", {"version": 1, "annotations": [good, odd]}, format="json", **headers
    )
    assert response.status_code == 200, response.data
    [repair] = response.data["repaired"]
    assert repair["uid"] == odd["uid"] and repair["index"] == 1
    assert repair["changes"] == changes
    assert repair["message"] and "part 0" not in repair["message"]
    stored = Annotation.objects.get(uid=odd["uid"])
    assert stored.polygons == repair["geometry"]["polygons"], "the report carries the geometry as stored"
    for part in stored.polygons:
        ring = np.asarray(part["exterior"])
        assert ring.min() >= 0 and (ring[:, 0] <= 200).all() and (ring[:, 1] <= 100).all()
    assert Revision.objects.filter(image=saved).count() == 2


def test_valid_objects_come_back_byte_for_byte(world, image) -> None:
    # integers stay integers, key order and numbers as sent: the editor's copy and ours agree
    geometry = {"type": "polygons", "polygons": [{"exterior": [[10, 10], [30.25, 10], [30, 40]], "holes": []}]}
    item = {"uid": str(uuid.uuid4()), "label": world.labels[0].pk, "geometry": geometry}
    response = _put(world.client("annotator"), image, [item], version=0)
    assert response.status_code == 200 and response.data["repaired"] == []
    body = json.loads(response.content)
    assert json.dumps(body["annotations"][0]["geometry"]) == json.dumps(geometry)
    again = _put(world.client("annotator"), image, [item], version=1)
    assert Revision.objects.get(image=image, version=2).summary == {"added": 0, "removed": 0, "changed": 0}
    assert again.status_code == 200


def test_an_object_over_the_vertex_limit_is_refused_naming_the_limit(world, image, settings) -> None:
    settings.ANNOTATOR_MAX_VERTICES_PER_OBJECT = 100
    t = np.linspace(0, 2 * np.pi, 150, endpoint=False)
    ring = np.c_[100 + 40 * np.cos(t), 50 + 40 * np.sin(t)].tolist()
    response = _put(world.client("annotator"), image, [{"label": world.labels[0].pk, "geometry": polygon_geometry(ring)}], version=0)
    assert response.status_code == 400
    assert "limit of 100" in response.data["detail"]
    assert "100 per object" in response.data["object"]["reason"]


def test_an_image_over_the_vertex_limit_is_refused_naming_the_limit(world, image, settings) -> None:
    settings.ANNOTATOR_MAX_VERTICES_PER_IMAGE = 10
    items = [{"label": world.labels[0].pk, "geometry": polygon_geometry(square(10 + 20 * k, 10, 10))} for k in range(3)]
    response = _put(world.client("annotator"), image, items, version=0)
    assert response.status_code == 400
    assert "the limit is 10 per image" in response.data["detail"]
    image.refresh_from_db()
    assert image.version == 0


def test_infinite_coordinate_is_refused(world, saved) -> None:
    # 1e999 is valid JSON that would read as infinity; the JSON parser refuses it outright.
    body = (
        '{"version": 1, "annotations": [{"label": LABEL, "geometry": {"type": "polygons", "polygons": '
        '[{"exterior": [[1, 1], [1e999, 1], [5, 9]], "holes": []}]}}]}'
    ).replace("LABEL", str(world.labels[0].pk)
    )
    before = {str(a.uid) for a in Annotation.objects.filter(image=saved)}
    response = world.client("annotator").put(f"/api/images/{saved.pk}/annotations/", body, content_type="application/json")
    assert response.status_code == 400
    assert "infinity" in response.data["detail"]
    _assert_unchanged(saved, before)


def test_nan_coordinate_is_refused(world, saved) -> None:
    body = (
        '{"version": 1, "annotations": [{"label": LABEL, "geometry": {"type": "polygons", "polygons": '
        '[{"exterior": [[1, 1], [NaN, 1], [5, 9]], "holes": []}]}}]}'
    ).replace("LABEL", str(world.labels[0].pk)
    )
    before = {str(a.uid) for a in Annotation.objects.filter(image=saved)}
    response = world.client("annotator").put(f"/api/images/{saved.pk}/annotations/", body, content_type="application/json")
    assert response.status_code == 400
    assert response.data["detail"]
    _assert_unchanged(saved, before)


def test_label_of_another_project_is_refused(world, saved) -> None:
    foreign = LabelFactory(name="foreign")
    before = {str(a.uid) for a in Annotation.objects.filter(image=saved)}
    response = _put(
        world.client("annotator"), saved, [{"label": foreign.pk, "geometry": polygon_geometry(square(1, 1, 5))}], version=1
    )
    assert response.status_code == 400
    assert "is not a label of this project" in response.data["detail"]
    _assert_unchanged(saved, before)


def test_missing_label_is_refused(world, saved) -> None:
    before = {str(a.uid) for a in Annotation.objects.filter(image=saved)}
    response = _put(world.client("annotator"), saved, [{"geometry": polygon_geometry(square(1, 1, 5))}], version=1)
    assert response.status_code == 400
    assert "label" in response.data["detail"]
    _assert_unchanged(saved, before)


def test_duplicate_uid_is_refused(world, saved) -> None:
    uid = str(uuid.uuid4())
    items = [
        {"uid": uid, "label": world.labels[0].pk, "geometry": polygon_geometry(square(1, 1, 5))},
        {"uid": uid, "label": world.labels[1].pk, "geometry": polygon_geometry(square(50, 50, 5))},
    ]
    before = {str(a.uid) for a in Annotation.objects.filter(image=saved)}
    response = _put(world.client("annotator"), saved, items, version=1)
    assert response.status_code == 400
    assert "the same uid appears twice" in response.data["detail"]
    _assert_unchanged(saved, before)


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [("score", 1.5, "score"), ("z_order", "top", "z_order"), ("source", "guess", "source"), ("uid", "not-a-uuid", "UUID")],
)
def test_bad_object_fields_are_refused(world, saved, field: str, value, reason: str) -> None:
    item = {"label": world.labels[0].pk, "geometry": polygon_geometry(square(1, 1, 5)), field: value}
    before = {str(a.uid) for a in Annotation.objects.filter(image=saved)}
    response = _put(world.client("annotator"), saved, [item], version=1)
    assert response.status_code == 400
    assert reason in response.data["detail"]
    assert response.data["object"]["index"] == 0
    _assert_unchanged(saved, before)


def test_save_without_version_is_refused(world, saved) -> None:
    response = world.client("annotator").put(f"/api/images/{saved.pk}/annotations/", {"annotations": []}, format="json")
    assert response.status_code == 400
    assert "version" in response.data["detail"]
    _assert_unchanged(saved, {str(a.uid) for a in Annotation.objects.filter(image=saved)})


def test_polygons_with_holes_and_masks_are_saved_with_derived_bbox_and_area(world, image) -> None:
    holed = polygon_geometry(square(10, 10, 40), holes=[square(20, 20, 10)])
    two_parts = polygon_geometry(square(100, 10, 10), square(130, 10, 10))
    mask = {"type": "mask", "rle": _rle(100, 200, (150, 60, 170, 90))}
    items = [
        {"label": world.labels[0].pk, "geometry": holed, "attributes": {"occluded": True}},
        {"label": world.labels[1].pk, "geometry": two_parts, "z_order": 2},
        {"label": world.labels[1].pk, "geometry": mask, "source": "model", "score": 0.8},
    ]
    response = _put(world.client("annotator"), image, items, version=0)
    assert response.status_code == 200, response.data
    assert response.data["version"] == 1
    by_z = {a["z_order"]: a for a in response.data["annotations"]}
    saved = response.data["annotations"]
    assert len(saved) == 3
    holed_out = next(a for a in saved if a["attributes"] == {"occluded": True})
    assert holed_out["bbox"] == pytest.approx([10, 10, 40, 40], abs=1)
    assert holed_out["area"] == pytest.approx(40 * 40 - 10 * 10, rel=0.05)
    assert by_z[2]["bbox"] == pytest.approx([100, 10, 40, 10], abs=1)
    mask_out = next(a for a in saved if a["geometry"]["type"] == "mask")
    assert mask_out["area"] == 20 * 30
    assert mask_out["score"] == 0.8 and mask_out["source"] == "model"

    fetched = world.client("reviewer").get(f"/api/images/{image.pk}/annotations/").data
    assert fetched["version"] == 1
    assert {a["uid"] for a in fetched["annotations"]} == {a["uid"] for a in saved}
    assert Revision.objects.get(image=image, version=1).author == world.users["annotator"]


def test_first_save_marks_a_new_image_in_progress_and_assigns_it(world, image) -> None:
    assert image.status == ImageStatus.NEW
    response = _put(world.client("annotator"), image, [], version=0)
    assert response.status_code == 200
    image.refresh_from_db()
    assert image.status == ImageStatus.IN_PROGRESS
    assert image.assignee == world.users["annotator"]


def test_uids_are_kept_across_saves_and_unchanged_objects_keep_their_timestamps(world, saved) -> None:
    client = world.client("annotator")
    current = client.get(f"/api/images/{saved.pk}/annotations/").data
    kept = current["annotations"][0]
    added = {"label": world.labels[1].pk, "geometry": polygon_geometry(square(100, 50, 20))}
    response = _put(client, saved, [kept, added], version=current["version"])
    assert response.status_code == 200
    out = {a["uid"]: a for a in response.data["annotations"]}
    assert kept["uid"] in out
    assert out[kept["uid"]]["updated_at"] == kept["updated_at"]
    assert Revision.objects.get(image=saved, version=2).summary == {"added": 1, "removed": 0, "changed": 0}


def test_annotator_cannot_edit_an_image_assigned_to_someone_else(world, saved) -> None:
    response = _put(world.client("annotator2"), saved, [], version=1)
    assert response.status_code == 403
    assert "assigned to another annotator" in response.data["detail"]
    _assert_unchanged(saved, {str(a.uid) for a in Annotation.objects.filter(image=saved)})


def test_reviewer_cannot_edit_work_in_progress(world, saved) -> None:
    response = _put(world.client("reviewer"), saved, [], version=1)
    assert response.status_code == 403
    _assert_unchanged(saved, {str(a.uid) for a in Annotation.objects.filter(image=saved)})


def test_annotator_cannot_edit_after_submitting(world, saved) -> None:
    client = world.client("annotator")
    assert client.post(f"/api/images/{saved.pk}/submit/").status_code == 200
    response = _put(client, saved, [], version=1)
    assert response.status_code == 403
    assert "submitted" in response.data["detail"]


def test_error_body_is_json_with_a_detail(world, saved) -> None:
    response = _put(world.client("annotator"), saved, [{"label": world.labels[0].pk, "geometry": {}}], version=1)
    assert response.status_code == 400
    assert response["Content-Type"].startswith("application/json")
    assert isinstance(json.loads(response.content)["detail"], str)
