"""Tests for ml.metrics: COCO mAP against pycocotools run directly, matching, PR curves, corrections."""

from __future__ import annotations

import contextlib
import copy
import io
import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import pycocotools.mask as mask_utils
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from ml import geometry as geo
from ml.metrics import coco_evaluate, correction_stats, match_instances, pr_curve
from tests.datasets import FRUITS as _FRUITS

FRUITS = _FRUITS / "trainval.json"
W, H = 200, 100


def square(x0: float, y0: float, x1: float, y1: float) -> dict[str, Any]:
    return {"type": "polygons", "polygons": [{"exterior": [[x0, y0], [x1, y0], [x1, y1], [x0, y1]], "holes": []}]}


def inst(label: str, geometry: dict[str, Any], score: float | None = None) -> dict[str, Any]:
    return {"label": label, "geometry": geometry, "score": score}


@pytest.fixture(scope="module")
def fruits() -> dict[str, Any]:
    return json.loads(FRUITS.read_text())


def fruits_images(data: dict[str, Any], transform=None) -> list[dict[str, Any]]:
    """Our image dicts from the COCO file; ``transform(ann) -> ann | None`` alters or drops one."""
    names = {c["id"]: c["name"] for c in data["categories"]}
    images = []
    for image in data["images"]:
        instances = []
        for ann in data["annotations"]:
            if ann["image_id"] != image["id"]:
                continue
            if transform is not None:
                ann = transform(ann)
                if ann is None:
                    continue
            geometry = geo.from_coco_segmentation(ann["segmentation"], width=image["width"], height=image["height"])
            instances.append(inst(names[ann["category_id"]], geometry, ann.get("score")))
        images.append({"id": image["id"], "width": image["width"], "height": image["height"],
                       "instances": instances})
    return images


def categories(data: dict[str, Any]) -> list[str]:
    return [c["name"] for c in sorted(data["categories"], key=lambda c: c["id"])]


def shifted(ann: dict[str, Any]) -> dict[str, Any] | None:
    """A deterministic imperfect prediction: some dropped, most shifted by a few pixels."""
    k = ann["id"]
    if k % 7 == 0:
        return None
    dx, dy = (k % 5) * 2.0, (k % 3) * 3.0
    xy = np.asarray(ann["segmentation"][0]).reshape(-1, 2) + [dx, dy]
    xy = np.clip(xy, 0, [800, 600])
    return {**ann, "segmentation": [xy.ravel().tolist()], "score": 0.3 + (k * 37 % 70) / 100}


def pycocotools_directly(data: dict[str, Any], predictions: list[dict[str, Any]], iou_type: str) -> COCOeval:
    """The reference: the file loaded by pycocotools itself, results as a detectron2-style list."""
    dataset = copy.deepcopy(data)
    for ann in dataset["annotations"]:
        # the file's boxes are rounded; ours are the exact extents of the vertices
        xy = np.asarray(ann["segmentation"][0]).reshape(-1, 2)
        ann["bbox"] = [*xy.min(axis=0).tolist(), *(xy.max(axis=0) - xy.min(axis=0)).tolist()]
    results = []
    for ann in predictions:
        xy = np.asarray(ann["segmentation"][0]).reshape(-1, 2)
        rle = mask_utils.merge(mask_utils.frPyObjects(ann["segmentation"], 600, 800))
        rle["counts"] = rle["counts"].decode()
        results.append({
            "image_id": ann["image_id"], "category_id": ann["category_id"], "segmentation": rle,
            "bbox": [*xy.min(axis=0).tolist(), *(xy.max(axis=0) - xy.min(axis=0)).tolist()],
            "score": ann["score"],
        })
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = dataset
        gt.createIndex()
        evaluator = COCOeval(gt, gt.loadRes(results), iouType=iou_type)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return evaluator


# --------------------------------------------------------------------------------------------
# coco_evaluate
# --------------------------------------------------------------------------------------------


def test_perfect_predictions_score_ap_one(fruits: dict[str, Any]) -> None:
    gt = fruits_images(fruits)
    dt = fruits_images(fruits, lambda ann: {**ann, "score": 0.9})

    result = coco_evaluate(gt, dt, categories=categories(fruits))

    for iou_type in ("segm", "bbox"):
        assert result[iou_type]["AP"] == pytest.approx(1.0)
        assert result[iou_type]["AP50"] == pytest.approx(1.0)
        assert result[iou_type]["AR100"] == pytest.approx(1.0)
        assert result[iou_type]["per_class"] == {
            "date": pytest.approx(1.0), "fig": pytest.approx(1.0), "hazelnut": pytest.approx(1.0)
        }


def test_empty_predictions_score_zero_without_crashing(fruits: dict[str, Any]) -> None:
    gt = fruits_images(fruits)
    no_images = coco_evaluate(gt, [], categories=categories(fruits))
    empty_images = coco_evaluate(gt, [{**im, "instances": []} for im in gt], categories=categories(fruits))

    for result in (no_images, empty_images):
        for iou_type in ("segm", "bbox"):
            assert result[iou_type]["AP"] == 0.0
            assert result[iou_type]["AR100"] == 0.0
            assert set(result[iou_type]["per_class"].values()) == {0.0}


def test_undefined_numbers_are_none() -> None:
    gt = [{"id": 1, "width": W, "height": H, "instances": [inst("cat", square(10, 10, 60, 60))]}]
    dt = [{"id": 1, "width": W, "height": H, "instances": [inst("cat", square(10, 10, 60, 60), 0.8)]}]

    result = coco_evaluate(gt, dt, categories=["cat", "dog"])

    assert result["segm"]["per_class"] == {"cat": pytest.approx(1.0), "dog": None}
    assert result["segm"]["APs"] is None and result["segm"]["APl"] is None  # a 2500 px² object is medium
    assert result["segm"]["APm"] == pytest.approx(1.0)


def test_shifted_predictions_match_pycocotools_run_directly(fruits: dict[str, Any]) -> None:
    predictions = [p for p in (shifted(a) for a in fruits["annotations"]) if p is not None]
    gt = fruits_images(fruits)
    dt = fruits_images(fruits, shifted)

    ours = coco_evaluate(gt, dt, categories=categories(fruits))

    for iou_type in ("segm", "bbox"):
        reference = pycocotools_directly(fruits, predictions, iou_type)
        stats = reference.stats
        assert 0.2 < stats[0] < 0.95  # the case is neither trivial nor hopeless
        names = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")
        for k, name in enumerate(names):
            expected = None if stats[k] < 0 else stats[k]
            assert ours[iou_type][name] == pytest.approx(expected, abs=1e-12), (iou_type, name)
        precision = reference.eval["precision"]
        for k, name in enumerate(categories(fruits)):
            p = precision[:, :, k, 0, -1]
            assert ours[iou_type]["per_class"][name] == pytest.approx(p[p > -1].mean(), abs=1e-12)


def test_instances_can_be_masks_or_objects() -> None:
    @dataclass
    class Prediction:
        label: str
        score: float
        mask: np.ndarray

    gt_mask = geo.geometry_to_mask(square(10, 10, 60, 60), width=W, height=H)
    gt = [{"id": "a.jpg", "width": W, "height": H, "instances": [{"label": "cat", "mask": gt_mask}]}]
    dt = [{"id": "a.jpg", "instances": [Prediction("cat", 0.9, gt_mask)]}]

    assert coco_evaluate(gt, dt, categories=["cat"])["segm"]["AP"] == pytest.approx(1.0)


def test_unknown_labels_and_images_are_reported() -> None:
    gt = [{"id": 1, "width": W, "height": H, "instances": [inst("cat", square(10, 10, 60, 60))]}]
    with pytest.raises(ValueError, match="label 'dog' is not among the categories"):
        coco_evaluate(gt, [{"id": 1, "instances": [inst("dog", square(10, 10, 60, 60), 0.5)]}], categories=["cat"])
    with pytest.raises(ValueError, match="image id 2"):
        coco_evaluate(gt, [{"id": 2, "instances": []}], categories=["cat"])


# --------------------------------------------------------------------------------------------
# pr_curve
# --------------------------------------------------------------------------------------------


def test_pr_curve_of_perfect_predictions_is_flat_at_one(fruits: dict[str, Any]) -> None:
    gt = fruits_images(fruits)
    points = pr_curve(gt, fruits_images(fruits, lambda a: {**a, "score": 0.5}), categories=categories(fruits))
    assert len(points) == 101
    assert points[0]["recall"] == 0.0 and points[-1]["recall"] == 1.0
    assert all(p["precision"] == pytest.approx(1.0) for p in points)


def test_pr_curve_matches_cocoeval_precision_at_iou_half(fruits: dict[str, Any]) -> None:
    predictions = [p for p in (shifted(a) for a in fruits["annotations"]) if p is not None]
    points = pr_curve(fruits_images(fruits), fruits_images(fruits, shifted), categories=categories(fruits))

    reference = pycocotools_directly(fruits, predictions, "segm").eval["precision"][0, :, :, 0, -1].mean(axis=1)
    assert [p["precision"] for p in points] == pytest.approx(reference.tolist(), abs=1e-12)
    precisions = [p["precision"] for p in points]
    assert precisions == sorted(precisions, reverse=True)  # interpolated: never rises with recall
    assert precisions[-1] == 0.0  # some objects were never predicted


def test_pr_curve_without_ground_truth_is_empty() -> None:
    assert pr_curve([{"id": 1, "width": W, "height": H, "instances": []}], [], categories=["cat"]) == []


# --------------------------------------------------------------------------------------------
# match_instances
# --------------------------------------------------------------------------------------------


def test_match_instances_hand_made_case() -> None:
    gt = [inst("cat", square(0, 0, 20, 20)), inst("cat", square(50, 0, 70, 20)), inst("dog", square(100, 0, 120, 20))]
    pred = [
        inst("cat", square(0, 0, 20, 20), 0.9),       # exact → tp (gt 0)
        inst("cat", square(54, 0, 74, 20), 0.8),      # IoU 16/24 = 0.667 → tp (gt 1)
        inst("cat", square(1, 0, 21, 20), 0.7),       # duplicate of gt 0, already taken → fp
        inst("cat", square(150, 50, 170, 70), 0.95),  # nothing there → fp
        inst("cat", square(100, 0, 120, 20), 0.6),    # right place, wrong label → fp
    ]

    result = match_instances(gt, pred, width=W, height=H)

    assert (result["tp"], result["fp"], result["fn"]) == (2, 3, 1)
    assert result["precision"] == pytest.approx(2 / 5)
    assert result["recall"] == pytest.approx(2 / 3)
    assert result["f1"] == pytest.approx(2 * 2 / (2 * 2 + 3 + 1))
    assert [(g, p) for g, p, _ in result["matches"]] == [(0, 0), (1, 1)]
    assert result["matches"][1][2] == pytest.approx(16 / 24)

    ignoring_labels = match_instances(gt, pred, width=W, height=H, class_aware=False)
    assert ignoring_labels["tp"] == 3
    strict = match_instances(gt, pred, width=W, height=H, iou_threshold=0.7)
    assert strict["tp"] == 1


def test_higher_score_picks_first_and_takes_its_best_overlap() -> None:
    gt = [inst("cat", square(0, 0, 20, 20)), inst("cat", square(10, 0, 30, 20))]
    low = inst("cat", square(10, 0, 30, 20), 0.4)    # IoU 1.0 with gt 1, 1/3 with gt 0
    high = inst("cat", square(8, 0, 28, 20), 0.9)    # IoU 0.82 with gt 1, 0.43 with gt 0

    result = match_instances(gt, [low, high], width=W, height=H, iou_threshold=0.3)

    # the high-scoring prediction claims gt 1 although the low one fits it perfectly
    assert sorted(result["matches"])[1][:2] == (1, 1)
    assert sorted(result["matches"])[0][:2] == (0, 0)


def test_match_instances_with_nothing() -> None:
    nothing = match_instances([], [], width=W, height=H)
    assert (nothing["precision"], nothing["recall"], nothing["f1"]) == (1.0, 1.0, 1.0)
    missed = match_instances([inst("cat", square(0, 0, 20, 20))], [], width=W, height=H)
    assert (missed["tp"], missed["fn"], missed["precision"], missed["recall"]) == (0, 1, 0.0, 0.0)


# --------------------------------------------------------------------------------------------
# correction_stats
# --------------------------------------------------------------------------------------------


def test_correction_stats_counts_what_the_annotator_changed() -> None:
    proposals = [
        inst("cat", square(0, 0, 20, 20), 0.9),       # accepted as is
        inst("cat", square(50, 0, 70, 20), 0.8),      # reshaped: IoU 0.8
        inst("cat", square(100, 0, 120, 20), 0.7),    # relabelled to dog
        inst("cat", square(150, 0, 170, 20), 0.6),    # deleted
    ]
    accepted = [
        inst("cat", square(0, 0, 20, 20)),
        inst("cat", square(50, 0, 70, 16)),
        inst("dog", square(100, 0, 120, 20)),
        inst("cat", square(0, 50, 30, 80)),           # drawn by hand
    ]

    stats = correction_stats(proposals, accepted, width=W, height=H)

    assert stats == {
        "proposals": 4, "accepted": 4, "unchanged": 1, "unchanged_share": 0.25, "edited": 2,
        "relabeled": 1, "deleted": 1, "added": 1, "mean_iou": pytest.approx((1.0 + 0.8 + 1.0) / 3),
    }


def test_correction_stats_without_proposals() -> None:
    stats = correction_stats([], [inst("cat", square(0, 0, 20, 20))], width=W, height=H)
    assert stats["added"] == 1 and stats["unchanged_share"] is None and stats["mean_iou"] is None
