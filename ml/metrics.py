"""Quality numbers for instance segmentation: COCO mAP, greedy matching, PR curves, correction stats.

Inputs are plain data.  An *image* is ``{"id", "width", "height", "instances": [...]}``; an
*instance* is a dict (or an object with the same attributes) with ``label`` (one of
``categories``), an optional ``score`` (predictions) and its shape as ``geometry`` (our JSON
contract, see ml.geometry), or a bool ``mask`` array, or an ``rle`` dict.  ``iscrowd: True`` marks
a ground-truth crowd region.  COCO evaluation runs pycocotools' own COCO/COCOeval in memory so the
numbers are the ones people compare against; their console output is swallowed.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from typing import Any, Protocol

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from ml import geometry as geo

__all__ = ["coco_evaluate", "correction_stats", "evaluate_model", "match_instances", "pr_curve", "segmentation_metrics"]

_STAT_NAMES = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")


def _get(obj: Any, key: str, default: Any = None) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(key, default)
    return getattr(obj, key, default)


def _instance_rle(inst: Any, *, width: int, height: int) -> geo.Rle:
    """The instance's shape as compressed RLE on a ``width`` x ``height`` image."""
    geometry = _get(inst, "geometry")
    if geometry is not None:
        return geo.geometry_to_rle(geometry, width=width, height=height)
    mask = _get(inst, "mask")
    if mask is not None:
        arr = np.asarray(mask)
        if arr.shape != (height, width):
            raise ValueError(f"instance mask has shape {arr.shape}, the image is {height}x{width} (h x w)")
        return geo.mask_to_rle(arr)
    rle = _get(inst, "rle")
    if rle is not None:
        return geo.geometry_to_rle({"type": "mask", "rle": rle}, width=width, height=height)
    raise ValueError("an instance needs a geometry, a mask or an rle")


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """pycocotools prints progress and tables; callers want data, not console noise."""
    with contextlib.redirect_stdout(io.StringIO()):
        yield


# --------------------------------------------------------------------------------------------
# COCO evaluation
# --------------------------------------------------------------------------------------------


def _build_coco(
    gt_images: Sequence[Mapping[str, Any]],
    dt_images: Sequence[Mapping[str, Any]],
    categories: Sequence[Hashable],
) -> tuple[COCO, COCO]:
    """Ground truth and detections as pycocotools COCO objects (ids are renumbered from 1)."""
    category_ids = {label: k + 1 for k, label in enumerate(categories)}
    if len(category_ids) != len(categories):
        raise ValueError("categories contain duplicates")

    def category_of(inst: Any) -> int:
        label = _get(inst, "label")
        if label not in category_ids:
            raise ValueError(f"label {label!r} is not among the categories {list(categories)!r}")
        return category_ids[label]

    # Internal ids start at 1: COCOeval uses 0 to mean "unmatched" in its match arrays.
    image_ids: dict[Any, int] = {}
    sizes: dict[int, tuple[int, int]] = {}
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for image in gt_images:
        if image["id"] in image_ids:
            raise ValueError(f"image id {image['id']!r} appears twice in the ground truth")
        iid = image_ids[image["id"]] = len(image_ids) + 1
        width, height = int(image["width"]), int(image["height"])
        sizes[iid] = (width, height)
        images.append({"id": iid, "width": width, "height": height})
        for inst in image.get("instances", []):
            geometry = _get(inst, "geometry")
            crowd = bool(_get(inst, "iscrowd", False))
            if geometry is not None:
                # keep polygons as polygons so pycocotools rasterises them exactly as for a file
                segmentation, iscrowd = geo.to_coco_segmentation(
                    geometry, width=width, height=height, iscrowd=crowd
                )
                bbox, area = geo.bbox_and_area(geometry, width=width, height=height)
            else:
                rle = _instance_rle(inst, width=width, height=height)
                segmentation, iscrowd = rle, int(crowd)
                bbox, area = geo.rle_bbox_area(rle)
            annotations.append({
                "id": len(annotations) + 1, "image_id": iid, "category_id": category_of(inst),
                "segmentation": segmentation, "bbox": bbox, "area": area, "iscrowd": iscrowd,
            })
    cats = [{"id": cid, "name": str(label), "supercategory": ""} for label, cid in category_ids.items()]
    gt = COCO()
    gt.dataset = {"images": images, "annotations": annotations, "categories": cats}
    with _quiet():
        gt.createIndex()

    results = []
    for image in dt_images:
        known = image_ids.get(image["id"])
        if known is None:
            raise ValueError(f"prediction for image id {image['id']!r}, which has no ground truth")
        iid = known
        width, height = sizes[iid]
        for inst in image.get("instances", []):
            rle = _instance_rle(inst, width=width, height=height)
            geometry = _get(inst, "geometry")
            if geometry is not None:
                bbox, _ = geo.bbox_and_area(geometry, width=width, height=height)
            else:
                bbox, _ = geo.rle_bbox_area(rle)
            score = _get(inst, "score")
            results.append({
                "image_id": iid, "category_id": category_of(inst), "segmentation": rle,
                # with a bbox, loadRes treats results like detectron2's: box area for area ranges
                "bbox": bbox, "score": float(score if score is not None else 1.0),
            })
    if results:
        with _quiet():
            dt = gt.loadRes(results)
    else:
        # loadRes cannot take an empty list; an empty result set is legitimate (AP 0)
        dt = COCO()
        dt.dataset = {"images": list(images), "annotations": [], "categories": cats}
        with _quiet():
            dt.createIndex()
    return gt, dt


def _value(v: float) -> float | None:
    # pycocotools writes -1 where a number is undefined (no ground truth in that bucket)
    return None if v < 0 else float(v)


def coco_evaluate(
    gt_images: Sequence[Mapping[str, Any]],
    dt_images: Sequence[Mapping[str, Any]],
    *,
    categories: Sequence[Hashable],
    iou_types: Sequence[str] = ("segm", "bbox"),
) -> dict[str, dict[str, Any]]:
    """COCO metrics per IoU type: AP, AP50, AP75, APs/APm/APl, AR1/AR10/AR100, ARs/ARm/ARl, per_class.

    ``per_class`` maps each category to its AP (IoU .50:.95, all areas, 100 detections).  A number
    is None where COCO leaves it undefined (no ground truth for it); with ground truth but no
    predictions AP is 0.0.  Predictions without a score count as 1.0.
    """
    gt, dt = _build_coco(gt_images, dt_images, categories)
    out: dict[str, dict[str, Any]] = {}
    for iou_type in iou_types:
        evaluator = COCOeval(gt, dt, iouType=iou_type)
        with _quiet():
            evaluator.evaluate()
            evaluator.accumulate()
            evaluator.summarize()
        metrics: dict[str, Any] = {name: _value(v) for name, v in zip(_STAT_NAMES, evaluator.stats)}
        precision = evaluator.eval["precision"]  # [iou, recall, category, area, max_dets]
        per_class: dict[Any, float | None] = {}
        for k, label in enumerate(categories):
            p = precision[:, :, k, 0, -1]
            p = p[p > -1]
            per_class[label] = float(p.mean()) if p.size else None
        metrics["per_class"] = per_class
        out[iou_type] = metrics
    return out


def pr_curve(
    gt_images: Sequence[Mapping[str, Any]],
    dt_images: Sequence[Mapping[str, Any]],
    *,
    categories: Sequence[Hashable],
    iou_type: str = "segm",
    iou_threshold: float = 0.5,
) -> list[dict[str, float]]:
    """Precision at COCO's 101 recall levels, at one IoU threshold, averaged over categories.

    Uses COCOeval's interpolated precision (all areas, 100 detections); categories without
    ground truth are left out of the average.  Empty when no category has ground truth.
    """
    gt, dt = _build_coco(gt_images, dt_images, categories)
    evaluator = COCOeval(gt, dt, iouType=iou_type)
    evaluator.params.iouThrs = np.array([iou_threshold])
    with _quiet():
        evaluator.evaluate()
        evaluator.accumulate()
    precision = evaluator.eval["precision"][0, :, :, 0, -1]  # [recall, category]
    has_gt = (precision > -1).any(axis=0)
    if not has_gt.any():
        return []
    mean = precision[:, has_gt].mean(axis=1)
    return [
        {"recall": float(r), "precision": float(p)} for r, p in zip(evaluator.params.recThrs, mean)
    ]


def segmentation_metrics(
    gt_images: Sequence[Mapping[str, Any]],
    dt_images: Sequence[Mapping[str, Any]],
    *,
    categories: Sequence[Hashable],
) -> dict[str, Any]:
    """What a model version records: mask AP/AP50/AP75, box AP/AP50, per-class mask AP, the mask PR curve (IoU 0.5)."""
    result = coco_evaluate(gt_images, dt_images, categories=categories)
    segm, bbox = result["segm"], result["bbox"]
    return {
        "mask_AP": segm["AP"], "mask_AP50": segm["AP50"], "mask_AP75": segm["AP75"],
        "box_AP": bbox["AP"], "box_AP50": bbox["AP50"],
        "per_class": segm["per_class"],
        "pr_curve": pr_curve(gt_images, dt_images, categories=categories),
        "images": len(gt_images),
    }


class _Predicts(Protocol):
    def predict(self, images: Sequence[np.ndarray], *, threshold: float = ...) -> Sequence[Sequence[Any]]: ...


def evaluate_model(
    model: _Predicts,
    samples: Sequence[Any],
    *,
    categories: Sequence[str],
    class_to_category: Mapping[str, str] | None = None,
    threshold: float = 0.05,
    batch_size: int = 4,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """:func:`segmentation_metrics` of ``model`` on ``samples`` (the one evaluation of a model, wherever it runs).

    A sample has ``image`` (RGB uint8) and ``objects`` [(category, bool mask)] (ml.models.TrainingSample).
    ``class_to_category`` names the category of each model class (default: the same name);
    detections of other classes are left out. The threshold is low because AP integrates over all
    scores. ``samples`` may be lazy: they are read a batch at a time and only RLEs are kept, so
    memory does not grow with the pixels of the evaluation set.
    """
    mapping = dict(class_to_category) if class_to_category is not None else {name: name for name in categories}
    gt_images: list[dict[str, Any]] = []
    dt_images: list[dict[str, Any]] = []
    for start in range(0, len(samples), batch_size):
        batch = [samples[i] for i in range(start, min(len(samples), start + batch_size))]
        predictions = model.predict([s.image for s in batch], threshold=threshold)
        for sample, prediction in zip(batch, predictions):
            height, width = sample.image.shape[:2]
            index = len(gt_images)
            gt_images.append({"id": index, "width": width, "height": height, "instances": [
                {"label": label, "rle": geo.mask_to_rle(mask)} for label, mask in sample.objects if mask.any()
            ]})
            dt_images.append({"id": index, "width": width, "height": height, "instances": [
                {"label": mapping[inst.label], "score": inst.score, "rle": geo.mask_to_rle(inst.mask)}
                for inst in prediction if inst.label in mapping
            ]})
        if progress is not None:
            progress(len(gt_images), len(samples))
    return segmentation_metrics(gt_images, dt_images, categories=categories)


# --------------------------------------------------------------------------------------------
# Matching
# --------------------------------------------------------------------------------------------


def _iou_matrix(
    pred: Sequence[Any], gt: Sequence[Any], *, width: int, height: int
) -> np.ndarray:
    """IoU[pred, gt] of pixel masks (pycocotools)."""
    p = [_instance_rle(i, width=width, height=height) for i in pred]
    g = [_instance_rle(i, width=width, height=height) for i in gt]
    return geo.rle_iou_matrix(p, g)


def _ratio(num: int, den: int) -> float:
    return num / den if den else 0.0


def match_instances(
    gt: Sequence[Any],
    pred: Sequence[Any],
    *,
    width: int,
    height: int,
    iou_threshold: float = 0.5,
    class_aware: bool = True,
) -> dict[str, Any]:
    """Greedy one-to-one matching of predictions to ground truth on one image.

    Predictions are taken by descending score (missing score = 1.0, ties keep input order); each
    takes the unmatched ground-truth instance with the highest IoU >= ``iou_threshold`` (of the
    same label when ``class_aware``).  Returns tp, fp, fn, precision, recall, f1 and
    ``matches`` = [(gt_index, pred_index, iou)].  With neither predictions nor ground truth all
    three rates are 1.0; otherwise an empty denominator gives 0.0.
    """
    ious = _iou_matrix(pred, gt, width=width, height=height)
    scores = [_get(p, "score") for p in pred]
    order = sorted(range(len(pred)), key=lambda i: -(scores[i] if scores[i] is not None else 1.0))
    taken = np.zeros(len(gt), dtype=bool)
    gt_labels = [_get(g, "label") for g in gt]
    matches: list[tuple[int, int, float]] = []
    for i in order:
        candidates = ious[i].copy()
        candidates[taken] = -1.0
        if class_aware:
            label = _get(pred[i], "label")
            for j, gl in enumerate(gt_labels):
                if gl != label:
                    candidates[j] = -1.0
        if candidates.size == 0:
            continue
        j = int(np.argmax(candidates))
        if candidates[j] >= iou_threshold:
            taken[j] = True
            matches.append((j, i, float(ious[i, j])))
    tp = len(matches)
    fp = len(pred) - tp
    fn = len(gt) - tp
    if not pred and not gt:
        precision = recall = f1 = 1.0
    else:
        precision, recall = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
        f1 = _ratio(2 * tp, 2 * tp + fp + fn)
    return {
        "tp": tp, "fp": fp, "fn": fn,
        "precision": precision, "recall": recall, "f1": f1,
        "matches": matches,
    }


def correction_stats(
    proposals: Sequence[Any],
    accepted: Sequence[Any],
    *,
    width: int,
    height: int,
    match_iou: float = 0.5,
    unchanged_iou: float = 0.99,
) -> dict[str, Any]:
    """How much a person changed the model's proposals on one image.

    Proposals (model instances before editing) are matched to the accepted (final human)
    instances by IoU >= ``match_iou``, ignoring labels.  A matched proposal is *unchanged* when
    IoU >= ``unchanged_iou`` and the label is the same, otherwise *edited* (``relabeled`` counts
    label changes).  Unmatched proposals were *deleted*, unmatched accepted instances *added*.
    ``unchanged_share`` (of proposals) and ``mean_iou`` (over matched pairs) are None when
    undefined.
    """
    result = match_instances(
        accepted, proposals, width=width, height=height, iou_threshold=match_iou, class_aware=False
    )
    matches = result["matches"]
    unchanged = relabeled = 0
    for gt_index, pred_index, iou in matches:
        same_label = _get(accepted[gt_index], "label") == _get(proposals[pred_index], "label")
        relabeled += not same_label
        unchanged += same_label and iou >= unchanged_iou
    return {
        "proposals": len(proposals),
        "accepted": len(accepted),
        "unchanged": unchanged,
        "unchanged_share": unchanged / len(proposals) if proposals else None,
        "edited": len(matches) - unchanged,
        "relabeled": relabeled,
        "deleted": len(proposals) - len(matches),
        "added": len(accepted) - len(matches),
        "mean_iou": float(np.mean([m[2] for m in matches])) if matches else None,
    }
