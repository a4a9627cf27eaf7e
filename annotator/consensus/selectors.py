"""Reads on consensus: a person's version of an image, the queue's candidates, an image's versions
with their agreement and merge."""
from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Count, Exists, IntegerField, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce

from annotator.images.models import Image, ImageStatus
from annotator.projects.models import Project
from ml import quality

from .models import LIVE, Replica, ReplicaStatus


def replica_of(image: Image, user: AbstractBaseUser | AnonymousUser) -> Replica | None:
    """The user's version of `image` while it collects versions: what they see and edit there
    instead of the image's own annotations and status (abandoned ones too: saving those is refused)."""
    if not image.replicas_open or not user.is_authenticated:
        return None
    return Replica.objects.filter(image=image, annotator=user).first()


OWN_VERSION = "Several annotators draw each image of this project: take it from your queue to draw your own version."


def own_version_needed(image: Image) -> str | None:
    """Why a new image of a consensus project may not be changed or submitted as itself: its
    first change would make it one person's image, out of the N-version round."""
    if image.status == ImageStatus.NEW and not image.replicas_open and image.project.consensus_annotators > 1:
        return OWN_VERSION
    return None


def replicas_by_image(user: AbstractBaseUser | AnonymousUser, images: Iterable[Image]) -> dict[int, Replica | None]:
    """The user's versions of those of `images` that collect versions, by image id (None: abandoned,
    the image is not theirs any more); one query, none without."""
    ids = [image.pk for image in images if image.replicas_open]
    if not ids or not user.is_authenticated:
        return {}
    rows = Replica.objects.filter(annotator=user, image_id__in=ids).select_related("annotator")
    return {r.image_id: (r if r.status in LIVE else None) for r in rows}


def replicas_as_seen(user: AbstractBaseUser | AnonymousUser, images: Iterable[Image]) -> list[Image]:
    """`images` for a page to show: an image the user draws a version of is a copy carrying their
    version's status and them as its annotator (an abandoned version: new, nobody's), as the API's
    rows show it (copies for display, never saved)."""
    images = list(images)
    replicas = replicas_by_image(user, images)
    shown = []
    for image in images:
        if image.pk in replicas:
            replica = replicas[image.pk]
            image = copy.copy(image)
            image.status = replica.status if replica else ImageStatus.NEW
            image.assignee, image.reviewer = (replica.annotator if replica else None), None
        shown.append(image)
    return shown


def replicas_shown(project: Project, user: AbstractBaseUser | AnonymousUser | None) -> QuerySet[Replica] | None:
    """The user's versions that stand in for their images in lists (at images still collecting
    versions, as replicas_by_image shows them); None when they have none, so that lists filter as before."""
    if user is None or not user.is_authenticated:
        return None
    replicas = Replica.objects.filter(image__project=project, image__replicas_open=True, annotator=user)
    return replicas if replicas.exists() else None


def replica_open(project: Project, user: AbstractBaseUser) -> Replica | None:
    """The user's unfinished version in the project (their queue gives it back first)."""
    return (
        Replica.objects.filter(image__project=project, annotator=user, status=ReplicaStatus.IN_PROGRESS)
        .select_related("image").order_by("claimed_at", "id").first()
    )


def replica_candidates(project: Project, user: AbstractBaseUser) -> QuerySet[Image]:
    """Images the queue may hand `user` as a new version: new, or collecting versions with a free
    slot (fewer than the project's N live ones), nobody's in particular, never one they already
    had a version of. Images already under way first, so that they are finished sooner."""
    live = (
        Replica.objects.filter(image=OuterRef("pk"), status__in=LIVE).order_by()
        .values("image").annotate(n=Count("id")).values("n")
    )
    mine = Replica.objects.filter(image=OuterRef("pk"), annotator=user)
    return (
        Image.objects.filter(project=project, assignee__isnull=True, is_ground_truth=False)
        .filter(Q(status=ImageStatus.NEW) | Q(status=ImageStatus.IN_PROGRESS, replicas_open=True))
        .annotate(live=Coalesce(Subquery(live, output_field=IntegerField()), 0))
        .filter(live__lt=project.consensus_annotators)
        .exclude(Exists(mine))
        .order_by("-replicas_open", "-priority", "id")
    )


def consensus_of(image: Image) -> dict[str, Any]:
    """An image's versions (submitted first, in order), their agreement and the merge they make,
    each merged object with the agreement of the objects it came from."""
    rows = sorted(
        image.replicas.select_related("annotator"),
        key=lambda r: (r.submitted_at is None, r.submitted_at or r.claimed_at, r.pk),  # as the merge reads them
    )
    submitted = [r for r in rows if r.status == ReplicaStatus.SUBMITTED]
    versions = [r.drawn for r in submitted]
    agreement = quality.agreement(versions, image.width, image.height) if len(versions) >= 2 else None
    merged = quality.merge(versions, image.width, image.height) if versions else []
    by_sources = {frozenset(c["uids"]): c for c in (agreement or {}).get("clusters", [])}
    for obj in merged:
        cluster = by_sources.get(frozenset(obj["sources"]))
        obj["agreement"] = cluster["score"] if cluster else None
        obj["mean_iou"] = cluster["mean_iou"] if cluster else None
    return {
        "image": image.pk,
        "annotators": image.project.consensus_annotators,
        "complete": not image.replicas_open and len(submitted) > 0,
        "agreement": image.agreement,
        "versions": [
            {"annotator": r.annotator.get_username(), "status": r.status, "version": r.version,
             "claimed_at": r.claimed_at, "submitted_at": r.submitted_at, "annotations": r.drawn}
            for r in rows
        ],
        "clusters": [
            {key: c[key] for key in ("uids", "found_by", "mean_iou", "label", "label_agreement", "score")}
            for c in (agreement or {}).get("clusters", [])
        ],
        "pairs": [
            {"annotators": [submitted[a].annotator.get_username(), submitted[b].annotator.get_username()],
             "f1": p["f1"], "mean_iou": p["mean_iou"]}
            for p in (agreement or {}).get("pairs", []) for a, b in [p["versions"]]
        ],
        "merge": merged,
    }
