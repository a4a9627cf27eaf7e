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
from collections.abc import Hashable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import pycocotools.mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from ml import geometry as geo

__all__ = ["coco_evaluate", "correction_stats", "match_instances", "pr_curve"]

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


def _coco_rle(rle: geo.Rle) -> dict[str, Any]:
    return {"size": list(rle["size"]), "counts": rle["counts"].encode("ascii")}


def _rle_bbox_area(rle: geo.Rle) -> tuple[list[float], float]:
    coco = _coco_rle(rle)
    return [float(v) for v in mask_utils.toBbox(coco)], float(mask_utils.area(coco))


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
                bbox, area = _rle_bbox_area(rle)
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
                bbox, _ = _rle_bbox_area(rle)
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


# --------------------------------------------------------------------------------------------
# Matching
# --------------------------------------------------------------------------------------------


def _iou_matrix(
    pred: Sequence[Any], gt: Sequence[Any], *, width: int, height: int
) -> np.ndarray:
    """IoU[pred, gt] of pixel masks (pycocotools)."""
    if not pred or not gt:
        return np.zeros((len(pred), len(gt)))
    p = [_coco_rle(_instance_rle(i, width=width, height=height)) for i in pred]
    g = [_coco_rle(_instance_rle(i, width=width, height=height)) for i in gt]
    return np.asarray(mask_utils.iou(p, g, [0] * len(g)), dtype=np.float64).reshape(len(p), len(g))


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
