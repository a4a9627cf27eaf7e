"""Reads on ground truth: a person's attempt at an image, the queue's candidates, the quality report."""
from __future__ import annotations

import copy
from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Count, Q, QuerySet

from annotator.core.access import Capability, can
from annotator.images.models import Image, ImageStatus
from annotator.projects.models import Project

from .models import GroundTruth, GroundTruthAttempt


def attempt_of(image: Image, user: AbstractBaseUser | AnonymousUser) -> GroundTruthAttempt | None:
    """The user's attempt at `image` when it is a ground-truth image the queue handed them: what
    they see and edit there instead of the image's own annotations and status."""
    if not image.is_ground_truth or not user.is_authenticated:
        return None
    return GroundTruthAttempt.objects.filter(image=image, annotator=user).first()


TRUTH_HIDDEN = (
    "This is a ground-truth image: its objects are the answer annotators are checked against, shown only to its "
    "authors, reviewers and managers. Your queue hands it to you to draw yourself when your turn comes."
)


def truth_hidden_reason(image: Image, user: AbstractBaseUser | AnonymousUser) -> str | None:
    """Why `user` may not see the objects (or the history) of `image`, None when they may.

    The objects of a ground-truth image are the truth: an annotator who opened it before the
    queue handed it to them would draw it from memory. Its authors (who drew and accepted it),
    reviewers and managers see it; an annotator with an attempt sees their attempt instead.
    """
    if not image.is_ground_truth or can(user, image.project, Capability.REVIEW):
        return None
    authors = GroundTruth.objects.filter(image=image).values_list("annotator_id", "reviewer_id").first() or ()
    if user.pk in authors or attempt_of(image, user) is not None:
        return None
    return TRUTH_HIDDEN


def attempts_by_image(user: AbstractBaseUser | AnonymousUser, images: Iterable[Image]) -> dict[int, GroundTruthAttempt]:
    """The user's attempts at those of `images` that are ground truth, by image id (one query, none without)."""
    ids = [image.pk for image in images if image.is_ground_truth]
    if not ids or not user.is_authenticated:
        return {}
    return {a.image_id: a for a in GroundTruthAttempt.objects.filter(annotator=user, image_id__in=ids).select_related("annotator")}


def images_as_seen(user: AbstractBaseUser | AnonymousUser, images: Iterable[Image]) -> list[Image]:
    """`images` for a page to show: a ground-truth image the user tries is a copy carrying their
    attempt's status and them as its annotator (copies for display, never saved)."""
    images = list(images)
    attempts = attempts_by_image(user, images)
    shown = []
    for image in images:
        attempt = attempts.get(image.pk)
        if attempt is not None:
            image = copy.copy(image)
            image.status, image.assignee, image.reviewer = attempt.status, attempt.annotator, None
        shown.append(image)
    return shown


def attempts_shown(project: Project, user: AbstractBaseUser | AnonymousUser | None) -> QuerySet[GroundTruthAttempt] | None:
    """The user's attempts that stand in for their images in lists (at images still ground truth,
    as images_as_seen shows them); None when they have none, so that lists filter as before."""
    if user is None or not user.is_authenticated:
        return None
    attempts = GroundTruthAttempt.objects.filter(image__project=project, image__is_ground_truth=True, annotator=user)
    return attempts if attempts.exists() else None


def attempt_open(project: Project, user: AbstractBaseUser) -> GroundTruthAttempt | None:
    """The user's unfinished attempt in the project (their queue gives it back first)."""
    return (
        GroundTruthAttempt.objects.filter(image__project=project, annotator=user, status=ImageStatus.IN_PROGRESS)
        .select_related("image").order_by("started_at", "id").first()
    )


def ground_truth_candidates(project: Project, user: AbstractBaseUser) -> QuerySet[Image]:
    """Ground-truth images the queue may hand `user`: not drawn or accepted by them, not tried by
    them before; the least tried first."""
    authored = Q(ground_truth__annotator=user) | Q(ground_truth__reviewer=user)
    return (
        Image.objects.filter(project=project, is_ground_truth=True, ground_truth__isnull=False)
        .exclude(authored)
        .exclude(ground_truth_attempts__annotator=user)
        .annotate(tries=Count("ground_truth_attempts"))
        .order_by("tries", "id")
    )


def attempts_of(project: Project) -> QuerySet[GroundTruthAttempt]:
    return (
        GroundTruthAttempt.objects.filter(image__project=project)
        .select_related("annotator", "image").order_by("-submitted_at", "-id")
    )


def ground_truth_of(project: Project) -> QuerySet[GroundTruth]:
    return GroundTruth.objects.filter(image__project=project).select_related("image")


_COUNTS = ("tp", "fp", "fn")


def _rates(c: Counter[str]) -> dict[str, float | None]:
    """Micro-averaged precision, recall and F1 over summed counts (None with nothing to divide)."""
    tp, fp, fn = c["tp"], c["fp"], c["fn"]
    return {
        "precision": tp / (tp + fp) if tp + fp else None,
        "recall": tp / (tp + fn) if tp + fn else None,
        "f1": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else None,
    }


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def ground_truth_report(project: Project) -> dict[str, Any]:
    """Scored attempts summed per annotator and per label (of the truth): precision, recall, F1
    (micro-averaged over objects), mean IoU of matched objects, the confusion between truth and
    drawn labels, and every conflict (missing, extra, wrong label, low overlap) to look at."""
    truth_labels = {gt.image_id: [obj["label"] for obj in gt.truth] for gt in ground_truth_of(project)}
    names = dict(project.labels.values_list("pk", "name"))
    people: dict[str, dict[str, Any]] = {}
    by_label: dict[Any, Counter[str]] = defaultdict(Counter)
    label_ious: dict[Any, list[float]] = defaultdict(list)
    confusion: dict[str, Counter[str]] = defaultdict(Counter)
    conflicts: list[dict[str, Any]] = []
    scored = attempts_of(project).filter(status=ImageStatus.SUBMITTED)
    for attempt in scored.order_by("annotator__username", "submitted_at", "id"):
        scores = attempt.scores or {}
        who = attempt.annotator.username
        person = people.setdefault(who, {"username": who, "attempts": 0, "counts": Counter(), "ious": [],
                                         "per_label": defaultdict(Counter), "label_ious": defaultdict(list)})
        person["attempts"] += 1
        for key in _COUNTS:
            person["counts"][key] += scores.get(key, 0)
        labels = truth_labels.get(attempt.image_id, [])
        for truth_index, _attempt_index, iou in scores.get("matches", []):
            person["ious"].append(iou)
            if truth_index < len(labels):
                person["label_ious"][str(labels[truth_index])].append(iou)
                label_ious[str(labels[truth_index])].append(iou)
        for label, numbers in scores.get("per_label", {}).items():
            for key in _COUNTS:
                person["per_label"][label][key] += numbers.get(key, 0)
                by_label[label][key] += numbers.get(key, 0)
        for truth, row in scores.get("confusion", {}).items():
            for drawn, count in row.items():
                confusion[truth][drawn] += count
        conflicts += [{"image": attempt.image_id, "annotator": who, **conflict} for conflict in scores.get("conflicts", [])]

    def label_rows(counts: dict[Any, Counter[str]], ious: dict[Any, list[float]]) -> list[dict[str, Any]]:
        return [
            {"label": _label_id(label), "name": names.get(_label_id(label)), **{k: c[k] for k in _COUNTS}, **_rates(c),
             "mean_iou": _mean(ious.get(label, []))}
            for label, c in sorted(counts.items(), key=lambda item: str(item[0]))
        ]

    return {
        "ground_truth_images": len(truth_labels),
        "attempts": scored.count(),
        "annotators": [
            {"username": p["username"], "attempts": p["attempts"], **{k: p["counts"][k] for k in _COUNTS},
             **_rates(p["counts"]), "mean_iou": _mean(p["ious"]), "per_label": label_rows(p["per_label"], p["label_ious"])}
            for p in people.values()
        ],
        "labels": label_rows(by_label, label_ious),
        "confusion": {truth: dict(row) for truth, row in confusion.items()},
        "conflicts": conflicts,
    }


def _label_id(key: Any) -> Any:
    """Label ids come back from JSON as strings ("missing" / "extra" stay what they are)."""
    return int(key) if isinstance(key, str) and key.isdigit() else key


def attempt_feedback(attempt: GroundTruthAttempt) -> dict[str, Any]:
    """What an annotator is shown of their submitted attempt when the project gives feedback
    (`ground_truth_feedback`): its scores and conflicts, labels by name, the truth's objects not revealed."""
    scores = attempt.scores or {}
    names = dict(attempt.image.project.labels.values_list("pk", "name"))
    conflicts = [
        {
            "kind": c["kind"], "attempt": c["attempt"], "iou": c["iou"],
            "truth_label": names.get(c["truth_label"]), "attempt_label": names.get(c["attempt_label"]),
        }
        for c in scores.get("conflicts", [])
    ]
    return {name: scores.get(name) for name in ("f1", "precision", "recall", "mean_iou")} | {"conflicts": conflicts}
