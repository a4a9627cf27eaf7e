"""Properties of ml.geometry's one normalisation step (saves, imports, assists, conversions).

Whatever comes in, what comes out is valid and inside the image; repairs keep the area a person
drew; clipping never adds area; a second pass changes nothing; valid input comes back as it was.
"""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shapely.geometry import Polygon

from ml import geometry as geo
from ml.geometry import GeometryError

W, H = 320, 240

coordinate_x = st.floats(min_value=-40, max_value=W + 40, allow_nan=False, allow_infinity=False)
coordinate_y = st.floats(min_value=-40, max_value=H + 40, allow_nan=False, allow_infinity=False)
rings = st.lists(st.tuples(coordinate_x, coordinate_y).map(list), min_size=1, max_size=25)
parts = st.lists(
    st.fixed_dictionaries({"exterior": rings, "holes": st.lists(rings, max_size=2)}), min_size=1, max_size=3
)
any_polygons = parts.map(lambda p: {"type": "polygons", "polygons": p})


def blob(rng: np.random.Generator, cx: float, cy: float, radius: float, n: int = 40) -> list[list[float]]:
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    r = radius * (1 + 0.25 * np.sin(3 * t + rng.uniform(0, 6)))
    return np.c_[cx + r * np.cos(t), cy + r * np.sin(t)].tolist()


def shapely_of(geometry: dict) -> shapely.Geometry:
    return shapely.union_all([Polygon(p["exterior"], p.get("holes") or []) for p in geometry["polygons"]])


def as_drawn(geometry: dict) -> shapely.Geometry:
    """The area an outline encloses as a person sees it (each ring's own area, holes cut)."""
    pieces = []
    for part in geometry["polygons"]:
        if len({tuple(p) for p in part["exterior"]}) < 3:
            continue
        shape = shapely.make_valid(Polygon(part["exterior"]), method="structure", keep_collapsed=False)
        for hole in part.get("holes") or []:
            if len({tuple(p) for p in hole}) >= 3:
                shape = shape.difference(shapely.make_valid(Polygon(hole), method="structure", keep_collapsed=False))
        pieces.append(shape)
    return shapely.union_all(pieces) if pieces else shapely.Polygon()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(any_polygons)
def test_output_is_valid_inside_the_image_and_never_gains_area(geometry: dict) -> None:
    try:
        out, _repair = geo.normalize_geometry(copy.deepcopy(geometry), width=W, height=H)
    except GeometryError as exc:
        # refused only when nothing with an area is left inside the image
        assert exc.reason
        assert as_drawn(geometry).intersection(shapely.box(0, 0, W, H)).area < 1.0
        return
    geo.validate_geometry(out, width=W, height=H)  # strict check: valid rings, inside the image
    coords = np.concatenate([np.asarray(r) for p in out["polygons"] for r in [p["exterior"], *p["holes"]]])
    assert coords.min() >= 0 and coords[:, 0].max() <= W and coords[:, 1].max() <= H
    expected = as_drawn(geometry).intersection(shapely.box(0, 0, W, H))
    # snapping points within SNAP_DISTANCE onto the edge may add a sliver along the border; where
    # that would change a part's area by more than the slack, the part is clipped instead
    slack = len(geometry["polygons"]) * geo.snap_area_slack(expected.area) + 1e-6
    assert shapely_of(out).area <= expected.area + slack


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(any_polygons)
def test_normalising_twice_changes_nothing(geometry: dict) -> None:
    try:
        once, _ = geo.normalize_geometry(geometry, width=W, height=H)
    except GeometryError:
        return
    twice, repair = geo.normalize_geometry(copy.deepcopy(once), width=W, height=H)
    assert repair is None
    assert json.dumps(twice) == json.dumps(once)


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 38))
def test_a_hand_drawn_crossing_keeps_the_area_drawn(seed: int, k: int) -> None:
    rng = np.random.default_rng(seed)
    ring = blob(rng, 160, 120, 60)
    # a hand slip: two neighbouring vertices swapped sideways, so the outline crosses itself
    # by a fraction of a pixel, as in labelme's own example data and COCO's ground truth
    ring[k], ring[k + 1] = ring[k + 1], ring[k]
    out, repair = geo.normalize_geometry(geo.coco_geometry([sum(ring, [])]), width=W, height=H)
    original = Polygon(blob(np.random.default_rng(seed), 160, 120, 60)).area
    assert shapely_of(out).area == pytest.approx(original, rel=0.02)
    if not Polygon(ring).is_valid:
        assert repair is not None and "untangled" in repair["changes"]


def test_valid_parts_and_holes_come_back_as_the_same_objects() -> None:
    rng = np.random.default_rng(3)
    geometry = {
        "type": "polygons",
        "polygons": [
            {"exterior": blob(rng, 80, 80, 50), "holes": [blob(rng, 80, 80, 10, n=12)]},
            {"exterior": blob(rng, 240, 150, 40), "holes": []},
        ],
    }
    out, repair = geo.normalize_geometry(geometry, width=W, height=H)
    assert out is geometry and repair is None


def test_a_repair_of_one_part_leaves_the_other_parts_and_holes_alone() -> None:
    rng = np.random.default_rng(4)
    kept = {"exterior": blob(rng, 80, 80, 50), "holes": [blob(rng, 80, 80, 10, n=12)]}
    spilling = {"exterior": [[280, 200], [330, 200], [330, 250], [280, 250]], "holes": []}
    out, repair = geo.normalize_geometry({"type": "polygons", "polygons": [kept, spilling]}, width=W, height=H)
    assert repair is not None and repair["changes"] == ["clipped"]
    assert out["polygons"][0] == kept and len(out["polygons"][0]["holes"]) == 1
    assert shapely_of({"type": "polygons", "polygons": [out["polygons"][1]]}).area == pytest.approx(40 * 40)


def test_a_click_on_the_border_snaps_onto_it() -> None:
    geometry = {"type": "polygons", "polygons": [{"exterior": [[10, 10], [100, 10], [100, 240.0000148]], "holes": []}]}
    out, repair = geo.normalize_geometry(geometry, width=W, height=H)
    assert out["polygons"][0]["exterior"] == [[10, 10], [100, 10], [100, 240]]
    assert repair is not None and repair["changes"] == ["snapped"]


def test_masks_are_checked_not_clipped() -> None:
    mask = np.zeros((H, W), dtype=bool)
    mask[10:20, 10:20] = True
    rle = geo.mask_to_rle(mask)
    out, repair = geo.normalize_geometry({"type": "mask", "rle": rle}, width=W, height=H)
    assert out["rle"] == rle and repair is None
    with pytest.raises(GeometryError, match="does not match"):
        geo.normalize_geometry({"type": "mask", "rle": rle}, width=W + 1, height=H)
    with pytest.raises(GeometryError, match="empty"):
        geo.normalize_geometry({"type": "mask", "rle": geo.mask_to_rle(np.zeros((H, W), bool))}, width=W, height=H)


def test_garbage_is_refused_with_a_reason_in_plain_words() -> None:
    cases = [
        ({"type": "polygons", "polygons": [{"exterior": [[1, 1], [float("nan"), 2], [3, 9]], "holes": []}]}, "finite"),
        ({"type": "polygons", "polygons": [{"exterior": [[1, 1], [2, 2], [3, 3]], "holes": []}]}, "no area"),
        ({"type": "polygons", "polygons": [{"exterior": [[400, 1], [500, 2], [450, 90]], "holes": []}]}, "outside"),
        ({"type": "polygons", "polygons": [{"exterior": "square", "holes": []}]}, "malformed"),
    ]
    for geometry, words in cases:
        with pytest.raises(GeometryError) as info:
            geo.normalize_geometry(geometry, width=W, height=H)
        assert words in info.value.reason and "part 0" not in info.value.reason


def test_an_outline_over_the_vertex_limit_is_simplified_only_when_asked() -> None:
    t = np.linspace(0, 2 * np.pi, 5000, endpoint=False)
    circle = {"type": "polygons", "polygons": [{"exterior": np.c_[160 + 100 * np.cos(t), 120 + 100 * np.sin(t)].tolist(), "holes": []}]}
    with pytest.raises(GeometryError, match="limit of 1000"):
        geo.normalize_geometry(circle, width=W, height=H, max_vertices=1000)
    out, repair = geo.normalize_geometry(circle, width=W, height=H, max_vertices=1000, simplify=True)
    assert geo.vertex_count(out) <= 1000
    assert repair is not None and repair["changes"] == ["simplified"] and "within" in repair["message"]
    assert geo.geometry_iou(out, circle, width=W, height=H) > 0.99


def test_the_batch_names_the_geometry_at_fault() -> None:
    good = {"type": "polygons", "polygons": [{"exterior": [[1, 1], [20, 1], [20, 20]], "holes": []}]}
    bad = {"type": "polygons", "polygons": [{"exterior": [[400, 1], [500, 2], [450, 90]], "holes": []}]}
    with pytest.raises(GeometryError) as info:
        geo.normalize_geometries([good, good, bad], width=W, height=H)
    assert info.value.index == 2
