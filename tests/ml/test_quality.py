"""Tests for ml.quality: scoring against ground truth, agreement and consensus merge, time aggregates.

Shapes are small axis-aligned rectangles whose pixel counts can be worked out by hand: the
rectangle [x0, x1] x [y0, y1] with integer corners covers (x1 - x0) * (y1 - y0) pixel centres.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ml import geometry as geo
from ml.quality import EXTRA, MISSING, agreement, fatigue_curve, merge, score, throughput

W, H = 40, 30


def ring(x0: float, y0: float, x1: float, y1: float) -> list[list[float]]:
    return [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]


def rect(x0: float, y0: float, x1: float, y1: float, holes: list[list[list[float]]] | None = None) -> dict[str, Any]:
    return {"type": "polygons", "polygons": [{"exterior": ring(x0, y0, x1, y1), "holes": holes or []}]}


def obj(uid: str, label: int, geometry: dict[str, Any]) -> dict[str, Any]:
    return {"uid": uid, "label": label, "geometry": geometry}


def mask_of(geometry: dict[str, Any]) -> np.ndarray:
    return geo.geometry_to_mask(geometry, width=W, height=H)


def kinds(result: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    return [(c["kind"], c["truth"], c["attempt"]) for c in result["conflicts"]]


# --------------------------------------------------------------------------------------------
# score
# --------------------------------------------------------------------------------------------


def test_identical_objects_score_perfectly() -> None:
    truth = [obj("t1", 1, rect(0, 0, 10, 10)), obj("t2", 2, rect(20, 5, 30, 25))]
    result = score(truth, truth, W, H)
    assert (result["precision"], result["recall"], result["f1"], result["mean_iou"]) == (1.0, 1.0, 1.0, 1.0)
    assert result["conflicts"] == []
    assert result["confusion"] == {1: {1: 1}, 2: {2: 1}}


def test_square_offset_by_two_pixels_has_iou_two_thirds() -> None:
    # 10x10 squares two pixels apart: intersection 8x10 = 80, union 120
    result = score([obj("t", 1, rect(0, 0, 10, 10))], [obj("a", 1, rect(2, 0, 12, 10))], W, H)
    assert result["mean_iou"] == pytest.approx(80 / 120)
    assert result["tp"] == 1 and result["f1"] == 1.0
    [conflict] = result["conflicts"]
    assert conflict["kind"] == "low_overlap"
    assert (conflict["truth"], conflict["attempt"]) == ("t", "a")
    assert conflict["iou"] == pytest.approx(2 / 3)


def test_offset_beyond_the_threshold_is_one_missing_and_one_extra() -> None:
    # 6 pixels apart: intersection 40, union 160, IoU 0.25 < 0.5
    result = score([obj("t", 1, rect(0, 0, 10, 10))], [obj("a", 1, rect(6, 0, 16, 10))], W, H)
    assert (result["tp"], result["fp"], result["fn"], result["f1"]) == (0, 1, 1, 0.0)
    assert result["mean_iou"] is None
    missing, extra = result["conflicts"]
    assert (missing["kind"], missing["truth"], missing["closest"]) == ("missing", "t", "a")
    assert (extra["kind"], extra["attempt"], extra["closest"]) == ("extra", "a", "t")
    assert missing["iou"] == extra["iou"] == pytest.approx(0.25)
    assert result["confusion"] == {1: {MISSING: 1}, EXTRA: {1: 1}}
    # a lower threshold matches them
    assert score([obj("t", 1, rect(0, 0, 10, 10))], [obj("a", 1, rect(6, 0, 16, 10))], W, H, iou_threshold=0.2)["tp"] == 1


def test_a_forgotten_hole_lowers_the_overlap() -> None:
    # 20x20 with a 10x10 hole (300 pixels) against the same outline without the hole (400)
    holed = rect(0, 0, 20, 20, holes=[ring(5, 5, 15, 15)])
    result = score([obj("t", 1, holed)], [obj("a", 1, rect(0, 0, 20, 20))], W, H)
    assert result["mean_iou"] == pytest.approx(0.75)
    assert kinds(result) == [("low_overlap", "t", "a")]
    # the hole drawn: identical
    assert score([obj("t", 1, holed)], [obj("a", 1, holed)], W, H)["mean_iou"] == 1.0


def test_an_object_in_two_parts_drawn_as_one_part_and_as_two_objects() -> None:
    two_parts = {"type": "polygons", "polygons": [
        {"exterior": ring(0, 0, 10, 10), "holes": []}, {"exterior": ring(20, 0, 30, 10), "holes": []},
    ]}
    truth = [obj("t", 1, two_parts)]
    both = score(truth, [obj("a", 1, two_parts)], W, H)
    assert both["mean_iou"] == 1.0 and both["conflicts"] == []
    # one part of two: IoU 100 / 200, matched at the 0.5 threshold but a low overlap
    half = score(truth, [obj("a", 1, rect(0, 0, 10, 10))], W, H)
    assert half["tp"] == 1 and half["mean_iou"] == pytest.approx(0.5)
    assert kinds(half) == [("low_overlap", "t", "a")]
    # each part as its own object: one matches, the other is extra
    split = score(truth, [obj("a1", 1, rect(0, 0, 10, 10)), obj("a2", 1, rect(20, 0, 30, 10))], W, H)
    assert (split["tp"], split["fp"], split["fn"]) == (1, 1, 0)
    assert kinds(split) == [("low_overlap", "t", "a1"), ("extra", None, "a2")]


def test_rle_mask_and_polygon_of_the_same_pixels_agree() -> None:
    polygon = rect(3, 4, 13, 9)
    as_mask = {"type": "mask", "rle": geo.geometry_to_rle(polygon, width=W, height=H)}
    result = score([obj("t", 1, polygon)], [obj("a", 1, as_mask)], W, H)
    assert result["mean_iou"] == 1.0 and result["f1"] == 1.0


def test_wrong_label_is_reported_and_not_a_true_positive() -> None:
    truth = [obj("t1", 1, rect(0, 0, 10, 10)), obj("t2", 2, rect(20, 0, 30, 10))]
    attempt = [obj("a1", 2, rect(0, 0, 10, 10)), obj("a2", 2, rect(20, 0, 30, 10))]
    result = score(truth, attempt, W, H)
    assert (result["tp"], result["fp"], result["fn"]) == (1, 1, 1)
    assert result["precision"] == result["recall"] == result["f1"] == 0.5
    assert result["mean_iou"] == 1.0
    assert kinds(result) == [("wrong_label", "t1", "a1")]
    assert result["conflicts"][0]["truth_label"] == 1 and result["conflicts"][0]["attempt_label"] == 2
    assert result["confusion"] == {1: {2: 1}, 2: {2: 1}}
    assert result["per_label"][1] == {
        "tp": 0, "fp": 0, "fn": 1, "truth": 1, "attempt": 0, "precision": 0.0, "recall": 0.0, "f1": 0.0,
    }
    assert result["per_label"][2] == {
        "tp": 1, "fp": 1, "fn": 0, "truth": 1, "attempt": 2, "precision": 0.5, "recall": 1.0, "f1": pytest.approx(2 / 3),
    }


def test_missing_and_extra_objects() -> None:
    truth = [obj("t1", 1, rect(0, 0, 10, 10)), obj("t2", 1, rect(20, 0, 30, 10))]
    attempt = [obj("a1", 1, rect(0, 0, 10, 10)), obj("a2", 3, rect(0, 20, 10, 30))]
    result = score(truth, attempt, W, H)
    assert (result["tp"], result["fp"], result["fn"]) == (1, 1, 1)
    assert kinds(result) == [("missing", "t2", None), ("extra", None, "a2")]
    assert result["conflicts"][0]["iou"] == 0.0 and result["conflicts"][0]["closest"] is None
    assert result["confusion"] == {1: {1: 1, MISSING: 1}, EXTRA: {3: 1}}
    assert result["per_label"][3]["fp"] == 1


def test_matching_is_greedy_by_iou_and_one_to_one() -> None:
    # every attempt overlaps both truths (IoU 90/110 with the other one): each goes to its twin
    t1, t2 = rect(0, 0, 10, 10), rect(1, 0, 11, 10)
    truth = [obj("t1", 1, t1), obj("t2", 1, t2)]
    attempt = [obj("a1", 1, rect(1, 0, 11, 10)), obj("a2", 1, rect(0, 0, 10, 10))]
    result = score(truth, attempt, W, H)
    assert sorted((i, j) for i, j, _ in result["matches"]) == [(0, 1), (1, 0)]
    assert result["mean_iou"] == 1.0


def test_empty_against_empty_is_perfect_and_empty_against_something_is_zero() -> None:
    nothing = score([], [], W, H)
    assert (nothing["precision"], nothing["recall"], nothing["f1"], nothing["mean_iou"]) == (1.0, 1.0, 1.0, None)
    assert nothing["conflicts"] == [] and nothing["confusion"] == {}
    forgot = score([obj("t", 1, rect(0, 0, 5, 5))], [], W, H)
    assert (forgot["precision"], forgot["recall"], forgot["f1"]) == (0.0, 0.0, 0.0)
    assert kinds(forgot) == [("missing", "t", None)]


rectangles = st.tuples(
    st.integers(0, W - 2), st.integers(0, H - 2), st.integers(1, 15), st.integers(1, 15), st.integers(1, 3)
).map(lambda t: (t[0], t[1], min(W, t[0] + t[2]), min(H, t[1] + t[3]), t[4]))
versions_of = st.lists(rectangles, max_size=6, unique_by=lambda r: r[:4])


def as_objects(rects: list[tuple[int, int, int, int, int]]) -> list[dict[str, Any]]:
    return [obj(f"o{k}", label, rect(x0, y0, x1, y1)) for k, (x0, y0, x1, y1, label) in enumerate(rects)]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(versions_of)
def test_any_set_of_objects_scores_perfectly_against_itself(rects: list[tuple[int, int, int, int, int]]) -> None:
    objects = as_objects(rects)
    result = score(objects, objects, W, H)
    assert result["f1"] == 1.0
    assert result["conflicts"] == []
    assert sorted(result["matches"]) == [(k, k, 1.0) for k in range(len(objects))]


# --------------------------------------------------------------------------------------------
# agreement and merge
# --------------------------------------------------------------------------------------------


def test_two_annotators_agreement_and_merge_by_intersection() -> None:
    a = [obj("a1", 1, rect(0, 0, 10, 10)), obj("a2", 2, rect(20, 0, 30, 10))]
    b = [obj("b1", 1, rect(2, 0, 12, 10))]  # b found only the first, offset by 2 px
    result = agreement([a, b], W, H)
    first, second = result["clusters"]
    assert first["members"] == {0: 0, 1: 0} and first["uids"] == ["a1", "b1"]
    assert first["found_by"] == 1.0 and first["mean_iou"] == pytest.approx(2 / 3)
    assert first["score"] == pytest.approx(2 / 3)
    assert second["members"] == {0: 1} and second["found_by"] == 0.5
    assert second["mean_iou"] is None and second["score"] == 0.0
    assert result["score"] == pytest.approx(1 / 3)
    assert result["pairs"] == [{"versions": (0, 1), "f1": pytest.approx(2 / 3), "mean_iou": pytest.approx(2 / 3)}]

    # default quorum for two is both; the mask is the pixels both drew
    [merged] = merge([a, b], W, H)
    assert merged["label"] == 1 and merged["support"] == 2 and merged["sources"] == ["a1", "b1"]
    assert merged["geometry"]["type"] == "mask"
    assert np.array_equal(mask_of(merged["geometry"]), mask_of(rect(2, 0, 10, 10)))
    # a quorum of one keeps the object only one annotator drew, as drawn
    lenient = merge([a, b], W, H, quorum=1)
    assert [m["sources"] for m in lenient] == [["a1", "b1"], ["a2"]]
    assert np.array_equal(mask_of(lenient[1]["geometry"]), mask_of(rect(20, 0, 30, 10)))


def test_three_annotators_merge_by_pixel_and_label_majority() -> None:
    a = [obj("a1", 1, rect(0, 0, 10, 10)), obj("a2", 1, rect(20, 20, 25, 25))]
    b = [obj("b1", 2, rect(2, 0, 12, 10))]
    c = [obj("c1", 2, rect(0, 2, 10, 12)), obj("c2", 3, rect(30, 0, 35, 5))]
    result = agreement([a, b, c], W, H)
    first = result["clusters"][0]
    assert first["members"] == {0: 0, 1: 0, 2: 0}
    assert first["label"] == 2 and first["label_agreement"] == pytest.approx(2 / 3)
    # pairwise IoUs: a-b 80/120, a-c 80/120, b-c 64/136
    assert first["mean_iou"] == pytest.approx((2 / 3 + 2 / 3 + 64 / 136) / 3)
    assert [c["found_by"] for c in result["clusters"]] == [1.0, pytest.approx(1 / 3), pytest.approx(1 / 3)]

    [merged] = merge([a, b, c], W, H)  # quorum two of three: the lone objects go
    assert merged["label"] == 2 and merged["support"] == 3
    votes = sum(mask_of(g).astype(int) for g in (rect(0, 0, 10, 10), rect(2, 0, 12, 10), rect(0, 2, 10, 12)))
    expected = votes >= 2
    assert np.array_equal(mask_of(merged["geometry"]), expected)
    # by hand: a's 10x10 square less its 2x2 top-left corner, which only a covers (what only b or
    # only c covers beyond a's square is outvoted)
    assert int(expected.sum()) == 100 - 4
    assert merge([a, b, c], W, H, quorum=3)[0]["sources"] == ["a1", "b1", "c1"]
    assert len(merge([a, b, c], W, H, quorum=1)) == 3


def test_a_label_tie_goes_to_the_earliest_version() -> None:
    a = [obj("a", 5, rect(0, 0, 10, 10))]
    b = [obj("b", 7, rect(0, 0, 10, 10))]
    assert merge([a, b], W, H)[0]["label"] == 5
    assert merge([b, a], W, H)[0]["label"] == 7


def test_each_annotator_contributes_at_most_one_object_to_a_cluster() -> None:
    # b drew the object twice (two near copies): only one of them joins a's object
    a = [obj("a", 1, rect(0, 0, 10, 10))]
    b = [obj("b1", 1, rect(0, 0, 10, 10)), obj("b2", 1, rect(1, 0, 11, 10))]
    clusters = agreement([a, b], W, H)["clusters"]
    assert [c["members"] for c in clusters] == [{0: 0, 1: 0}, {1: 1}]


def test_empty_versions_agree_and_merge_to_nothing() -> None:
    assert agreement([[], []], W, H)["score"] == 1.0
    assert merge([[], [], []], W, H) == []


def test_bad_quorum_and_too_few_versions_are_refused() -> None:
    a = [obj("a", 1, rect(0, 0, 10, 10))]
    with pytest.raises(ValueError, match="quorum"):
        merge([a, a], W, H, quorum=3)
    with pytest.raises(ValueError, match="quorum"):
        merge([a, a], W, H, quorum=0)
    with pytest.raises(ValueError, match="two versions"):
        agreement([a], W, H)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(versions_of, st.integers(1, 4))
def test_merging_identical_versions_gives_the_version(rects: list[tuple[int, int, int, int, int]], n: int) -> None:
    objects = as_objects(rects)
    merged = merge([objects] * n, W, H)
    assert [m["label"] for m in merged] == [o["label"] for o in objects]
    for m, o in zip(merged, objects):
        assert np.array_equal(mask_of(m["geometry"]), mask_of(o["geometry"]))
    if n >= 2:
        assert agreement([objects] * n, W, H)["score"] == 1.0


# --------------------------------------------------------------------------------------------
# time and fatigue
# --------------------------------------------------------------------------------------------


def test_fatigue_curve_bins_by_minutes_into_the_session() -> None:
    samples = [
        {"minutes": 0, "f1": 1.0}, {"minutes": 29.9, "f1": 0.8},
        {"minutes": 95, "f1": 0.5}, {"minutes": 100, "f1": None},
    ]
    assert fatigue_curve(samples) == [
        {"start": 0, "end": 30, "count": 2, "mean": pytest.approx(0.9)},
        {"start": 30, "end": 60, "count": 0, "mean": None},
        {"start": 60, "end": 90, "count": 0, "mean": None},
        {"start": 90, "end": 120, "count": 1, "mean": 0.5},
    ]
    assert fatigue_curve([{"minutes": 5, "seconds": 40}], bin_minutes=10, value="seconds")[0]["mean"] == 40
    assert fatigue_curve([]) == []
    with pytest.raises(ValueError):
        fatigue_curve(samples, bin_minutes=0)


def test_throughput_per_annotator() -> None:
    records = [
        {"user": "ann", "image": 1, "seconds": 100, "objects": 4},
        {"user": "ann", "image": 1, "seconds": 20, "objects": 1},  # sent back, fixed later
        {"user": "ann", "image": 2, "seconds": 60, "objects": 4},
        {"user": "bob", "image": 1, "seconds": 30, "objects": 0},
    ]
    result = throughput(records)
    assert result["ann"] == {
        "images": 2, "objects": 9, "seconds": 180.0,
        "seconds_per_image": 90.0, "seconds_per_object": 20.0, "objects_per_hour": 180.0,
    }
    assert result["bob"]["seconds_per_object"] is None and result["bob"]["objects_per_hour"] == 0.0
    with pytest.raises(ValueError):
        throughput([{"user": "x", "image": 1, "seconds": -1, "objects": 0}])
