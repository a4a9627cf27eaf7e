"""Duplicate suppression for predicted instances: class-aware non-maximum suppression on mask IoU.

A detector often proposes one object several times (boxes that differ a little, each with its own
mask). Boxes overlap more than masks do for thin or diagonal objects, so duplicates are found by
the IoU of the masks themselves (pycocotools on RLE, through ml.geometry), within one class.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np

from ml.geometry import Rle, rle_iou_matrix

__all__ = ["DEFAULT_NMS_IOU", "mask_nms"]

#: Two proposals of one class whose masks overlap more than this are one object.
DEFAULT_NMS_IOU = 0.5


def mask_nms(
    rles: Sequence[Rle], scores: Sequence[float], labels: Sequence[Hashable], *, iou_threshold: float = DEFAULT_NMS_IOU
) -> list[int]:
    """Indices of the instances to keep, best score first: greedy NMS per label on mask IoU.

    An instance is suppressed when a better-scoring instance of the same label that is itself
    kept overlaps it with IoU > ``iou_threshold``; ties keep the input order. A threshold of 1
    keeps everything (IoU never exceeds 1).
    """
    if not len(rles) == len(scores) == len(labels):
        raise ValueError(f"mask_nms: {len(rles)} masks, {len(scores)} scores and {len(labels)} labels")
    if not 0 <= iou_threshold <= 1:
        raise ValueError(f"mask_nms: iou_threshold must lie in [0, 1], got {iou_threshold}")
    order = sorted(range(len(rles)), key=lambda i: -float(scores[i]))
    by_label: dict[Hashable, list[int]] = {}
    for index in order:
        by_label.setdefault(labels[index], []).append(index)
    kept: list[int] = []
    for members in by_label.values():
        # One IoU matrix per class (pycocotools, in C); the greedy pass is a row lookup per kept instance.
        ious = rle_iou_matrix([rles[i] for i in members], [rles[i] for i in members])
        suppressed = np.zeros(len(members), dtype=bool)
        for position in range(len(members)):
            if suppressed[position]:
                continue
            kept.append(members[position])
            suppressed |= ious[position] > iou_threshold
    rank = {index: position for position, index in enumerate(order)}
    return sorted(kept, key=rank.__getitem__)
