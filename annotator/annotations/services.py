"""Writes on annotations: replacing an image's set (optimistic concurrency), revisions, restoring."""
from __future__ import annotations

import hashlib
import json
import math
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from annotator.core.errors import Conflict, DomainError, NotFound
from annotator.images.models import Image, ImageStatus
from ml.geometry import GeometryError, bbox_and_area, validate_geometries

from .models import Annotation, GeometryKind, Prediction, Revision, RevisionAction, Source
from .selectors import annotation_to_dict

_SOURCES = {choice.value for choice in Source}


@dataclass(frozen=True)
class CleanAnnotation:
    """One incoming object after validation, ready to become a row."""

    uid: uuid.UUID
    label_id: int
    geometry: dict[str, Any]
    bbox: list[float]
    area: float
    z_order: int
    source: str
    score: float | None
    model_version_id: int | None
    prediction_id: int | None
    attributes: dict[str, Any]


def annotations_clean(*, image: Image, items: list[dict[str, Any]]) -> list[CleanAnnotation]:
    """Validate an incoming annotation set; DomainError naming the object and the reason otherwise."""
    if not isinstance(items, list):
        raise DomainError("annotations must be a list")
    if not items:
        return []
    label_ids = set(image.project.labels.values_list("pk", flat=True))
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise DomainError(f"annotation {index}: must be an object")
    try:
        # All geometries in one call: vectorised checks keep a 100-object save within a few ms.
        geometries = validate_geometries([item.get("geometry") for item in items], width=image.width, height=image.height)
    except GeometryError as exc:
        index = exc.index if exc.index is not None else 0
        uid = items[index].get("uid") if index < len(items) else None
        raise DomainError(f"annotation {index}{f' ({uid})' if uid else ''}: {exc}") from None
    cleaned: list[CleanAnnotation] = []
    seen: set[uuid.UUID] = set()
    prediction_ids: set[int] = set()
    for index, (item, geometry) in enumerate(zip(items, geometries)):
        where = f"annotation {index}"
        try:
            uid = uuid.UUID(str(item["uid"])) if item.get("uid") else uuid.uuid4()
        except ValueError:
            raise DomainError(f"{where}: uid {item.get('uid')!r} is not a UUID") from None
        where = f"annotation {index} ({uid})"
        if uid in seen:
            raise DomainError(f"{where}: the same uid appears twice")
        seen.add(uid)
        label = item.get("label")
        if not isinstance(label, int) or isinstance(label, bool) or label not in label_ids:
            raise DomainError(f"{where}: label {label!r} is not a label of this project")
        bbox, area = bbox_and_area(geometry, width=image.width, height=image.height)
        z_order = item.get("z_order", 0)
        if not isinstance(z_order, int) or isinstance(z_order, bool):
            raise DomainError(f"{where}: z_order must be an integer")
        source = item.get("source", Source.MANUAL)
        if source not in _SOURCES:
            raise DomainError(f"{where}: source must be one of {', '.join(sorted(_SOURCES))}")
        score = item.get("score")
        if score is not None and (
            not isinstance(score, (int, float)) or isinstance(score, bool) or not math.isfinite(score) or not 0 <= score <= 1
        ):
            raise DomainError(f"{where}: score must be a number between 0 and 1")
        attributes = item.get("attributes") or {}
        if not isinstance(attributes, dict):
            raise DomainError(f"{where}: attributes must be an object")
        prediction = item.get("prediction")
        if prediction is not None:
            if not isinstance(prediction, int) or isinstance(prediction, bool):
                raise DomainError(f"{where}: prediction must be a prediction id")
            prediction_ids.add(prediction)
        model_version = item.get("model_version")
        if model_version is not None and (not isinstance(model_version, int) or isinstance(model_version, bool)):
            raise DomainError(f"{where}: model_version must be a model version id")
        cleaned.append(
            CleanAnnotation(
                uid=uid, label_id=label, geometry=geometry, bbox=bbox, area=area, z_order=z_order, source=source,
                score=float(score) if score is not None else None, model_version_id=model_version,
                prediction_id=prediction, attributes=attributes,
            )
        )
    if prediction_ids:
        known = set(Prediction.objects.filter(image=image, pk__in=prediction_ids).values_list("pk", flat=True))
        missing = prediction_ids - known
        if missing:
            raise DomainError(f"prediction {sorted(missing)[0]} is not a prediction of this image")
    model_ids = {c.model_version_id for c in cleaned if c.model_version_id is not None}
    if model_ids:
        from annotator.learning.models import ModelVersion

        known_models = set(ModelVersion.objects.filter(project=image.project_id, pk__in=model_ids).values_list("pk", flat=True))
        if model_ids - known_models:
            raise DomainError(f"model version {sorted(model_ids - known_models)[0]} is not a model of this project")
    return cleaned


def annotations_replace(
    *,
    image: Image,
    user: AbstractBaseUser | None,
    base_version: int,
    items: list[dict[str, Any]],
    action: str = RevisionAction.SAVE,
    restored_from: int | None = None,
) -> tuple[Image, list[Annotation]]:
    """Replace the whole annotation set of an image, if nobody saved since `base_version`.

    Raises Conflict (409) carrying the current version when someone else saved in between: the
    caller decides whose copy wins; nothing is ever overwritten silently. Every save is kept as a
    Revision, so any earlier state can be restored.
    """
    cleaned = annotations_clean(image=image, items=items)
    with transaction.atomic():
        locked = Image.objects.select_for_update().get(pk=image.pk)
        if locked.version != base_version:
            raise Conflict(
                f"Someone else saved this image (version {locked.version}) after the version {base_version} you edited.",
                extra={
                    "current_version": locked.version,
                    "updated_by": locked.annotations_updated_by.username if locked.annotations_updated_by else None,
                    "updated_at": locked.annotations_updated_at.isoformat() if locked.annotations_updated_at else None,
                },
            )
        previous = {
            row[0]: _Previous(*row[1:])
            for row in Annotation.objects.filter(image=locked).values_list("uid", "digest", "author_id", "created_at", "updated_at")
        }
        now = timezone.now()
        rows = []
        changed = 0
        for clean in cleaned:
            before = previous.get(clean.uid)
            row = _row(clean, image=locked, user=user, before=before, now=now)
            if before is not None and before.digest != row.digest:
                changed += 1
            rows.append(row)
        Annotation.objects.filter(image=locked).delete()
        Annotation.objects.bulk_create(rows)
        incoming = {c.uid for c in cleaned}
        summary = {
            "added": len(incoming - previous.keys()),
            "removed": len(previous.keys() - incoming),
            "changed": changed,
        }
        locked.version += 1
        locked.annotations_updated_by = user if user and user.is_authenticated else None
        locked.annotations_updated_at = now
        if locked.status == ImageStatus.NEW and action == RevisionAction.SAVE:
            locked.status = ImageStatus.IN_PROGRESS
            if locked.assignee_id is None and user is not None:
                locked.assignee = user
        locked.save()
        Revision.objects.create(
            image=locked,
            version=locked.version,
            action=action,
            author=locked.annotations_updated_by,
            annotations=[annotation_to_dict(row) for row in rows],
            object_count=len(rows),
            restored_from=restored_from,
            summary=summary,
        )
    return locked, rows


@dataclass(frozen=True)
class _Previous:
    digest: str
    author_id: int | None
    created_at: datetime
    updated_at: datetime


def _digest(clean: CleanAnnotation) -> str:
    content = json.dumps([clean.label_id, clean.geometry, clean.z_order, clean.attributes], sort_keys=True, separators=(",", ":"))
    return hashlib.sha1(content.encode()).hexdigest()


def _row(clean: CleanAnnotation, *, image: Image, user: AbstractBaseUser | None, before: _Previous | None, now: datetime) -> Annotation:
    is_mask = clean.geometry["type"] == "mask"
    digest = _digest(clean)
    author_id = user.pk if user is not None and user.is_authenticated else None
    return Annotation(
        uid=clean.uid,
        image=image,
        label_id=clean.label_id,
        kind=GeometryKind.MASK if is_mask else GeometryKind.POLYGONS,
        polygons=None if is_mask else clean.geometry["polygons"],
        rle=clean.geometry["rle"] if is_mask else None,
        bbox=clean.bbox,
        area=clean.area,
        z_order=clean.z_order,
        source=clean.source,
        score=clean.score,
        model_version_id=clean.model_version_id,
        prediction_id=clean.prediction_id,
        attributes=clean.attributes,
        digest=digest,
        # The author is whoever created the object; later edits are recorded in the revisions.
        author_id=before.author_id if before is not None else author_id,
        created_at=before.created_at if before is not None else now,
        updated_at=before.updated_at if before is not None and before.digest == digest else now,
    )


def revision_restore(*, image: Image, version: int, user: AbstractBaseUser, base_version: int) -> tuple[Image, list[Annotation]]:
    """Make an earlier revision the current state again (as a new revision; nothing is dropped)."""
    if version == 0:
        items: list[dict[str, Any]] = []
    else:
        revision = Revision.objects.filter(image=image, version=version).first()
        if revision is None:
            raise NotFound(f"Revision {version} does not exist for this image.")
        items = revision.annotations
    return annotations_replace(
        image=image, user=user, base_version=base_version, items=items,
        action=RevisionAction.RESTORE, restored_from=version,
    )
