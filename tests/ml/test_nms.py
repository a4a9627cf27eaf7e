"""Class-aware mask NMS: one object proposed several times is stored once, its best proposal."""

from __future__ import annotations

import numpy as np
import pytest

from ml.geometry import mask_to_rle
from ml.nms import mask_nms

SIZE = (60, 80)


def disc(cx: float, cy: float, r: float) -> dict:
    ys, xs = np.mgrid[: SIZE[0], : SIZE[1]]
    return mask_to_rle((xs + 0.5 - cx) ** 2 + (ys + 0.5 - cy) ** 2 <= r * r)


def test_the_best_of_two_overlapping_proposals_of_one_class_is_kept():
    # Two discs of radius 10 whose centres are 3 px apart overlap with IoU ~0.68.
    rles = [disc(30, 30, 10), disc(33, 30, 10), disc(60, 30, 8)]
    assert mask_nms(rles, [0.6, 0.9, 0.5], ["cat", "cat", "cat"], iou_threshold=0.5) == [1, 2]


def test_overlapping_proposals_of_different_classes_are_both_kept():
    rles = [disc(30, 30, 10), disc(33, 30, 10)]
    assert mask_nms(rles, [0.6, 0.9], ["cat", "dog"], iou_threshold=0.5) == [1, 0]


def test_the_threshold_decides_what_counts_as_the_same_object():
    rles = [disc(30, 30, 10), disc(37, 30, 10)]  # IoU ~0.4
    assert mask_nms(rles, [0.9, 0.8], [1, 1], iou_threshold=0.5) == [0, 1]
    assert mask_nms(rles, [0.9, 0.8], [1, 1], iou_threshold=0.3) == [0]
    # 1 keeps everything, even identical masks.
    assert mask_nms([rles[0], rles[0]], [0.9, 0.8], [1, 1], iou_threshold=1.0) == [0, 1]


def test_a_suppressed_proposal_does_not_suppress_others():
    # a overlaps b, b overlaps c, a and c do not overlap: greedy NMS keeps a and c.
    a, b, c = disc(30, 30, 10), disc(35, 30, 10), disc(40, 30, 10)
    assert mask_nms([a, b, c], [0.9, 0.8, 0.7], ["x"] * 3, iou_threshold=0.5) == [0, 2]


def test_equal_scores_keep_the_input_order_and_empty_input_is_fine():
    rles = [disc(30, 30, 10), disc(31, 30, 10)]
    assert mask_nms(rles, [0.5, 0.5], ["x", "x"], iou_threshold=0.5) == [0]
    assert mask_nms([], [], []) == []


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="2 masks, 1 scores"):
        mask_nms([disc(30, 30, 10)] * 2, [0.5], ["x", "x"])
    with pytest.raises(ValueError, match="iou_threshold"):
        mask_nms([disc(30, 30, 10)], [0.5], ["x"], iou_threshold=1.5)
