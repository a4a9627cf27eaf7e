"""Tests for ml.geometry: validation, polygon ⇄ mask ⇄ RLE round trips, COCO segmentation, IoU."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pycocotools.mask as mask_utils
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from pycocotools.coco import COCO

from ml import geometry as geo
from ml.geometry import GeometryError
from tests.datasets import DATASETS

FRUITS = DATASETS / "fruits_nuts" / "trainval.json"
DATUMARO_COCO = DATASETS / "datumaro_coco"

W, H = 640, 480


def square(x0: float, y0: float, x1: float, y1: float) -> list[list[float]]:
    return [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]


def polygons(*parts: dict[str, Any]) -> dict[str, Any]:
    return {"type": "polygons", "polygons": list(parts)}


def blob(rng: np.random.Generator, cx: float, cy: float, radius: float, n: int = 60) -> list[list[float]]:
    """A smooth star-shaped outline, like a hand-drawn object."""
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    wobble = 1 + sum(
        rng.uniform(0, 0.12) * np.sin(k * t + rng.uniform(0, 2 * np.pi)) for k in range(2, 5)
    )
    return np.c_[cx + radius * wobble * np.cos(t), cy + radius * wobble * np.sin(t)].tolist()


def shapely_area(parts: list[dict[str, Any]]) -> float:
    return shapely.union_all([shapely.Polygon(p["exterior"], p["holes"]) for p in parts]).area


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


def load_coco(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


# --------------------------------------------------------------------------------------------
# Mask ⇄ polygons round trips
# --------------------------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(arrays(np.bool_, st.tuples(st.integers(1, 24), st.integers(1, 24))))
def test_mask_to_polygons_gives_back_exactly_the_same_pixels(mask: np.ndarray) -> None:
    parts = geo.mask_to_polygons(mask)
    height, width = mask.shape
    if not mask.any():
        assert parts == []
        return
    for part in parts:
        assert shapely.Polygon(part["exterior"], part["holes"]).is_valid
    back = geo.polygons_to_mask(parts, width=width, height=height)
    assert np.array_equal(back, mask)
    # the outlines are pixel edges, so their area is the pixel count
    assert shapely_area(parts) == pytest.approx(mask.sum())


@settings(max_examples=80, deadline=None)
@given(arrays(np.bool_, st.tuples(st.integers(1, 24), st.integers(1, 24))), st.sampled_from([0.5, 1.0, 3.0]))
def test_simplified_outlines_of_any_mask_are_valid(mask: np.ndarray, tolerance: float) -> None:
    parts = geo.mask_to_polygons(mask, tolerance=tolerance)
    assert bool(parts) == bool(mask.any())
    for part in parts:
        assert shapely.Polygon(part["exterior"], part["holes"]).is_valid
    if parts:
        height, width = mask.shape
        geo.validate_geometry({"type": "polygons", "polygons": parts}, width=width, height=height)


def test_polygon_with_holes_and_several_parts_survives_mask_round_trip() -> None:
    ring = {"exterior": square(10.3, 10.7, 200.2, 150.9), "holes": [
        square(20.5, 20.5, 60.5, 60.5),                       # holds an island (part 2)
        blob(np.random.default_rng(4), 140.3, 90.6, 30),     # a round hole
    ]}
    separate = {"exterior": blob(np.random.default_rng(3), 400, 300, 60), "holes": []}
    island = {"exterior": square(30.2, 30.2, 50.1, 50.1), "holes": []}
    geometry = geo.validate_geometry(polygons(ring, separate, island), width=W, height=H)
    mask = geo.geometry_to_mask(geometry, width=W, height=H)

    parts = geo.mask_to_polygons(mask)

    assert len(parts) == 3
    assert sorted(len(p["holes"]) for p in parts) == [0, 0, 2]
    back = geo.polygons_to_mask(parts, width=W, height=H)
    assert iou(back, mask) == 1.0
    # and against the original vector shapes: pixels lose at most the sub-pixel detail
    assert shapely_area(parts) == pytest.approx(shapely_area(geometry["polygons"]), rel=0.02)


def vertex_count(parts: list[dict[str, Any]]) -> int:
    return sum(len(p["exterior"]) + sum(map(len, p["holes"])) for p in parts)


@pytest.mark.parametrize("seed", range(8))
def test_realistic_blobs_round_trip_exactly_and_with_simplification(seed: int) -> None:
    rng = np.random.default_rng(seed)
    radius = float(rng.uniform(50, 150))
    exterior = blob(rng, 320, 240, radius)
    hole = blob(rng, 320, 240, radius * 0.3, n=30)
    mask = geo.polygons_to_mask([{"exterior": exterior, "holes": [hole]}], width=W, height=H)

    exact = geo.mask_to_polygons(mask)
    fine = geo.mask_to_polygons(mask, tolerance=0.5)
    coarse = geo.mask_to_polygons(mask, tolerance=1.0)

    assert geo.mask_iou(geo.polygons_to_mask(exact, width=W, height=H), mask) == 1.0
    assert geo.mask_iou(geo.polygons_to_mask(fine, width=W, height=H), mask) >= 0.995
    # tolerance 1 px shaves the small hole most (IoU >= 0.99 for the exterior alone from r ~ 50)
    assert geo.mask_iou(geo.polygons_to_mask(coarse, width=W, height=H), mask) >= 0.985
    assert vertex_count(fine) < vertex_count(exact) / 2
    assert vertex_count(coarse) < vertex_count(exact) / 5
    for parts in (fine, coarse):
        assert [len(p["holes"]) for p in parts] == [1]
        for part in parts:
            assert shapely.Polygon(part["exterior"], part["holes"]).is_valid


@pytest.mark.parametrize(("radius", "tolerance", "min_iou"), [(25, 0.5, 0.99), (10, 0.5, 0.97), (5, 0.5, 0.95)])
def test_small_blobs_lose_a_little_when_simplified(radius: float, tolerance: float, min_iou: float) -> None:
    for seed in range(5):
        mask = geo.polygons_to_mask([{"exterior": blob(np.random.default_rng(seed), 50, 50, radius)}],
                                    width=100, height=100)
        parts = geo.mask_to_polygons(mask, tolerance=tolerance)
        assert geo.mask_iou(geo.polygons_to_mask(parts, width=100, height=100), mask) >= min_iou


@pytest.mark.parametrize(
    "pixels",
    [
        [(5, 5)],                                  # a single pixel
        [(2, c) for c in range(3, 15)],           # a 1-pixel-wide horizontal line
        [(r, 7) for r in range(0, 20)],           # a vertical line touching the image border
        [(3, 3), (4, 4), (5, 5), (6, 6)],         # a diagonal chain: pixels touch only at corners
        [(1, 1), (1, 2), (2, 1), (3, 3)],         # a blob plus a diagonal neighbour
    ],
)
def test_tiny_and_thin_masks_are_traced_exactly(pixels: list[tuple[int, int]]) -> None:
    mask = np.zeros((20, 20), dtype=bool)
    for r, c in pixels:
        mask[r, c] = True

    parts = geo.mask_to_polygons(mask)

    assert np.array_equal(geo.polygons_to_mask(parts, width=20, height=20), mask)
    for part in parts:
        assert shapely.Polygon(part["exterior"], part["holes"]).is_valid


def test_diagonal_pixels_become_separate_parts_meeting_at_a_corner() -> None:
    mask = np.zeros((4, 4), dtype=bool)
    mask[0, 0] = mask[1, 1] = True

    parts = geo.mask_to_polygons(mask)

    assert sorted(sorted(map(tuple, p["exterior"])) for p in parts) == [
        [(0.0, 0.0), (0.0, 1.0), (1.0, 0.0), (1.0, 1.0)],
        [(1.0, 1.0), (1.0, 2.0), (2.0, 1.0), (2.0, 2.0)],
    ]


def test_mask_outline_follows_pixel_corners() -> None:
    mask = np.zeros((6, 8), dtype=bool)
    mask[1:4, 2:6] = True   # rows 1..3, columns 2..5
    mask[2, 3] = False      # a one-pixel hole

    (part,) = geo.mask_to_polygons(mask)

    assert shapely.Polygon(part["exterior"]).bounds == (2.0, 1.0, 6.0, 4.0)
    assert len(part["exterior"]) == 4
    assert [sorted(map(tuple, h)) for h in part["holes"]] == [[(3.0, 2.0), (3.0, 3.0), (4.0, 2.0), (4.0, 3.0)]]


def test_polygon_rasterisation_samples_pixel_centres() -> None:
    # 0.4..1.6 covers the centres 0.5 and 1.5; 0.6..1.4 covers none
    covered = geo.polygons_to_mask([{"exterior": square(0.4, 0.4, 1.6, 1.6)}], width=4, height=4)
    missed = geo.polygons_to_mask([{"exterior": square(0.6, 0.6, 1.4, 1.4)}], width=4, height=4)
    assert covered.sum() == 4 and covered[:2, :2].all()
    assert missed.sum() == 0


def test_polygons_to_rle_matches_polygons_to_mask() -> None:
    rng = np.random.default_rng(11)
    plain = [{"exterior": blob(rng, 100, 100, 40)}, {"exterior": blob(rng, 300, 200, 50)}]
    holed = [{"exterior": square(10, 10, 90, 90), "holes": [square(30, 30, 60, 60)]}]
    for parts in (plain, holed):
        rle = geo.polygons_to_rle(parts, width=W, height=H)
        assert isinstance(rle["counts"], str)
        assert np.array_equal(geo.rle_to_mask(rle), geo.polygons_to_mask(parts, width=W, height=H))


# --------------------------------------------------------------------------------------------
# RLE
# --------------------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(arrays(np.bool_, st.tuples(st.integers(1, 30), st.integers(1, 30))))
def test_rle_round_trip_and_uncompressed_counts(mask: np.ndarray) -> None:
    rle = geo.mask_to_rle(mask)
    assert rle["size"] == list(mask.shape) and isinstance(rle["counts"], str)
    assert np.array_equal(geo.rle_to_mask(rle), mask)
    # the uncompressed form (column-major runs, starting with zeros) parses to the same RLE
    flat = mask.flatten(order="F").astype(np.int8)
    changes = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate(([0], changes, [flat.size]))
    runs = np.diff(bounds).tolist()
    if flat[0]:
        runs = [0, *runs]
    uncompressed = {"size": list(mask.shape), "counts": runs}
    assert np.array_equal(geo.rle_to_mask(uncompressed), mask)
    if mask.any():
        height, width = mask.shape
        parsed = geo.validate_geometry({"type": "mask", "rle": uncompressed}, width=width, height=height)
        assert parsed["rle"] == rle


@settings(max_examples=80, deadline=None)
@given(arrays(np.bool_, st.tuples(st.integers(1, 30), st.integers(1, 30))), st.integers(-3, 33), st.integers(-3, 33),
       st.integers(-3, 33), st.integers(-3, 33))
def test_rle_within_bounds_equals_the_whole_masks_rle(mask: np.ndarray, a: int, b: int, c: int, d: int) -> None:
    """mask_to_rle(within=...) reads only the bounds: the same RLE as the whole when every set pixel is inside."""
    height, width = mask.shape
    x0, x1, y0, y1 = min(a, c), max(a, c), min(b, d), max(b, d)
    inside = np.zeros_like(mask)
    inside[max(0, y0):max(0, y1), max(0, x0):max(0, x1)] = mask[max(0, y0):max(0, y1), max(0, x0):max(0, x1)]
    assert geo.mask_to_rle(inside, within=(x0, y0, x1, y1)) == geo.mask_to_rle(inside)
    # Pixels outside the bounds are not read: taken as 0.
    assert geo.mask_to_rle(mask, within=(x0, y0, x1, y1)) == geo.mask_to_rle(inside)
    assert geo.mask_to_rle(mask.astype(np.uint8) * 255, within=(0, 0, width, height)) == geo.mask_to_rle(mask)


def test_uncompressed_rle_from_datumaro_is_converted_to_the_pycocotools_string() -> None:
    rle = {"counts": [0, 20, 30], "size": [10, 5]}
    parsed = geo.validate_geometry({"type": "mask", "rle": rle}, width=5, height=10)
    expected = mask_utils.frPyObjects(rle, 10, 5)["counts"].decode()
    assert parsed == {"type": "mask", "rle": {"size": [10, 5], "counts": expected}}
    mask = geo.rle_to_mask(parsed["rle"])
    assert mask.sum() == 20 and mask[:, :2].all()  # column-major: the first two columns


def test_compressed_counts_may_arrive_as_bytes() -> None:
    encoded = mask_utils.encode(np.asfortranarray(np.eye(6, dtype=np.uint8)))
    parsed = geo.validate_geometry({"type": "mask", "rle": encoded}, width=6, height=6)
    assert parsed["rle"]["counts"] == encoded["counts"].decode()


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------

TRIANGLE = [[10, 10], [100, 10], [50, 80]]
GOOD_MASK = geo.mask_to_rle(np.pad(np.ones((10, 10), dtype=bool), ((0, H - 10), (0, W - 10))))

INVALID = [
    pytest.param("not a dict", r"geometry must be an object", id="not-an-object"),
    pytest.param({"type": "circle"}, r'type must be "polygons" or "mask"', id="unknown-type"),
    pytest.param({"type": "polygons", "polygons": [], "z": 1}, r"unexpected key 'z'", id="extra-key"),
    pytest.param({"type": "polygons", "polygons": {}}, r'"polygons" must be a list', id="polygons-not-list"),
    pytest.param(polygons(), r"polygons list is empty", id="empty-polygons"),
    pytest.param(polygons({"holes": []}), r'part 0 has no "exterior"', id="no-exterior"),
    pytest.param(polygons({"exterior": TRIANGLE, "color": "red"}), r"unexpected key 'color' in part 0",
                 id="extra-part-key"),
    pytest.param(polygons({"exterior": TRIANGLE}, {"exterior": TRIANGLE}, {"exterior": [[1, 1], [5, 5]]}),
                 r"^part 2 has fewer than 3 points$", id="two-points"),
    pytest.param(polygons({"exterior": [[1, 1], [5, 5], [1, 1]]}), r"part 0 has fewer than 3 points",
                 id="closed-two-points"),
    pytest.param(polygons({"exterior": [[1, 1], [5, 5], [5, 5], [1, 1], [5, 5]]}),
                 r"part 0 has fewer than 3 distinct points", id="duplicates"),
    pytest.param(polygons({"exterior": [[1, 1], [2, 2], [3, 3]]}), r"part 0 has zero area", id="collinear"),
    pytest.param(polygons({"exterior": [[1, 1], [float("nan"), 2], [3, 9]]}),
                 r"coordinates must be finite numbers", id="nan"),
    pytest.param(polygons({"exterior": [[1, 1], [float("inf"), 2], [3, 9]]}),
                 r"coordinates must be finite numbers", id="inf"),
    pytest.param(polygons({"exterior": [[1, 1], ["2", 2], [3, 9]]}),
                 r"coordinates must be finite numbers", id="string"),
    pytest.param(polygons({"exterior": [[1, 1], [None, 2], [3, 9]]}),
                 r"coordinates must be finite numbers", id="null"),
    pytest.param(polygons({"exterior": [[1, 1, 1], [2, 2, 2], [3, 9, 9]]}),
                 r"part 0 must be a list of \[x, y\] points", id="3d-points"),
    pytest.param(polygons({"exterior": [[1, 1], [2], [3, 9]]}),
                 r"part 0 must be a list of \[x, y\] points", id="ragged"),
    pytest.param(polygons({"exterior": TRIANGLE}, {"exterior": [[0, 0], [40, 40], [40, 0], [0, 40]]}),
                 r"^part 1 is self-intersecting near \(20\.0, 20\.0\)$", id="bow-tie"),
    pytest.param(polygons({"exterior": [[900, 20], [910, 20], [905, 30]]}),
                 r"^point \(900\.0, 20\.0\) of part 0 is outside the 640x480 image$", id="outside"),
    pytest.param(polygons({"exterior": [[10, 10], [20, 10], [15, -0.5]]}),
                 r"point \(15\.0, -0\.5\) of part 0 is outside", id="outside-negative"),
    pytest.param(polygons({"exterior": TRIANGLE},
                          {"exterior": square(0, 0, 50, 50), "holes": [square(60, 60, 70, 70)]}),
                 r"^hole 0 of part 1 is not inside its exterior$", id="hole-outside"),
    pytest.param(polygons({"exterior": square(0, 0, 50, 50), "holes": [square(40, 40, 70, 45)]}),
                 r"hole 0 of part 0 is not inside its exterior", id="hole-crossing"),
    pytest.param(polygons({"exterior": square(0, 0, 50, 50),
                           "holes": [square(10, 10, 30, 30), square(20, 20, 40, 40)]}),
                 r"holes 0 and 1 of part 0 overlap", id="overlapping-holes"),
    pytest.param(polygons({"exterior": square(0, 0, 50, 50), "holes": [[[10, 10], [30, 30], [30, 10], [10, 30]]]}),
                 r"hole 0 of part 0 is self-intersecting near \(20\.0, 20\.0\)", id="bow-tie-hole"),
    pytest.param(polygons({"exterior": square(0, 0, 50, 50), "holes": [[[10, 10], [20, 20], [30, 30]]]}),
                 r"hole 0 of part 0 has zero area", id="flat-hole"),
    pytest.param(polygons({"exterior": square(0, 0, 50, 50), "holes": {}}),
                 r"holes of part 0 must be a list", id="holes-not-list"),
    pytest.param({"type": "mask", "rle": {"size": [50, 100], "counts": "PQ"}},
                 r"^mask size 100x50 does not match the 640x480 image$", id="mask-size"),
    pytest.param({"type": "mask", "rle": {"size": [H, W], "counts": [10, 20]}},
                 r"^RLE counts do not add up to height\*width$", id="counts-sum-list"),
    pytest.param({"type": "mask", "rle": {"size": [H, W], "counts": GOOD_MASK["counts"][:-2] + "0"}},
                 r"RLE counts do not add up to height\*width", id="counts-sum-string"),
    pytest.param({"type": "mask", "rle": {"size": [H, W], "counts": "\x7f\x7f"}},
                 r"RLE counts string has invalid characters", id="counts-bad-chars"),
    pytest.param({"type": "mask", "rle": {"size": [H, W], "counts": "PP"}},
                 r"RLE counts string is truncated", id="counts-truncated"),
    pytest.param({"type": "mask", "rle": {"size": [H, W], "counts": [H * W + 5, -5]}},
                 r"RLE counts must not be negative", id="counts-negative"),
    pytest.param({"type": "mask", "rle": {"size": [H, W], "counts": [1.5, H * W - 1.5]}},
                 r"RLE counts must be integers", id="counts-floats"),
    pytest.param({"type": "mask", "rle": {"size": [H, W], "counts": [H * W]}}, r"^mask is empty$",
                 id="empty-mask"),
    pytest.param({"type": "mask", "rle": {"size": [H], "counts": [H * W]}},
                 r"RLE size must be \[height, width\]", id="bad-size"),
    pytest.param({"type": "mask"}, r'"rle" object', id="no-rle"),
]


@pytest.mark.parametrize(("geometry", "reason"), INVALID)
def test_invalid_geometry_is_rejected_with_a_reason(geometry: Any, reason: str) -> None:
    with pytest.raises(GeometryError, match=reason):
        geo.validate_geometry(geometry, width=W, height=H)


def test_error_locates_the_part_hole_and_point() -> None:
    with pytest.raises(GeometryError) as info:
        geo.validate_geometry(
            polygons({"exterior": TRIANGLE}, {"exterior": square(0, 0, 50, 50), "holes": [square(60, 60, 70, 70)]}),
            width=W, height=H,
        )
    assert (info.value.part, info.value.hole) == (1, 0)
    with pytest.raises(GeometryError) as info:
        geo.validate_geometry(polygons({"exterior": [[900, 20], [910, 20], [905, 30]]}), width=W, height=H)
    assert info.value.point == (900.0, 20.0)


def test_validation_normalises_numbers_closing_points_and_holes() -> None:
    raw = polygons(
        {"exterior": [[0, 0], [W, 0], [W, H], [0, H], [0, 0]]},   # exactly on the border, closed
        {"exterior": square(10, 10, 50, 50), "holes": [square(20, 20, 30, 30) + [[20, 20]]]},
    )
    before = copy.deepcopy(raw)

    clean = geo.validate_geometry(raw, width=W, height=H)

    assert raw == before  # input untouched
    assert clean["polygons"][0] == {"exterior": [[0.0, 0.0], [640.0, 0.0], [640.0, 480.0], [0.0, 480.0]],
                                    "holes": []}
    assert clean["polygons"][1]["holes"] == [[[20.0, 20.0], [30.0, 20.0], [30.0, 30.0], [20.0, 30.0]]]
    assert all(type(v) is float for ring in clean["polygons"] for pt in ring["exterior"] for v in pt)
    assert geo.validate_geometry(clean, width=W, height=H) == clean


def test_touching_parts_and_holes_touching_the_exterior_are_valid() -> None:
    geometry = polygons(
        {"exterior": square(0, 0, 10, 10), "holes": [[[0, 5], [5, 2], [5, 8]]]},   # hole touches at (0, 5)
        {"exterior": square(10, 0, 20, 10)},                                     # shares an edge with part 0
        {"exterior": square(5, 5, 15, 15)},                                      # overlaps: union semantics
    )
    geo.validate_geometry(geometry, width=W, height=H)


def test_validate_geometries_reports_which_geometry_failed() -> None:
    good = polygons({"exterior": TRIANGLE})
    bad = polygons({"exterior": [[0, 0], [40, 40], [40, 0], [0, 40]]})
    mask = {"type": "mask", "rle": GOOD_MASK}

    clean = geo.validate_geometries([good, mask, good], width=W, height=H)
    assert [g["type"] for g in clean] == ["polygons", "mask", "polygons"]
    with pytest.raises(GeometryError, match="part 0 is self-intersecting") as info:
        geo.validate_geometries([good, mask, bad, good], width=W, height=H)
    assert info.value.index == 2
    with pytest.raises(GeometryError, match="mask is empty") as info:
        geo.validate_geometries([good, {"type": "mask", "rle": {"size": [H, W], "counts": [H * W]}}], width=W, height=H)
    assert info.value.index == 1


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 100), st.floats(0, 100)), min_size=3, max_size=9))
def test_validation_agrees_with_shapely(points: list[tuple[float, float]]) -> None:
    shape = shapely.Polygon(points)
    geometry = polygons({"exterior": [list(p) for p in points]})
    distinct = len(set(points)) >= 3
    if distinct and shape.is_valid and shape.area > 1e-9:
        assert geo.validate_geometry(geometry, width=100, height=100)["polygons"][0]["exterior"]
    else:
        with pytest.raises(GeometryError):
            geo.validate_geometry(geometry, width=100, height=100)


# --------------------------------------------------------------------------------------------
# bbox and area
# --------------------------------------------------------------------------------------------


def test_bbox_and_area_of_polygons_by_hand() -> None:
    holed = polygons({"exterior": square(10, 20, 20, 30), "holes": [square(12, 22, 14, 24)]})
    assert geo.bbox_and_area(holed, width=W, height=H) == ([10.0, 20.0, 10.0, 10.0], 96.0)

    triangle = polygons({"exterior": [[0, 0], [4, 0], [0, 3]]})
    assert geo.bbox_and_area(triangle, width=W, height=H) == ([0.0, 0.0, 4.0, 3.0], 6.0)

    two = polygons({"exterior": square(0, 0, 2, 2)}, {"exterior": square(10, 10, 13, 11)})
    assert geo.bbox_and_area(two, width=W, height=H) == ([0.0, 0.0, 13.0, 11.0], 7.0)

    overlapping = polygons({"exterior": square(0, 0, 4, 4)}, {"exterior": square(2, 2, 6, 6)})
    assert geo.bbox_and_area(overlapping, width=W, height=H)[1] == 28.0  # 16 + 16 - 4


def test_bbox_and_area_of_a_mask_by_hand_and_by_pycocotools() -> None:
    mask = np.zeros((H, W), dtype=bool)
    mask[2:5, 3:8] = True     # rows 2..4, columns 3..7
    mask[100, 200] = True
    rle = geo.mask_to_rle(mask)

    bbox, area = geo.bbox_and_area({"type": "mask", "rle": rle}, width=W, height=H)

    assert (bbox, area) == ([3.0, 2.0, 198.0, 99.0], 16.0)
    coco_rle = {"size": rle["size"], "counts": rle["counts"].encode()}
    assert bbox == mask_utils.toBbox(coco_rle).tolist()
    assert area == float(mask_utils.area(coco_rle))


# --------------------------------------------------------------------------------------------
# COCO segmentation
# --------------------------------------------------------------------------------------------


def test_fruits_nuts_coco_round_trip_keeps_every_instance() -> None:
    data = load_coco(FRUITS)
    coco = COCO()
    coco.dataset = data
    coco.createIndex()
    images = {im["id"]: im for im in data["images"]}
    assert len(data["annotations"]) == 165

    for ann in data["annotations"]:
        image = images[ann["image_id"]]
        width, height = image["width"], image["height"]

        geometry = geo.from_coco_segmentation(ann["segmentation"], width=width, height=height)
        segmentation, iscrowd = geo.to_coco_segmentation(geometry, width=width, height=height)
        bbox, area = geo.bbox_and_area(geometry, width=width, height=height)

        assert iscrowd == 0
        assert np.allclose(segmentation[0], ann["segmentation"][0])
        assert area == pytest.approx(ann["area"], rel=1e-9)   # the file's area is the shoelace area
        assert np.allclose(bbox, ann["bbox"], atol=1.0)        # the file's bbox is rounded down
        ours = geo.geometry_to_mask(geometry, width=width, height=height)
        theirs = coco.annToMask(ann).astype(bool)
        assert geo.mask_iou(ours, theirs) >= 0.99
        assert ours.sum() == pytest.approx(area, rel=0.05)     # pixel count ≈ vector area


def test_datumaro_instances_polygon_and_crowd_rle() -> None:
    data = load_coco(DATUMARO_COCO / "coco_instances" / "annotations" / "instances_val.json")
    image = data["images"][0]
    width, height = image["width"], image["height"]
    polygon_ann, crowd_ann = data["annotations"]

    poly = geo.from_coco_segmentation(polygon_ann["segmentation"], width=width, height=height)
    assert poly == polygons({"exterior": [[0.0, 0.0], [1.0, 0.0], [1.0, 2.0], [0.0, 2.0]], "holes": []})
    assert geo.bbox_and_area(poly, width=width, height=height) == (polygon_ann["bbox"], polygon_ann["area"])

    crowd = geo.from_coco_segmentation(crowd_ann["segmentation"], width=width, height=height)
    assert crowd["type"] == "mask" and isinstance(crowd["rle"]["counts"], str)
    bbox, area = geo.bbox_and_area(crowd, width=width, height=height)
    assert area == crowd_ann["area"]
    # the file says [0, 0, 1, 9] (an inclusive x2/y2 convention); 20 pixels in two columns of
    # ten are a 2x10 box, as pycocotools computes it
    assert bbox == [0.0, 0.0, 2.0, 10.0]
    coco_rle = mask_utils.frPyObjects(crowd_ann["segmentation"], height, width)
    assert bbox == mask_utils.toBbox(coco_rle).tolist()
    segmentation, iscrowd = geo.to_coco_segmentation(crowd, width=width, height=height, iscrowd=True)
    assert iscrowd == 1
    original = mask_utils.decode(mask_utils.frPyObjects(crowd_ann["segmentation"], height, width))
    assert np.array_equal(geo.rle_to_mask(segmentation), original.astype(bool))


def test_datumaro_bbox_only_annotation_is_an_error_the_importer_can_report() -> None:
    data = load_coco(DATUMARO_COCO / "coco_instances" / "annotations" / "instances_train.json")
    image = data["images"][0]
    with pytest.raises(GeometryError, match="segmentation is empty"):
        geo.from_coco_segmentation(data["annotations"][0]["segmentation"], width=image["width"],
                                   height=image["height"])


@pytest.mark.parametrize("name", ["stuff_train.json", "stuff_val.json"])
def test_datumaro_stuff_rle_is_read(name: str) -> None:
    data = load_coco(DATUMARO_COCO / "coco_stuff" / "annotations" / name)
    image = data["images"][0]
    for ann in data["annotations"]:
        geometry = geo.from_coco_segmentation(ann["segmentation"], width=image["width"], height=image["height"])
        _, area = geo.bbox_and_area(geometry, width=image["width"], height=image["height"])
        assert area == ann["area"]


def test_to_coco_writes_holes_and_masks_as_rle_that_pycocotools_reads() -> None:
    holed = geo.validate_geometry(
        polygons({"exterior": square(10, 10, 60, 60), "holes": [square(20, 20, 30, 30)]},
                 {"exterior": [[100, 100], [150, 100], [120, 140]]}),
        width=W, height=H,
    )
    plain = geo.validate_geometry(polygons({"exterior": [[100, 100], [150, 100], [120, 140]]}), width=W, height=H)
    mask = {"type": "mask", "rle": GOOD_MASK}
    annotations = []
    for k, geometry in enumerate((holed, plain, mask)):
        segmentation, iscrowd = geo.to_coco_segmentation(geometry, width=W, height=H)
        assert iscrowd == 0
        bbox, area = geo.bbox_and_area(geometry, width=W, height=H)
        annotations.append({"id": k + 1, "image_id": 1, "category_id": 1, "segmentation": segmentation,
                            "bbox": bbox, "area": area, "iscrowd": iscrowd})
    assert isinstance(annotations[0]["segmentation"], dict)
    assert isinstance(annotations[0]["segmentation"]["counts"], str)
    assert annotations[1]["segmentation"] == [[100.0, 100.0, 150.0, 100.0, 120.0, 140.0]]
    assert isinstance(annotations[2]["segmentation"], dict)

    coco = COCO()
    coco.dataset = json.loads(json.dumps({
        "images": [{"id": 1, "width": W, "height": H, "file_name": "x.jpg"}],
        "categories": [{"id": 1, "name": "thing"}],
        "annotations": annotations,
    }))
    coco.createIndex()
    for ann, geometry in zip(coco.dataset["annotations"], (holed, plain, mask)):
        expected = geo.geometry_to_mask(geometry, width=W, height=H)
        assert np.array_equal(coco.annToMask(ann).astype(bool), expected)
    # and it comes back as the same pixels
    back = geo.from_coco_segmentation(annotations[0]["segmentation"], width=W, height=H)
    assert geo.geometry_iou(back, holed, width=W, height=H) == 1.0


@pytest.mark.parametrize(
    ("segmentation", "reason"),
    [
        ([[1, 1, 5, 5]], r"no area"),
        ([[1, 1, 5, 5, 9, 1], [1, 1, 5, 5, 9]], r"part 1 has an odd number of coordinates"),
        ([[1, 1, 5, 5, 9, 9]], r"no area"),
        ([["a", 1, 5, 5, 9, 1]], r"part 0 must be a flat list of numbers"),
        ({"size": [10, 10], "counts": [100]}, r"mask size 10x10 does not match the 640x480 image"),
        ("polygon", r"segmentation must be a list of polygons or an RLE object"),
        ([], r"segmentation is empty"),
        ([[700, 10, 800, 10, 800, 90]], r"entirely outside"),
    ],
)
def test_from_coco_rejects_what_cannot_be_repaired(segmentation: Any, reason: str) -> None:
    with pytest.raises(GeometryError, match=reason):
        geo.from_coco_segmentation(segmentation, width=W, height=H)


def test_from_coco_repairs_crossing_and_spilling_outlines() -> None:
    bow_tie = [[0, 0, 40, 40, 40, 0, 0, 40]]
    repaired = geo.from_coco_segmentation(bow_tie, width=W, height=H)
    assert len(repaired["polygons"]) == 2
    assert geo.bbox_and_area(repaired, width=W, height=H)[1] == pytest.approx(800.0)

    spilling = [[600, 400, 700, 400, 700, 500, 600, 500]]   # reaches past the 640x480 image
    clipped = geo.from_coco_segmentation(spilling, width=W, height=H)
    assert geo.bbox_and_area(clipped, width=W, height=H) == ([600.0, 400.0, 40.0, 80.0], 3200.0)

    # a degenerate part next to a good one is dropped, the object kept
    mixed = geo.from_coco_segmentation([[1, 1, 5, 5], [10, 10, 20, 10, 20, 20]], width=W, height=H)
    assert len(mixed["polygons"]) == 1


# --------------------------------------------------------------------------------------------
# convert, simplify, repair, IoU
# --------------------------------------------------------------------------------------------


def test_convert_between_polygons_and_mask() -> None:
    source = polygons({"exterior": square(10, 10, 60, 60), "holes": [square(20, 20, 30, 30)]})

    as_mask = geo.convert(source, to="mask", width=W, height=H)
    as_polygons = geo.convert(as_mask, to="polygons", width=W, height=H)

    assert as_mask["type"] == "mask"
    assert geo.rle_to_mask(as_mask["rle"]).sum() == 2500 - 100
    assert len(as_polygons["polygons"]) == 1 and len(as_polygons["polygons"][0]["holes"]) == 1
    assert geo.geometry_iou(as_polygons, source, width=W, height=H) == 1.0
    assert geo.validate_geometry(as_polygons, width=W, height=H) == as_polygons
    with pytest.raises(GeometryError, match="cover no pixel"):
        geo.convert(polygons({"exterior": square(0.6, 0.6, 1.4, 1.4)}), to="mask", width=W, height=H)
    # a bow tie is untangled on the way (both triangles kept), not refused
    bow_tie = geo.convert(polygons({"exterior": [[0, 0], [40, 40], [40, 0], [0, 40]]}), to="mask", width=W, height=H)
    assert geo.rle_to_mask(bow_tie["rle"]).sum() == pytest.approx(800, rel=0.1)


def test_simplify_keeps_holes_and_validity() -> None:
    rng = np.random.default_rng(5)
    parts = [{"exterior": blob(rng, 200, 200, 100, n=400), "holes": [blob(rng, 200, 200, 30, n=200)]}]

    simple = geo.simplify_polygons(parts, 2.0)

    assert len(simple) == 1 and len(simple[0]["holes"]) == 1
    assert len(simple[0]["exterior"]) < 100
    assert shapely.Polygon(simple[0]["exterior"], simple[0]["holes"]).is_valid
    assert shapely_area(simple) == pytest.approx(shapely_area(parts), rel=0.02)


def test_repair_keeps_polygonal_pieces_and_drops_degenerate_ones() -> None:
    broken = [
        {"exterior": [[0, 0], [10, 10], [10, 0], [0, 10]]},              # bow-tie → 2 triangles
        {"exterior": [[0, 0], [1, 1], [2, 2]]},                          # a line → dropped
        {"exterior": [[0, 0], [1, 1]]},                                  # 2 points → dropped
        {"exterior": [[50, 50], [60, 50], [60, 60], [50, 60]], "holes": [[[55, 55], [70, 55], [70, 58]]]},
    ]
    repaired, repair = geo.normalize_geometry(polygons(*broken), width=W, height=H)
    assert len(repaired["polygons"]) == 3
    assert repair is not None and {"untangled", "dropped_parts", "holes_fixed"} <= set(repair["changes"])
    for part in repaired["polygons"]:
        assert shapely.Polygon(part["exterior"], part["holes"]).is_valid
    geo.validate_geometry(repaired, width=W, height=H)


def test_iou_of_known_overlaps() -> None:
    a = polygons({"exterior": square(0, 0, 20, 10)})
    b = polygons({"exterior": square(10, 0, 30, 10)})
    assert geo.geometry_iou(a, b, width=W, height=H) == pytest.approx(1 / 3)
    mask_b = geo.convert(b, to="mask", width=W, height=H)
    assert geo.geometry_iou(a, mask_b, width=W, height=H) == pytest.approx(1 / 3)
    ma = geo.geometry_to_mask(a, width=W, height=H)
    assert geo.mask_iou(ma, mask_b["rle"]) == pytest.approx(1 / 3)
    assert geo.mask_iou(ma, ma) == 1.0
    with pytest.raises(GeometryError, match="sizes differ"):
        geo.mask_iou(ma, np.zeros((3, 3), dtype=bool))


def test_circle_area_close_to_pi_r_squared() -> None:
    t = np.linspace(0, 2 * np.pi, 720, endpoint=False)
    circle = polygons({"exterior": np.c_[320 + 100 * np.cos(t), 240 + 100 * np.sin(t)].tolist()})
    _, area = geo.bbox_and_area(circle, width=W, height=H)
    assert area == pytest.approx(math.pi * 100**2, rel=1e-4)
    pixels = geo.geometry_to_mask(circle, width=W, height=H).sum()
    assert pixels == pytest.approx(area, rel=0.01)


# --------------------------------------------------------------------------------------------
# Votes over masks in RLE (rle_vote), holes subtracted without full-size arrays
# --------------------------------------------------------------------------------------------


@settings(max_examples=80, deadline=None)
@given(st.integers(1, 4).flatmap(lambda k: st.tuples(
    st.lists(arrays(np.bool_, (7, 5)), min_size=k, max_size=k), st.integers(1, k),
)))
def test_rle_vote_keeps_the_pixels_that_enough_masks_cover(case: tuple[list[np.ndarray], int]) -> None:
    masks, minimum = case
    voted = geo.rle_vote([geo.mask_to_rle(m) for m in masks], minimum)
    expected = np.sum(masks, axis=0) >= minimum
    assert np.array_equal(geo.rle_to_mask(voted), expected)
    # the same string pycocotools makes for that mask, so saved geometry does not change form
    assert voted == geo.mask_to_rle(expected)


def test_rle_vote_refuses_masks_of_different_sizes() -> None:
    with pytest.raises(GeometryError, match="different sizes"):
        geo.rle_vote([geo.mask_to_rle(np.ones((2, 3), bool)), geo.mask_to_rle(np.ones((3, 2), bool))], 1)


@settings(max_examples=60, deadline=None)
@given(
    st.tuples(st.integers(0, 20), st.integers(0, 20), st.integers(6, 30), st.integers(6, 30)),
    st.tuples(st.integers(1, 4), st.integers(1, 4), st.integers(1, 4), st.integers(1, 4)),
)
def test_holes_are_subtracted_exactly_as_on_pixel_arrays(outer: tuple[int, ...], inset: tuple[int, ...]) -> None:
    x, y, w, h = outer
    hole = [[x + inset[0], y + inset[1]], [x + w - inset[2], y + inset[1]], [x + w - inset[2], y + h - inset[3]], [x + inset[0], y + h - inset[3]]]
    ring = [[x, y], [x + w, y], [x + w, y + h], [x, y + h]]
    parts = [{"exterior": ring, "holes": [hole]}, {"exterior": [[40, 5], [48, 5], [48, 12]], "holes": []}]
    width, height = 50, 45

    def raster(rings: list[list[list[int]]]) -> np.ndarray:
        flat = [np.asarray(r, dtype=float).reshape(-1).tolist() for r in rings]
        return mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(flat, height, width))).astype(bool)

    expected = (raster([ring]) & ~raster([hole])) | raster([parts[1]["exterior"]])
    rle = geo.polygons_to_rle(parts, width=width, height=height)
    assert np.array_equal(geo.rle_to_mask(rle), expected)
    assert rle == geo.mask_to_rle(expected)
