"""Reads for review: the diffs a reviewer sees, the review state of an image, dashboard statistics."""
from __future__ import annotations

from typing import Any, TypedDict

from django.contrib.auth import get_user_model
from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Sum

from annotator.annotations.models import Prediction
from annotator.annotations.selectors import annotation_to_dict, annotations_of, predictions_of, revision_objects_at
from annotator.images.models import Image, ImageStatus
from annotator.images.selectors import image_status_counts
from annotator.projects.models import Project
from ml.geometry import GeometryError, geometry_iou

from .models import ReviewComment, ReviewDecision, ReviewTask, Verdict

# A proposal the annotator kept counts as unchanged when its outline still covers the same pixels
# this closely: the editor turns model masks into polygons, which moves the outline by a fraction
# of a pixel without anybody touching it.
PROPOSAL_UNCHANGED_IOU = 0.98


class DiffCounts(TypedDict):
    added: int
    removed: int
    modified: int
    unchanged: int


class ObjectsDiff(TypedDict):
    """Objects of ``after`` against ``before``: what was added, removed and modified (by uid)."""

    added: list[dict[str, Any]]
    removed: list[dict[str, Any]]
    modified: list[dict[str, Any]]
    unchanged: list[str]
    counts: DiffCounts
    mean_iou: float | None  # over objects present on both sides


def _iou(a: dict[str, Any], b: dict[str, Any], *, width: int, height: int) -> float:
    try:
        return geometry_iou(a, b, width=width, height=height)
    except GeometryError:
        return 0.0


def objects_diff(
    before: list[dict[str, Any]],
    after: list[dict[str, Any]],
    *,
    width: int,
    height: int,
    key: str = "uid",
    before_key: str | None = None,
    same_iou: float | None = None,
) -> ObjectsDiff:
    """Compare two annotation sets (API dicts) object by object.

    Objects are matched by ``after[key] == before[before_key or key]``. A matched object is
    modified when its label changed or its geometry changed; with ``same_iou`` a geometry only
    counts as changed when its IoU drops below that value (used against model proposals). Each
    modified entry carries the IoU and the geometry before, so that the editor can draw both.
    """
    before_key = before_key or key
    old = {str(item[before_key]): item for item in before if item.get(before_key) is not None}
    added: list[dict[str, Any]] = []
    modified: list[dict[str, Any]] = []
    unchanged: list[str] = []
    matched: set[str] = set()
    ious: list[float] = []
    for item in after:
        ref = item.get(key)
        prior = old.get(str(ref)) if ref is not None else None
        if prior is None:
            added.append({"uid": item.get("uid"), "label": item.get("label"), "geometry": item.get("geometry")})
            continue
        matched.add(str(ref))
        changes = []
        if prior.get("label") != item.get("label"):
            changes.append("label")
        iou = 1.0
        if prior.get("geometry") != item.get("geometry"):
            iou = _iou(prior["geometry"], item["geometry"], width=width, height=height)
            if same_iou is None or iou < same_iou:
                changes.append("geometry")
        if same_iou is None and prior.get("attributes", {}) != item.get("attributes", {}):
            changes.append("attributes")
        ious.append(iou)
        if changes:
            modified.append({
                "uid": item.get("uid"), "label": item.get("label"), "before_label": prior.get("label"),
                "changes": changes, "iou": iou, "before": prior.get("geometry"), "geometry": item.get("geometry"),
                **({"prediction": prior.get("id")} if before_key == "id" else {}),
            })
        else:
            unchanged.append(str(item.get("uid")))
    removed = [
        {"uid": item.get("uid"), "label": item.get("label"), "geometry": item.get("geometry"),
         **({"prediction": item.get("id"), "score": item.get("score")} if before_key == "id" else {})}
        for ref, item in old.items()
        if ref not in matched
    ]
    return {
        "added": added,
        "removed": removed,
        "modified": modified,
        "unchanged": unchanged,
        "counts": {"added": len(added), "removed": len(removed), "modified": len(modified), "unchanged": len(unchanged)},
        "mean_iou": sum(ious) / len(ious) if ious else None,
    }


def revision_annotations(image: Image, version: int) -> list[dict[str, Any]]:
    """The annotation set of ``image`` as it stood at ``version`` (version 0 is the empty set)."""
    return list(revision_objects_at(image, version) or [])


def current_annotations(image: Image) -> list[dict[str, Any]]:
    return [annotation_to_dict(a) for a in annotations_of(image)]


def submitted_version_of(image: Image) -> int:
    """The version under review: the open task's, else the last decision's, else the current one."""
    task = ReviewTask.objects.filter(image=image).order_by("-taken_at", "-id").values_list("submitted_version", flat=True).first()
    return task if task is not None else image.version


def _prediction_dict(prediction: Prediction) -> dict[str, Any]:
    return {"id": prediction.pk, "label": prediction.label_id, "geometry": prediction.geometry, "score": prediction.score}


def proposals_diff(image: Image, annotations: list[dict[str, Any]], *, min_score: float = 0.0) -> ObjectsDiff:
    """What the annotator did to the model's proposals: kept, changed, deleted, and drawn anew.

    The proposals are the latest model run's predictions above ``min_score`` plus any older
    prediction an object still refers to.
    """
    referenced = {a["prediction"] for a in annotations if a.get("prediction") is not None}
    shown = predictions_of(image, min_score=min_score)
    predictions = Prediction.objects.filter(Q(pk__in=shown.values("pk")) | Q(pk__in=referenced), image=image)
    return objects_diff(
        [_prediction_dict(p) for p in predictions], annotations, width=image.width, height=image.height,
        key="prediction", before_key="id", same_iou=PROPOSAL_UNCHANGED_IOU,
    )


def review_diff(image: Image, *, min_score: float = 0.0) -> dict[str, Any]:
    """Both diffs of the review view: submitted vs. model proposals, and reviewer's edits vs. submitted."""
    submitted_version = submitted_version_of(image)
    submitted = revision_annotations(image, submitted_version)
    current = current_annotations(image)
    return {
        "submitted_version": submitted_version,
        "current_version": image.version,
        "proposals": proposals_diff(image, submitted, min_score=min_score),
        "review": objects_diff(submitted, current, width=image.width, height=image.height),
    }


def accepts_of_current_version(image: Image) -> QuerySet[ReviewDecision]:
    """Accept decisions that count toward ``required_accepts``: same version, since the last submission."""
    qs = ReviewDecision.objects.filter(image=image, decision=Verdict.ACCEPT, version=image.version)
    if image.submitted_at is not None:
        qs = qs.filter(created_at__gte=image.submitted_at)
    return qs


def accepted_by_user_exists(user_id: int) -> Exists:
    """Per-image subquery: has this user already accepted the image's current version this round?"""
    return Exists(
        ReviewDecision.objects.filter(
            image=OuterRef("pk"), reviewer_id=user_id, decision=Verdict.ACCEPT, version=OuterRef("version"),
            created_at__gte=OuterRef("submitted_at"),
        )
    )


def comment_to_dict(comment: ReviewComment) -> dict[str, Any]:
    return {
        "id": comment.pk,
        "image": comment.image_id,
        "decision": comment.decision_id,
        "author": comment.author.username if comment.author else None,
        "text": comment.text,
        "uid": str(comment.annotation_uid) if comment.annotation_uid else None,
        "x": comment.x,
        "y": comment.y,
        "version": comment.version,
        "resolved": comment.resolved,
        "resolved_by": comment.resolved_by.username if comment.resolved_by else None,
        "resolved_at": comment.resolved_at.isoformat() if comment.resolved_at else None,
        "created_at": comment.created_at.isoformat(),
    }


def comments_of(image: Image) -> QuerySet[ReviewComment]:
    return ReviewComment.objects.filter(image=image).select_related("author", "resolved_by").order_by("created_at", "id")


def decision_to_dict(decision: ReviewDecision) -> dict[str, Any]:
    return {
        "id": decision.pk,
        "decision": decision.decision,
        "reviewer": decision.reviewer.username if decision.reviewer else None,
        "annotator": decision.annotator.username if decision.annotator else None,
        "comment": decision.comment,
        "submitted_version": decision.submitted_version,
        "version": decision.version,
        "objects": [
            {"uid": str(o.annotation_uid), "decision": o.verdict, "comment": o.comment} for o in decision.object_decisions.all()
        ],
        "changes": {"added": decision.objects_added, "removed": decision.objects_removed, "modified": decision.objects_modified},
        "created_at": decision.created_at.isoformat(),
    }


def decisions_of(image: Image) -> QuerySet[ReviewDecision]:
    return (
        ReviewDecision.objects.filter(image=image)
        .select_related("reviewer", "annotator")
        .prefetch_related("object_decisions")
        .order_by("-created_at", "-id")
    )


def review_state(image: Image, *, with_diff: bool = True, min_score: float = 0.0) -> dict[str, Any]:
    """Everything the editor needs in review mode (and in annotate mode after a rejection)."""
    accepts = accepts_of_current_version(image).select_related("reviewer")
    state: dict[str, Any] = {
        "image": image.pk,
        "status": image.status,
        "version": image.version,
        "annotator": image.assignee.username if image.assignee else None,
        "reviewer": image.reviewer.username if image.reviewer else None,
        "required_accepts": image.project.required_accepts,
        "accepted_by": sorted({d.reviewer.username for d in accepts if d.reviewer}),
        "decisions": [decision_to_dict(d) for d in decisions_of(image)[:100]],
        "comments": [comment_to_dict(c) for c in comments_of(image)],
    }
    if with_diff:
        state["diff"] = review_diff(image, min_score=min_score)
    return state


def review_stats(project: Project) -> dict[str, Any]:
    """Dashboard numbers: acceptance per annotator, reviewer corrections, IoU, time in review."""
    decisions = ReviewDecision.objects.filter(image__project=project)
    per_annotator = (
        decisions.values("annotator")
        .annotate(
            total=Count("id"),
            accepted=Count("id", filter=Q(decision=Verdict.ACCEPT)),
            rejected=Count("id", filter=Q(decision=Verdict.REJECT)),
        )
        .order_by("annotator")
    )
    names = dict(get_user_model().objects.filter(pk__in=[r["annotator"] for r in per_annotator if r["annotator"]]).values_list("pk", "username"))
    annotators = [
        {
            "annotator": names.get(row["annotator"]) if row["annotator"] else None,
            "decisions": row["total"],
            "accepted": row["accepted"],
            "rejected": row["rejected"],
            "acceptance_rate": row["accepted"] / row["total"] if row["total"] else None,
        }
        for row in per_annotator
    ]
    totals = decisions.aggregate(
        total=Count("id"),
        accepted=Count("id", filter=Q(decision=Verdict.ACCEPT)),
        added=Sum("objects_added"),
        removed=Sum("objects_removed"),
        modified=Sum("objects_modified"),
        iou_sum=Sum("iou_sum", filter=Q(decision=Verdict.ACCEPT)),
        iou_count=Sum("iou_count", filter=Q(decision=Verdict.ACCEPT)),
    )
    # Time in review: from the hand-over to the decision, in seconds (done in Python: duration
    # arithmetic differs between SQLite and PostgreSQL and the row count is small per project).
    durations = [
        (created - taken).total_seconds()
        for taken, created in decisions.filter(taken_at__isnull=False).values_list("taken_at", "created_at")
    ]
    changed = (totals["added"] or 0) + (totals["removed"] or 0) + (totals["modified"] or 0)
    by_status = image_status_counts(project)
    return {
        "decisions": totals["total"],
        "accepted": totals["accepted"],
        "acceptance_rate": totals["accepted"] / totals["total"] if totals["total"] else None,
        "objects_changed_by_reviewers": changed,
        "objects_added_by_reviewers": totals["added"] or 0,
        "objects_removed_by_reviewers": totals["removed"] or 0,
        "objects_modified_by_reviewers": totals["modified"] or 0,
        "mean_iou_submitted_vs_accepted": (totals["iou_sum"] / totals["iou_count"]) if totals["iou_count"] else None,
        "mean_seconds_in_review": sum(durations) / len(durations) if durations else None,
        "waiting_for_review": by_status[ImageStatus.SUBMITTED],
        "in_review": by_status[ImageStatus.IN_REVIEW],
        "annotators": annotators,
    }
