"""Quality control numbers: one annotator against ground truth, agreement and consensus of several,
and the aggregates behind the time and fatigue reports.

Objects are dicts shaped like the API's annotations: ``{"uid": ..., "label": <label id>,
"geometry": <our geometry JSON, see ml.geometry>}`` (other keys are ignored).  Every comparison is
between pixel masks: polygons (with holes, in several parts) and RLE masks are rasterised by
ml.geometry and compared as pycocotools RLE, so the numbers agree with the exports and COCO
evaluation.

Matching is greedy by IoU and one-to-one: every pair of objects with IoU >= ``iou_threshold`` is
considered from the highest IoU down (ties in input order), and a pair is taken when neither object
is taken yet.  It ignores labels so that a well-drawn object with the wrong label is reported as a
wrong label, not as one missing and one extra object.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Hashable, Iterable, Mapping, Sequence
from typing import Any, Literal, TypedDict, get_args

import numpy as np

from ml import geometry as geo

__all__ = [
    "EXTRA",
    "MISSING",
    "Conflict",
    "TimeSample",
    "agreement",
    "fatigue_curve",
    "merge",
    "score",
    "throughput",
]

Object = Mapping[str, Any]

#: the attempt-side key of the confusion matrix for a ground-truth object nobody drew
MISSING = "missing"
#: the truth-side key of the confusion matrix for an object that is not in the ground truth
EXTRA = "extra"


ConflictKind = Literal["missing", "extra", "wrong_label", "low_overlap"]
CONFLICT_KINDS: tuple[str, ...] = get_args(ConflictKind)


class Conflict(TypedDict):
    """One difference between an attempt and the ground truth, for a person to look at.

    ``truth``/``attempt`` are the objects' uids (None on the side that has no object) and
    ``truth_index``/``attempt_index`` their positions in the lists given.  ``iou`` is the IoU of
    the matched pair; for a missing or extra object it is its best IoU with any object on the other
    side (``closest`` names that object, None when nothing overlaps it).
    """

    kind: ConflictKind
    truth: Any
    attempt: Any
    truth_index: int | None
    attempt_index: int | None
    truth_label: Any
    attempt_label: Any
    iou: float
    closest: Any


class TimeSample(TypedDict, total=False):
    """Active annotation time spent by one person on one image (one or more records per image)."""

    user: Hashable
    image: Hashable
    seconds: float
    objects: int


# --------------------------------------------------------------------------------------------
# Masks and matching
# --------------------------------------------------------------------------------------------


def _rles(objects: Sequence[Object], width: int, height: int) -> list[geo.Rle]:
    """Each object's shape as compressed RLE (polygons rasterised by ml.geometry)."""
    return [geo.geometry_to_rle(obj["geometry"], width=width, height=height) for obj in objects]


def _greedy(ious: np.ndarray, threshold: float) -> list[tuple[int, int, float]]:
    """One-to-one pairs (i, j, iou), highest IoU first, each >= ``threshold`` (and > 0)."""
    rows, cols = np.nonzero((ious >= threshold) & (ious > 0))
    # stable sort on -IoU keeps ties in (row, column) order, which np.nonzero already gives
    order = np.argsort(-ious[rows, cols], kind="stable")
    used_rows: set[int] = set()
    used_cols: set[int] = set()
    pairs = []
    for k in order.tolist():
        i, j = int(rows[k]), int(cols[k])
        if i not in used_rows and j not in used_cols:
            used_rows.add(i)
            used_cols.add(j)
            pairs.append((i, j, float(ious[i, j])))
    return pairs


def _rates(tp: int, truth: int, attempt: int) -> dict[str, float]:
    """Precision, recall and F1; all 1.0 when there is nothing on either side, else 0.0 for 0/0."""
    if truth == 0 and attempt == 0:
        return {"precision": 1.0, "recall": 1.0, "f1": 1.0}
    return {
        "precision": tp / attempt if attempt else 0.0,
        "recall": tp / truth if truth else 0.0,
        "f1": 2 * tp / (truth + attempt),
    }


# --------------------------------------------------------------------------------------------
# One attempt against the ground truth
# --------------------------------------------------------------------------------------------


def score(
    truth: Sequence[Object],
    attempt: Sequence[Object],
    width: int,
    height: int,
    *,
    iou_threshold: float = 0.5,
    low_overlap: float = 0.8,
) -> dict[str, Any]:
    """How well ``attempt`` reproduces the ground truth ``truth`` on a ``width`` x ``height`` image.

    Objects are matched by mask IoU, labels ignored (see the module docstring).  A match is a true
    positive only when the labels agree: a matched pair with different labels counts as a false
    positive of the attempt's label and a false negative of the truth's, as in class-aware COCO
    evaluation, so precision/recall/F1 measure "right object, right label".  ``mean_iou`` is over
    all matched pairs, whatever their labels (how well outlines are drawn), None without a match.

    Returns ``tp``, ``fp``, ``fn``, ``precision``, ``recall``, ``f1``, ``mean_iou``, ``matches``
    (``[(truth_index, attempt_index, iou)]``), ``per_label`` (label → tp, fp, fn, precision,
    recall, f1, truth, attempt counts; for every label on either side), ``confusion`` (truth
    label → attempt label → count, with MISSING as the attempt label of unmatched truth objects
    and EXTRA as the truth label of unmatched attempt objects) and ``conflicts`` (a list of
    Conflict: ``missing``, ``extra``, ``wrong_label``, and ``low_overlap`` for matches under
    ``low_overlap`` IoU; a pair can be both wrong_label and low_overlap).
    """
    return _score(
        truth, attempt, geo.rle_iou_matrix(_rles(truth, width, height), _rles(attempt, width, height)),
        iou_threshold=iou_threshold, low_overlap=low_overlap,
    )


def _score(
    truth: Sequence[Object], attempt: Sequence[Object], ious: np.ndarray, *, iou_threshold: float, low_overlap: float
) -> dict[str, Any]:
    """score, given the IoU matrix [truth, attempt]."""
    matches = _greedy(ious, iou_threshold)
    truth_labels = [t["label"] for t in truth]
    attempt_labels = [a["label"] for a in attempt]

    confusion: dict[Any, Counter[Any]] = defaultdict(Counter)
    conflicts: list[Conflict] = []
    per_label: dict[Any, Counter[str]] = defaultdict(Counter)
    for label in truth_labels:
        per_label[label]["truth"] += 1
    for label in attempt_labels:
        per_label[label]["attempt"] += 1

    def conflict(kind: Any, i: int | None, j: int | None, iou: float, closest: Any = None) -> Conflict:
        return {
            "kind": kind,
            "truth": None if i is None else truth[i].get("uid"),
            "attempt": None if j is None else attempt[j].get("uid"),
            "truth_index": i, "attempt_index": j,
            "truth_label": None if i is None else truth_labels[i],
            "attempt_label": None if j is None else attempt_labels[j],
            "iou": iou, "closest": closest,
        }

    for i, j, iou in matches:
        confusion[truth_labels[i]][attempt_labels[j]] += 1
        if truth_labels[i] == attempt_labels[j]:
            per_label[truth_labels[i]]["tp"] += 1
        else:
            conflicts.append(conflict("wrong_label", i, j, iou))
        if iou < low_overlap:
            conflicts.append(conflict("low_overlap", i, j, iou))
    matched_truth = {i for i, _, _ in matches}
    matched_attempt = {j for _, j, _ in matches}
    for i in range(len(truth)):
        if i not in matched_truth:
            confusion[truth_labels[i]][MISSING] += 1
            best = int(np.argmax(ious[i])) if len(attempt) else -1
            iou = float(ious[i, best]) if best >= 0 else 0.0
            conflicts.append(conflict("missing", i, None, iou, attempt[best].get("uid") if iou > 0 else None))
    for j in range(len(attempt)):
        if j not in matched_attempt:
            confusion[EXTRA][attempt_labels[j]] += 1
            best = int(np.argmax(ious[:, j])) if len(truth) else -1
            iou = float(ious[best, j]) if best >= 0 else 0.0
            conflicts.append(conflict("extra", None, j, iou, truth[best].get("uid") if iou > 0 else None))

    tp = sum(c["tp"] for c in per_label.values())
    labels_out = {}
    for label, c in per_label.items():
        labels_out[label] = {
            "tp": c["tp"], "fp": c["attempt"] - c["tp"], "fn": c["truth"] - c["tp"],
            "truth": c["truth"], "attempt": c["attempt"], **_rates(c["tp"], c["truth"], c["attempt"]),
        }
    return {
        "tp": tp,
        "fp": len(attempt) - tp,
        "fn": len(truth) - tp,
        **_rates(tp, len(truth), len(attempt)),
        "mean_iou": float(np.mean([m[2] for m in matches])) if matches else None,
        "matches": matches,
        "per_label": labels_out,
        "confusion": {t: dict(row) for t, row in confusion.items()},
        "conflicts": conflicts,
    }


# --------------------------------------------------------------------------------------------
# Several annotators: clusters, agreement, merge
# --------------------------------------------------------------------------------------------


def _clusters(
    rles: Sequence[Sequence[geo.Rle]], threshold: float
) -> tuple[list[dict[int, int]], dict[tuple[int, int, int, int], float], dict[tuple[int, int], np.ndarray]]:
    """Group the objects of N versions into clusters holding at most one object per version.

    Cross-version pairs with IoU >= ``threshold`` are taken from the highest IoU down; a pair joins
    its two clusters unless they share a version (single linkage under that constraint).  Returns
    the clusters as {version: object index}, ordered by their first object in (version, index)
    order, the IoU of every overlapping cross-version pair keyed (v1, i1, v2, i2), and the IoU
    matrix of every pair of versions keyed (v1, v2) with v1 < v2.
    """
    n = len(rles)
    pair_iou: dict[tuple[int, int, int, int], float] = {}
    matrices: dict[tuple[int, int], np.ndarray] = {}
    edges: list[tuple[float, int, int, int, int]] = []
    for v1 in range(n):
        for v2 in range(v1 + 1, n):
            ious = matrices[(v1, v2)] = geo.rle_iou_matrix(rles[v1], rles[v2])
            for i1, i2 in zip(*np.nonzero(ious > 0)):
                iou = float(ious[i1, i2])
                pair_iou[(v1, int(i1), v2, int(i2))] = pair_iou[(v2, int(i2), v1, int(i1))] = iou
                if iou >= threshold:
                    edges.append((-iou, v1, int(i1), v2, int(i2)))
    cluster_of: dict[tuple[int, int], int] = {}
    members: list[dict[int, int]] = []
    for v, objs in enumerate(rles):
        for i in range(len(objs)):
            cluster_of[(v, i)] = len(members)
            members.append({v: i})
    for _, v1, i1, v2, i2 in sorted(edges):
        a, b = cluster_of[(v1, i1)], cluster_of[(v2, i2)]
        if a == b or members[a].keys() & members[b].keys():
            continue
        members[a].update(members[b])
        for v, i in members[b].items():
            cluster_of[(v, i)] = a
        members[b] = {}
    return [m for m in members if m], pair_iou, matrices


def _mean_pairwise_iou(cluster: Mapping[int, int], pair_iou: Mapping[tuple[int, int, int, int], float]) -> float | None:
    items = sorted(cluster.items())
    values = [
        pair_iou.get((v1, i1, v2, i2), 0.0)
        for k, (v1, i1) in enumerate(items)
        for v2, i2 in items[k + 1:]
    ]
    return float(np.mean(values)) if values else None


def _majority_label(labels: Sequence[Any]) -> tuple[Any, int]:
    """The most frequent label and its count; a tie goes to the label seen first (earliest version)."""
    counts = Counter(labels)
    best = max(counts.values())
    return next(label for label in labels if counts[label] == best), best


def agreement(
    versions: Sequence[Sequence[Object]], width: int, height: int, *, iou_threshold: float = 0.5
) -> dict[str, Any]:
    """How far N >= 2 annotators' versions of one image agree.

    Objects are clustered across versions (see _clusters: at most one object per annotator in a
    cluster, pairs with IoU >= ``iou_threshold``).  Per cluster: ``members`` ({version: object
    index}), ``uids``, ``found_by`` (share of annotators with an object in it), ``mean_iou``
    (mean pairwise IoU of its objects, None for an object only one annotator drew), ``label``
    (majority) and ``label_agreement`` (share of its objects carrying that label), and ``score`` =
    mean_iou x found_by (0.0 for a lone object: nobody confirmed it).  The image's ``score`` is the
    mean of the cluster scores, 1.0 when every version is empty (they agree that there is
    nothing).  ``pairs`` gives, for every two versions, the F1 and mean IoU of one scored against
    the other (symmetric: F1 does not depend on which is the truth).
    """
    n = len(versions)
    if n < 2:
        raise ValueError(f"agreement needs at least two versions, got {n}")
    rles = [_rles(v, width, height) for v in versions]
    clusters, pair_iou, matrices = _clusters(rles, iou_threshold)
    out_clusters = []
    for cluster in clusters:
        mean_iou = _mean_pairwise_iou(cluster, pair_iou)
        labels = [versions[v][i]["label"] for v, i in sorted(cluster.items())]
        label, votes = _majority_label(labels)
        found_by = len(cluster) / n
        out_clusters.append({
            "members": dict(sorted(cluster.items())),
            "uids": [versions[v][i].get("uid") for v, i in sorted(cluster.items())],
            "found_by": found_by,
            "mean_iou": mean_iou,
            "label": label,
            "label_agreement": votes / len(labels),
            "score": found_by * mean_iou if mean_iou is not None else 0.0,
        })
    pairs = []
    for v1 in range(n):
        for v2 in range(v1 + 1, n):
            result = _score(versions[v1], versions[v2], matrices[(v1, v2)], iou_threshold=iou_threshold, low_overlap=0.0)
            pairs.append({"versions": (v1, v2), "f1": result["f1"], "mean_iou": result["mean_iou"]})
    return {
        "annotators": n,
        "score": float(np.mean([c["score"] for c in out_clusters])) if out_clusters else 1.0,
        "clusters": out_clusters,
        "pairs": pairs,
    }


def merge(
    versions: Sequence[Sequence[Object]],
    width: int,
    height: int,
    *,
    quorum: int | None = None,
    iou_threshold: float = 0.5,
) -> list[dict[str, Any]]:
    """A consensus version of one image from N annotators' versions.

    An object is kept when at least ``quorum`` annotators drew it (one cluster, see agreement);
    the default is a strict majority, N // 2 + 1 (both of two, two of three, three of four), so a
    consensus never rests on fewer than half the people.  Its mask is the pixel majority of the
    cluster's masks: a pixel is in when more than half of them cover it (for two masks their
    intersection, the pixels both agree on).  Its label is the majority label, a tie going to the
    earliest version (pass versions in order of trust).  A cluster whose majority mask is empty is
    dropped.  Objects come as ``{"label", "geometry": {"type": "mask", "rle"}, "support",
    "sources"}``: support is how many annotators drew it, sources their objects' uids.
    """
    n = len(versions)
    if n < 1:
        raise ValueError("merge needs at least one version")
    need = n // 2 + 1 if quorum is None else quorum
    if not 1 <= need <= n:
        raise ValueError(f"quorum must be between 1 and the number of versions ({n}), got {need}")
    rles = [_rles(v, width, height) for v in versions]
    clusters, _, _ = _clusters(rles, iou_threshold)
    merged = []
    for cluster in clusters:
        if len(cluster) < need:
            continue
        items = sorted(cluster.items())
        mask = geo.rle_vote([rles[v][i] for v, i in items], len(items) // 2 + 1)
        if geo.rle_bbox_area(mask)[1] == 0:
            continue
        label, _ = _majority_label([versions[v][i]["label"] for v, i in items])
        merged.append({
            "label": label,
            "geometry": {"type": "mask", "rle": mask},
            "support": len(items),
            "sources": [versions[v][i].get("uid") for v, i in items],
        })
    return merged


# --------------------------------------------------------------------------------------------
# Time and fatigue
# --------------------------------------------------------------------------------------------


def fatigue_curve(
    samples: Iterable[Mapping[str, Any]], bin_minutes: float = 30, *, value: str = "f1"
) -> list[dict[str, Any]]:
    """Mean ``value`` (F1 against ground truth by default) against minutes into a work session.

    Each sample has ``minutes`` (how long the person had been working in that session when the
    image was done) and ``value``.  Bins are [k x bin_minutes, (k + 1) x bin_minutes) from 0 up to
    the last sample, each ``{"start", "end", "count", "mean"}``, ``mean`` None for an empty bin
    so that a chart shows a gap rather than a fall to zero.  Samples without the value are skipped.
    """
    if not bin_minutes > 0 or not math.isfinite(bin_minutes):
        raise ValueError(f"bin_minutes must be a positive number, got {bin_minutes!r}")
    sums: dict[int, list[float]] = defaultdict(list)
    for sample in samples:
        minutes, v = sample.get("minutes"), sample.get(value)
        if minutes is None or v is None:
            continue
        if minutes < 0:
            raise ValueError(f"minutes into a session cannot be negative, got {minutes!r}")
        sums[int(minutes // bin_minutes)].append(float(v))
    if not sums:
        return []
    return [
        {
            "start": k * bin_minutes,
            "end": (k + 1) * bin_minutes,
            "count": len(sums.get(k, [])),
            "mean": float(np.mean(sums[k])) if k in sums else None,
        }
        for k in range(max(sums) + 1)
    ]


def throughput(records: Iterable[TimeSample]) -> dict[Hashable, dict[str, Any]]:
    """Per person: images, objects, active seconds, seconds per image and per object, objects/hour.

    Several records of one person on one image (sessions, rejections sent back) add up to one
    image; ``objects`` is summed over records, so each record should carry the objects it added or
    finished.  A rate is None when its denominator is zero.
    """
    seconds: dict[Hashable, float] = defaultdict(float)
    objects: dict[Hashable, int] = defaultdict(int)
    images: dict[Hashable, set[Hashable]] = defaultdict(set)
    for record in records:
        user = record["user"]
        s = float(record.get("seconds", 0.0))
        if s < 0 or not math.isfinite(s):
            raise ValueError(f"seconds must be a finite number >= 0, got {s!r}")
        seconds[user] += s
        objects[user] += int(record.get("objects", 0))
        if "image" in record:
            images[user].add(record["image"])
    out: dict[Hashable, dict[str, Any]] = {}
    for user, total in seconds.items():
        count, objs = len(images[user]), objects[user]
        out[user] = {
            "images": count,
            "objects": objs,
            "seconds": total,
            "seconds_per_image": total / count if count else None,
            "seconds_per_object": total / objs if objs else None,
            "objects_per_hour": objs * 3600 / total if total else None,
        }
    return out
