"""Reads on annotations, revisions and predictions."""
from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from annotator.images.models import Image

from .models import Annotation, Prediction, Revision
from .revisions import Chain, RevisionBroken


def annotation_to_dict(annotation: Annotation) -> dict[str, Any]:
    """The API (and revision) form of one object."""
    return {
        "uid": str(annotation.uid),
        "label": annotation.label_id,
        "geometry": annotation.geometry,
        "z_order": annotation.z_order,
        "source": annotation.source,
        "score": annotation.score,
        "model_version": annotation.model_version_id,
        "prediction": annotation.prediction_id,
        "attributes": annotation.attributes,
        "bbox": annotation.bbox,
        "area": annotation.area,
        "author": annotation.author_id,
        "created_at": annotation.created_at.isoformat() if annotation.created_at else None,
        "updated_at": annotation.updated_at.isoformat() if annotation.updated_at else None,
    }


def annotations_of(image: Image) -> QuerySet[Annotation]:
    return Annotation.objects.filter(image=image).order_by("z_order", "id")


def revisions_of(image: Image) -> QuerySet[Revision]:
    return Revision.objects.filter(image=image).select_related("author").order_by("-version")


def revision_objects(revision: Revision) -> list[dict[str, Any]]:
    """The annotation set exactly as it stood at ``revision`` (see annotations.revisions).

    A snapshot is read as it is; a delta is applied, with those between it and the nearest
    snapshot before it, to that snapshot (two queries, at most SNAPSHOT_EVERY rows).
    """
    if revision.annotations is not None:
        return revision.annotations
    rows = Revision.objects.filter(image_id=revision.image_id, version__lt=revision.version)
    base = rows.filter(annotations__isnull=False).order_by("-version").values_list("version", "annotations").first()
    if base is None:
        raise RevisionBroken(f"revision {revision.version} has no snapshot before it")
    chain = Chain()
    chain.read(image_id=revision.image_id, version=base[0], annotations=base[1], delta=None)
    between = rows.filter(version__gt=base[0]).order_by("version").values_list("version", "delta")
    for version, delta in [*between, (revision.version, revision.delta)]:
        objects = chain.read(image_id=revision.image_id, version=version, annotations=None, delta=delta)
        if objects is None:
            raise RevisionBroken(f"revision {revision.version}: revision {version - 1} is missing")
    return objects


def revision_objects_at(image: Image, version: int) -> list[dict[str, Any]] | None:
    """The annotation set of ``image`` at ``version`` (version 0 is the empty set); None: no such revision."""
    if version == 0:
        return []
    revision = Revision.objects.filter(image=image, version=version).first()
    return revision_objects(revision) if revision is not None else None


def predictions_of(image: Image, *, min_score: float = 0.0, model_version: int | None = None) -> QuerySet[Prediction]:
    qs = Prediction.objects.filter(image=image, score__gte=min_score)
    if model_version is not None:
        qs = qs.filter(model_version_id=model_version)
    else:
        # The newest model run on this image replaces older proposals in the editor.
        latest = Prediction.objects.filter(image=image).order_by("-created_at").values_list("model_version_id", flat=True).first()
        qs = qs.filter(model_version_id=latest)
    return qs.order_by("-score")


ANY_VALUE, NO_VALUE = "*", "-"


def attribute_matches(attributes: Any, name: str, value: str) -> bool:
    """The editor's objects-list filter (frontend/src/attributes.ts matchesFilter): `value` is "*" (has a
    value), "-" (has none; false counts as none) or a value compared as words ("yes" for true, any
    member of a list)."""
    current = attributes.get(name) if isinstance(attributes, dict) else None
    empty = current in (None, "", [], False)
    if value == ANY_VALUE:
        return not empty
    if value == NO_VALUE:
        return empty
    want = value.strip().lower()

    def words(v: Any) -> str:
        return ("yes" if v else "no") if isinstance(v, bool) else str(v).lower()

    if isinstance(current, list):
        return any(words(v) == want for v in current)
    if isinstance(current, bool):
        return want in (("yes", "true", "1") if current else ("no", "false", "0"))
    return current is not None and words(current) == want
