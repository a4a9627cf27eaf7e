"""Writes on ground truth: marking and unmarking, serving an attempt from the queue, saving and
submitting it (scored against the truth with ml.quality)."""
from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from annotator.annotations.copies import copy_apply, copy_save
from annotator.annotations.selectors import annotation_to_dict, annotations_of
from annotator.annotations.services import ObjectRepair
from annotator.images import workflow
from annotator.images.models import Image, ImageStatus
from annotator.projects.models import Project
from ml import quality

from .models import GroundTruth, GroundTruthAttempt
from .selectors import ground_truth_candidates


@transaction.atomic
def ground_truth_mark(*, image: Image, user: AbstractBaseUser) -> GroundTruth:
    """Make an accepted image ground truth: its objects are frozen as they are now."""
    image = Image.objects.select_for_update().get(pk=image.pk)
    fields = workflow.apply(image, workflow.Action.MARK_GROUND_TRUTH, user)
    image.save(update_fields=fields)
    GroundTruth.objects.filter(image=image).delete()  # left by nothing, but the row is the image's one truth
    return GroundTruth.objects.create(
        image=image, truth=[annotation_to_dict(a) for a in annotations_of(image)], version=image.version,
        annotator_id=image.assignee_id, reviewer_id=image.reviewer_id, marked_by=user,
    )


@transaction.atomic
def ground_truth_unmark(*, image: Image, user: AbstractBaseUser) -> None:
    """An ordinary accepted image again. Unfinished attempts go (nothing to score them against);
    scored ones stay in the report."""
    image = Image.objects.select_for_update().get(pk=image.pk)
    fields = workflow.apply(image, workflow.Action.UNMARK_GROUND_TRUTH, user)
    image.save(update_fields=fields)
    GroundTruthAttempt.objects.filter(image=image, status=ImageStatus.IN_PROGRESS).delete()
    GroundTruth.objects.filter(image=image).delete()


def ground_truth_serve(*, project: Project, user: AbstractBaseUser) -> GroundTruthAttempt | None:
    """Hand `user` a ground-truth image they did not author and never tried, as a new attempt
    (the caller holds the user's queue lock); None when there is none."""
    image = ground_truth_candidates(project, user).first()
    if image is None:
        return None
    attempt = GroundTruthAttempt(image=image, annotator=user, status=ImageStatus.NEW)
    _apply(attempt, workflow.Action.CLAIM, user, project)  # as the queue takes a new image
    attempt.save()
    return attempt


_apply = copy_apply


def attempt_save(
    *, attempt: GroundTruthAttempt, user: AbstractBaseUser, base_version: int, items: list[dict[str, Any]],
) -> tuple[GroundTruthAttempt, list[dict[str, Any]], list[ObjectRepair]]:
    """Replace the attempt's objects, if it was not saved since `base_version` (as an image's save);
    checked and repaired by the same rules as the image's annotations."""
    return copy_save(attempt, user=user, base_version=base_version, items=items)


@transaction.atomic
def attempt_release(*, attempt: GroundTruthAttempt, user: AbstractBaseUser) -> None:
    """Give an unfinished attempt back, as an image is given back to the queue: it is dropped."""
    attempt = GroundTruthAttempt.objects.select_for_update(of=("self",)).select_related("image__project").get(pk=attempt.pk)
    _apply(attempt, workflow.Action.RELEASE, user, attempt.image.project)
    attempt.delete()


@transaction.atomic
def attempt_submit(*, attempt: GroundTruthAttempt, user: AbstractBaseUser) -> GroundTruthAttempt:
    """Submit the attempt: scored against the truth (ml.quality.score), never reviewed, never exported."""
    attempt = GroundTruthAttempt.objects.select_for_update(of=("self",)).select_related("image__project", "image__ground_truth").get(pk=attempt.pk)
    _apply(attempt, workflow.Action.SUBMIT, user, attempt.image.project)
    image = attempt.image
    scores = quality.score(image.ground_truth.truth, attempt.drawn, image.width, image.height)
    scores["matches"] = [list(match) for match in scores["matches"]]
    attempt.scores = scores
    attempt.save()
    return attempt
