"""Writes on consensus: handing out versions from the queue, saving, submitting and abandoning
them, and merging all N into the image's annotations when the last one is in."""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from annotator.annotations.copies import copy_apply, copy_save
from annotator.annotations.models import RevisionAction
from annotator.annotations.services import ObjectRepair, annotations_replace
from annotator.core.errors import Conflict
from annotator.images import workflow
from annotator.images.models import Image, ImageStatus
from annotator.projects.models import Project
from ml import quality

from .models import LIVE, Replica, ReplicaStatus
from .selectors import replica_candidates

ABANDONED = "Your time on this image ran out (the project gives {hours} h); it went to someone else."


def _apply(replica: Replica, action: workflow.Action, user: AbstractBaseUser, project: Project | int) -> None:
    """The workflow's decision on the version, as on the image it stands for (WorkflowError when refused)."""
    if replica.status == ReplicaStatus.ABANDONED:
        hours = replica.image.project.consensus_timeout_hours
        raise Conflict(ABANDONED.format(hours=hours), extra={"code": "abandoned"})
    copy_apply(replica, action, user, project)


def replicas_expire(*, project: Project, now: datetime | None = None) -> int:
    """Abandon the project's versions not submitted within its timeout: each frees a slot of its
    image for somebody else (the workflow's requeue_replica). Returns how many."""
    deadline = (now or timezone.now()) - timedelta(hours=project.consensus_timeout_hours)
    late = Replica.objects.filter(image__project=project, status=ReplicaStatus.IN_PROGRESS, claimed_at__lt=deadline)
    count = 0
    for replica_id, image_id in late.values_list("id", "image_id"):
        with transaction.atomic():
            image = Image.objects.select_for_update().get(pk=image_id)
            workflow.apply(image, workflow.Action.REQUEUE_REPLICA, None)  # the system: nothing of the image changes
            count += Replica.objects.filter(pk=replica_id, status=ReplicaStatus.IN_PROGRESS).update(
                status=ReplicaStatus.ABANDONED, updated_at=timezone.now(),
            )
    return count


def replica_serve(*, project: Project, user: AbstractBaseUser) -> Replica | None:
    """Hand `user` a new version of an image that needs more (the caller holds the user's queue
    lock); None when there is none. Late versions are abandoned first, so their slots count as free."""
    replicas_expire(project=project)
    actor = workflow.Actor.of(user, project)
    for _ in range(10):
        with transaction.atomic():
            # The image's row lock makes the count of its versions and the new one one step:
            # two annotators never take the same last slot. An image locked by someone taking one
            # of its slots may have more: when every candidate is locked, wait for the first.
            candidates = replica_candidates(project, user)
            candidate = (
                candidates.select_for_update(skip_locked=True, of=("self",)).first()
                or candidates.select_for_update(of=("self",)).first()
            )
            if candidate is None:
                return None
            image = Image.objects.select_for_update().get(pk=candidate.pk)
            if image.replicas.filter(status__in=LIVE).count() >= project.consensus_annotators:
                continue  # taken meanwhile (SQLite has no row locks to skip)
            fields = workflow.apply(image, workflow.Action.CLAIM_REPLICA, actor)
            image.save(update_fields=fields)
            replica = Replica(image=image, annotator=user, status=ImageStatus.NEW)
            _apply(replica, workflow.Action.CLAIM, user, project)  # as the queue takes a new image
            replica.save()
            return replica
    return None


def replica_save(
    *, replica: Replica, user: AbstractBaseUser, base_version: int, items: list[dict[str, Any]],
) -> tuple[Replica, list[dict[str, Any]], list[ObjectRepair]]:
    """Replace the version's objects, if it was not saved since `base_version` (as an image's save);
    checked and repaired by the same rules as the image's annotations."""
    return copy_save(replica, user=user, base_version=base_version, items=items, apply=_apply)


@transaction.atomic
def replica_release(*, replica: Replica, user: AbstractBaseUser) -> None:
    """Give an unfinished version back, as an image is given back to the queue: it is dropped and
    its slot is free (for anybody, them included)."""
    replica = Replica.objects.select_for_update(of=("self",)).select_related("image__project").get(pk=replica.pk)
    _apply(replica, workflow.Action.RELEASE, user, replica.image.project)
    replica.delete()


@transaction.atomic
def replica_submit(*, replica: Replica, user: AbstractBaseUser) -> Replica:
    """Submit the version; the last of the image's N merges them all (consensus_complete)."""
    image = Image.objects.select_for_update().select_related("project").get(pk=replica.image_id)  # the image first: one completion
    replica = Replica.objects.select_for_update(of=("self",)).select_related("image__project").get(pk=replica.pk)
    _apply(replica, workflow.Action.SUBMIT, user, image.project)
    replica.save()
    if image.replicas.filter(status=ReplicaStatus.SUBMITTED).count() >= image.project.consensus_annotators:
        consensus_complete(image=image, user=user)
    return replica


@transaction.atomic
def consensus_complete(*, image: Image, user: AbstractBaseUser | None) -> Image:
    """All versions are in: their merge (ml.quality.merge, a strict majority of annotators per
    object, each mask by pixel majority) becomes the image's annotations as a "consensus"
    revision, their agreement (ml.quality.agreement) is stored on the image, and the image goes
    to review (the workflow's consensus_complete)."""
    image = Image.objects.select_for_update().select_related("project").get(pk=image.pk)
    versions = [r.drawn for r in image.replicas.filter(status=ReplicaStatus.SUBMITTED).order_by("submitted_at", "id")]
    merged = quality.merge(versions, image.width, image.height)
    items = [{"label": m["label"], "geometry": m["geometry"]} for m in merged]
    annotations_replace(image=image, user=None, base_version=image.version, items=items, action=RevisionAction.CONSENSUS)
    image.refresh_from_db()
    image.agreement = quality.agreement(versions, image.width, image.height)["score"] if len(versions) >= 2 else 1.0
    fields = workflow.apply(image, workflow.Action.CONSENSUS_COMPLETE, user)
    image.save(update_fields=[*fields, "agreement"])
    return image
