"""Writes for review: the atomic review queue, decisions (whole image and per object), comments."""
from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Exists, F, OuterRef
from django.utils import timezone

from annotator.annotations.models import Annotation
from annotator.consensus.models import Replica, ReplicaStatus
from annotator.core.errors import Conflict, DomainError, Forbidden
from annotator.core.locks import person_lock
from annotator.images import workflow
from annotator.images.models import Image, ImageStatus
from annotator.learning.services.shapes import shape_learn_on_accept
from annotator.projects.models import Project

from .models import ObjectDecision, ReviewComment, ReviewDecision, ReviewTask, Verdict
from .selectors import (
    accepted_by_user_exists,
    accepts_of_current_version,
    current_annotations,
    objects_diff,
    revision_annotations,
)

_VERDICTS = {v.value for v in Verdict}


@dataclass(frozen=True)
class ObjectVerdict:
    """The reviewer's verdict on one object of the image."""

    uid: uuid.UUID
    decision: str
    comment: str = ""


@dataclass(frozen=True)
class CommentInput:
    """A new comment: on the image, pinned to an object (uid), or to a point (x, y)."""

    text: str
    uid: uuid.UUID | None = None
    x: float | None = None
    y: float | None = None


@dataclass
class DecisionResult:
    decision: ReviewDecision
    image: Image
    accepts: int = 0
    comments: list[ReviewComment] = field(default_factory=list)


def _review_order() -> list[Any]:
    # Highest priority first (a manager's word), then the lowest agreement among several
    # annotators' versions (consensus: where they disagree most needs a reviewer most), then the
    # image that has waited longest since its submission. Index image_review_free_idx follows it.
    return [F("priority").desc(), F("agreement").asc(nulls_last=True), F("submitted_at").asc(nulls_first=True), "id"]


def _open_task(image: Image, reviewer: AbstractBaseUser) -> ReviewTask:
    """Close any leftover open task (a manager may have reset the status by hand) and open a new one."""
    now = timezone.now()
    ReviewTask.objects.filter(image=image, closed_at__isnull=True).update(closed_at=now, released=True)
    return ReviewTask.objects.create(image=image, reviewer=reviewer, submitted_version=image.version)


def review_next(*, project: Project, user: AbstractBaseUser) -> Image | None:
    """Hand a reviewer their next image: the one they already hold, else a submitted one nobody holds.

    Never an image the user annotated (its assignee), nor one whose current version they already
    accepted (multi-reviewer policy). Atomic: row locks with SKIP LOCKED on PostgreSQL and a
    conditional update as the final guard, so two reviewers never get the same image; one
    reviewer's simultaneous requests take turns on their user row, so they get one image.
    """
    actor = workflow.Actor.of(user, project)
    reviewable = workflow.sources(workflow.Action.START_REVIEW)
    for _ in range(10):
        with transaction.atomic():
            person_lock(user)
            mine = (
                Image.objects.filter(project=project, status__in=reviewable, reviewer=user)
                .order_by(*_review_order())
                .first()
            )
            if mine is not None:
                return mine
            candidate = (
                Image.objects.select_for_update(skip_locked=True)
                .filter(project=project, status__in=reviewable, reviewer__isnull=True)
                .exclude(assignee=user)
                .exclude(Exists(Replica.objects.filter(image=OuterRef("pk"), annotator=user, status=ReplicaStatus.SUBMITTED)))  # drew a version
                .exclude(accepted_by_user_exists(user.pk))
                .order_by(*_review_order())
                .first()
            )
            if candidate is None:
                return None
            decision = workflow.decide(candidate, workflow.Action.START_REVIEW, actor)
            if not decision.allowed:
                raise workflow.WorkflowError(decision)
            taken = (
                Image.objects.filter(pk=candidate.pk, status=candidate.status, reviewer__isnull=True)
                .exclude(assignee=user)
                .update(**decision.changes, updated_at=timezone.now())
            )
            if taken:
                candidate.refresh_from_db()
                _open_task(candidate, user)
                return candidate
    return None


def _check_may_review(image: Image, user: AbstractBaseUser, action: workflow.Action) -> None:
    """The workflow's refusal of `action`, then the multi-reviewer rule: one accept per reviewer and version."""
    decision = workflow.decide(image, action, workflow.Actor.of(user, image.project))
    if not decision.allowed:
        raise workflow.WorkflowError(decision)
    if Replica.objects.filter(image=image, annotator=user, status=ReplicaStatus.SUBMITTED).exists():
        raise Forbidden("You drew one of the versions merged into this image; someone else must review it.")
    if image.status == ImageStatus.SUBMITTED and accepts_of_current_version(image).filter(reviewer=user).exists():
        raise Conflict("You already accepted this version; another reviewer must accept it too.")


@transaction.atomic
def review_take(*, image: Image, user: AbstractBaseUser) -> Image:
    """Take one specific submitted image for review (from the image list rather than the queue)."""
    image = Image.objects.select_for_update(of=("self",)).select_related("project", "reviewer").get(pk=image.pk)
    _check_may_review(image, user, workflow.Action.START_REVIEW)
    if image.status == ImageStatus.IN_REVIEW:
        return image  # already ours
    image.save(update_fields=workflow.apply(image, workflow.Action.START_REVIEW, user))
    _open_task(image, user)
    return image


@transaction.atomic
def review_release(*, image: Image, user: AbstractBaseUser) -> Image:
    """Give an image back to the review queue without deciding (the reviewer or a manager)."""
    image = Image.objects.select_for_update().get(pk=image.pk)
    fields = workflow.apply(image, workflow.Action.RELEASE_REVIEW, user)
    ReviewTask.objects.filter(image=image, closed_at__isnull=True).update(closed_at=timezone.now(), released=True)
    image.save(update_fields=fields)
    return image


def _clean_comments(image: Image, comments: list[CommentInput], uids: set[uuid.UUID]) -> None:
    for k, comment in enumerate(comments):
        where = f"comment {k}"
        if not comment.text.strip():
            raise DomainError(f"{where}: the text is empty")
        if comment.uid is not None and comment.uid not in uids:
            raise DomainError(f"{where}: object {comment.uid} is not on this image")
        if comment.uid is not None and comment.x is not None:
            raise DomainError(f"{where}: pin a comment to an object or to a point, not both")
        if (comment.x is None) != (comment.y is None):
            raise DomainError(f"{where}: a point needs both x and y")
        if comment.x is not None and comment.y is not None:
            if not (math.isfinite(comment.x) and math.isfinite(comment.y)
                    and 0 <= comment.x <= image.width and 0 <= comment.y <= image.height):
                raise DomainError(f"{where}: the point ({comment.x}, {comment.y}) is outside the image")


def _comment_create(*, image: Image, author: AbstractBaseUser, comment: CommentInput, decision: ReviewDecision | None) -> ReviewComment:
    return ReviewComment.objects.create(
        image=image, decision=decision, author=author, text=comment.text.strip(), annotation_uid=comment.uid,
        x=comment.x, y=comment.y, version=image.version,
    )


def review_decide(
    *,
    image: Image,
    user: AbstractBaseUser,
    decision: str,
    version: int,
    comment: str = "",
    objects: list[ObjectVerdict] | None = None,
    comments: list[CommentInput] | None = None,
) -> DecisionResult:
    """Accept or reject the image at ``version``, with per-object verdicts and pinned comments.

    Rejection sends the image back to its annotator (status rejected, assignee kept). An accept
    counts toward the project's ``required_accepts``: the image is accepted once that many distinct
    reviewers accepted the same version since its last submission; until then it goes back to the
    review queue for the next reviewer. Every decision is kept, with what the reviewer changed
    against the submitted version (objects added, removed, modified, and their IoU).
    """
    objects = objects or []
    comments = comments or []
    if decision not in _VERDICTS:
        raise DomainError("decision must be 'accept' or 'reject'")
    with transaction.atomic():
        image = Image.objects.select_for_update(of=("self",)).select_related("project", "reviewer").get(pk=image.pk)
        _check_may_review(image, user, workflow.Action.REJECT if decision == Verdict.REJECT else workflow.Action.ACCEPT)
        if version != image.version:
            raise Conflict(
                f"The image changed (version {image.version}) after the version {version} you reviewed; reload it.",
                extra={"current_version": image.version},
            )
        uids = set(Annotation.objects.filter(image=image).values_list("uid", flat=True))
        seen: set[uuid.UUID] = set()
        for verdict in objects:
            if verdict.decision not in _VERDICTS:
                raise DomainError(f"object {verdict.uid}: decision must be 'accept' or 'reject'")
            if verdict.uid not in uids:
                raise DomainError(f"object {verdict.uid} is not on this image (version {image.version})")
            if verdict.uid in seen:
                raise DomainError(f"object {verdict.uid} has two decisions")
            seen.add(verdict.uid)
        _clean_comments(image, comments, uids)
        rejected_objects = [v for v in objects if v.decision == Verdict.REJECT]
        if decision == Verdict.ACCEPT and rejected_objects:
            raise DomainError(
                f"{len(rejected_objects)} object(s) are rejected: reject the image, or fix or delete those objects and accept."
            )
        if decision == Verdict.REJECT and not (comment.strip() or rejected_objects or comments):
            raise DomainError(
                "Say what must be fixed: a rejection needs a comment, a comment pinned to an object or a point, "
                "or at least one rejected object."
            )

        task = ReviewTask.objects.filter(image=image, closed_at__isnull=True, reviewer=user).first()
        if task is None:
            task = _open_task(image, user)
        now = timezone.now()
        submitted = revision_annotations(image, task.submitted_version)
        diff = objects_diff(submitted, current_annotations(image), width=image.width, height=image.height)
        matched = diff["counts"]["modified"] + diff["counts"]["unchanged"]
        record = ReviewDecision.objects.create(
            image=image, task=task, reviewer=user, annotator_id=image.assignee_id, decision=decision,
            comment=comment.strip(), submitted_version=task.submitted_version, version=image.version,
            objects_added=diff["counts"]["added"], objects_removed=diff["counts"]["removed"],
            objects_modified=diff["counts"]["modified"],
            iou_sum=(diff["mean_iou"] or 0.0) * matched, iou_count=matched, taken_at=task.taken_at,
        )
        ObjectDecision.objects.bulk_create(
            ObjectDecision(decision=record, annotation_uid=v.uid, verdict=v.decision, comment=v.comment.strip())
            for v in objects
        )
        created = [_comment_create(image=image, author=user, comment=c, decision=record) for c in comments]
        # An object's own comment is also a pinned comment, so the annotator sees one list of
        # things to fix and can mark each one resolved.
        created += [
            _comment_create(image=image, author=user, comment=CommentInput(text=v.comment, uid=v.uid), decision=record)
            for v in objects
            if v.comment.strip()
        ]
        task.closed_at = now
        task.save(update_fields=["closed_at"])

        accepts = 0
        if decision == Verdict.REJECT:
            action = workflow.Action.REJECT
        else:
            accepts = accepts_of_current_version(image).values("reviewer").distinct().count()
            # Short of the policy's accepts, back to the queue for the next reviewer; submitted_at
            # is kept so that this accept still counts (a new submission starts a new round).
            action = workflow.Action.ACCEPT if accepts >= image.project.required_accepts else workflow.Action.ACCEPT_PARTLY
        image.save(update_fields=workflow.apply(image, action, user))
        if action == workflow.Action.ACCEPT:
            shape_learn_on_accept(project=image.project)  # the box tool's learned shape, once enough was accepted
    return DecisionResult(decision=record, image=image, accepts=accepts, comments=created)


def comment_add(*, image: Image, user: AbstractBaseUser, comment: CommentInput) -> ReviewComment:
    uids = set(Annotation.objects.filter(image=image).values_list("uid", flat=True))
    _clean_comments(image, [comment], uids)
    return _comment_create(image=image, author=user, comment=comment, decision=None)


@transaction.atomic
def comment_resolve(*, comment: ReviewComment, user: AbstractBaseUser, resolved: bool) -> ReviewComment:
    comment = ReviewComment.objects.select_for_update().get(pk=comment.pk)
    comment.resolved = resolved
    comment.resolved_by = user if resolved else None
    comment.resolved_at = timezone.now() if resolved else None
    comment.save(update_fields=["resolved", "resolved_by", "resolved_at"])
    return comment
