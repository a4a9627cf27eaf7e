"""Writes on annotations: replacing an image's set (optimistic concurrency), revisions, restoring."""
from __future__ import annotations

import dataclasses
import hashlib
import math
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple, TypedDict

import orjson
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.db.models import BooleanField
from django.db.models.expressions import RawSQL
from django.utils import timezone

from annotator.core.db import rows_delete_returning, rows_insert
from annotator.core.errors import Conflict, DomainError, NotFound
from annotator.images import workflow
from annotator.images.models import Image
from ml.geometry import GeometryError, Repair, bbox_and_area, normalize_geometries, vertex_count

from .attributes import attributes_clean, label_schema, label_schemas, z_order_clean
from .models import Annotation, GeometryKind, Prediction, Revision, RevisionAction, Source
from .revisions import Delta, snapshot_due
from .selectors import annotation_to_dict, revision_objects

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
    digest: str
    # What normalisation changed in the geometry as received (None: nothing).
    repair: Repair | None = None


class Unchanged(NamedTuple):
    """An incoming object with the same content (digest) as the stored object with its uid: it was
    checked when that was saved, and there is nothing to check or write."""

    uid: uuid.UUID


class _Stored(NamedTuple):
    """What a save reads of each stored object: enough to tell it unchanged. What a rewrite keeps
    of it (its author and creation time) comes back from the DELETE of the rows rewritten: reading
    a timestamp for each of 100 objects cost more than the rest of the read."""

    uid: uuid.UUID
    digest: str
    prediction_id: int | None
    model_version_id: int | None
    vertices: int


class _Kept(NamedTuple):
    """What a rewritten object keeps of the row it replaces."""

    author_id: int | None
    created_at: datetime


class ObjectRepair(TypedDict):
    """What a save changed in one object it received (reported back so the editor can show it)."""

    uid: str
    index: int
    changes: list[str]
    message: str
    geometry: dict[str, Any]


class SavedAnnotations(NamedTuple):
    """The outcome of replacing an image's set: the image (new version), its rows (in the order
    saved; empty when the caller asked for no echo), the repairs."""

    image: Image
    rows: list[Annotation]
    repaired: list[ObjectRepair]


def _object_error(index: int, uid: uuid.UUID | None, reason: str, detail: str) -> DomainError:
    """A 400 that names the one object at fault, so a client can hold it back and save the rest."""
    return DomainError(
        f"annotation {index}{f' ({uid})' if uid else ''}: {detail}",
        extra={"object": {"index": index, "uid": str(uid) if uid else None, "reason": reason}},
    )


def _digest(label: Any, geometry: Any, z_order: Any, attributes: Any, source: Any, score: Any, model_version: Any, prediction: Any) -> str:
    """Hash of everything a person can change about an object (tells which objects a save changed)."""
    try:
        content = orjson.dumps(
            [label, geometry, z_order, attributes, source, score, model_version, prediction], option=orjson.OPT_SORT_KEYS
        )
    except (TypeError, orjson.JSONEncodeError):
        return ""  # not serialisable as given: validation will say why
    return hashlib.sha1(content).hexdigest()


def annotations_clean(
    *,
    image: Image,
    items: list[dict[str, Any]],
    stored: Mapping[uuid.UUID, str] | None = None,
    simplify: bool = False,
    schemas: Mapping[int, dict[str, Any]] | None = None,
    other_vertices: int = 0,
) -> list[CleanAnnotation | Unchanged]:
    """Normalise and validate an incoming annotation set; DomainError naming the object otherwise.

    Geometries go through ml.geometry.normalize_geometries: what people and tools really produce
    (a vertex a hair outside, an outline crossing itself) is repaired and reported in each
    CleanAnnotation's ``repair``; only garbage is refused, as a 400 naming the one object
    (``object`` in the body: index, uid, reason in plain words).  Vertex limits come from the
    settings; ``simplify`` (imports) simplifies an object over the limit instead of refusing it.

    Objects identical to the stored ones (`stored`: their digests by uid) were normalised when they
    were saved and are not checked again (they come back as `Unchanged`): an autosave after one
    edit checks one object. Without `stored`, every object comes back as a CleanAnnotation.
    `other_vertices`: points of the image's objects that are kept and not in `items` (a partial
    save), counted against the per-image limit with those sent.
    """
    if not isinstance(items, list):
        raise DomainError("annotations must be a list")
    if not items:
        return []
    stored = stored or {}
    # Read fresh on every call, unless the caller read them for many images at once (an import's
    # chunk: one query, not one per image); the schemas come with them.
    label_ids = set(schemas if schemas is not None else label_schemas(image.project))
    uids: list[uuid.UUID] = []
    digests: list[str] = []
    seen: set[uuid.UUID] = set()
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise _object_error(index, None, "it is not an object", "must be an object")
        try:
            uid = uuid.UUID(str(item["uid"])) if item.get("uid") else uuid.uuid4()
        except ValueError:
            raise _object_error(index, None, "its id is not a UUID", f"uid {item.get('uid')!r} is not a UUID") from None
        if uid in seen:
            raise _object_error(index, uid, "it appears twice", "the same uid appears twice")
        seen.add(uid)
        uids.append(uid)
        digests.append(
            _digest(
                item.get("label"), item.get("geometry"), item.get("z_order", 0), item.get("attributes") or {},
                item.get("source", Source.MANUAL), item.get("score"), item.get("model_version"), item.get("prediction"),
            )
        )
    _check_image_vertices(items, other_vertices)
    unchanged = [bool(digest) and stored.get(uid) == digest for uid, digest in zip(uids, digests)]
    to_check = [index for index, same in enumerate(unchanged) if not same]
    try:
        # All geometries in one call: vectorised checks keep a 100-object save within a few ms.
        checked, repairs = normalize_geometries(
            [items[i].get("geometry") for i in to_check], width=image.width, height=image.height,
            max_vertices=settings.ANNOTATOR_MAX_VERTICES_PER_OBJECT, simplify=simplify,
        )
    except GeometryError as exc:
        index = to_check[exc.index] if exc.index is not None else to_check[0]
        raise _object_error(index, uids[index], exc.reason, str(exc)) from None
    geometries: dict[int, tuple[dict[str, Any], Repair | None]] = {
        i: (geometry, repair) for i, geometry, repair in zip(to_check, checked, repairs)
    }

    cleaned: list[CleanAnnotation | Unchanged] = []
    prediction_ids: set[int] = set()
    model_ids: set[int] = set()
    for index, item in enumerate(items):
        uid = uids[index]
        if unchanged[index]:
            cleaned.append(Unchanged(uid))
            continue
        geometry, repair = geometries[index]
        try:
            clean = _clean_one(item, index=index, uid=uid, geometry=geometry, image=image, label_ids=label_ids)
        except DomainError as exc:
            if "object" not in exc.extra:
                exc.extra["object"] = {"index": index, "uid": str(uid), "reason": exc.detail.split(": ", 1)[-1]}
            raise
        if repair is not None:
            clean = dataclasses.replace(clean, repair=repair)
        cleaned.append(clean)
        if clean.prediction_id is not None:
            prediction_ids.add(clean.prediction_id)
        if clean.model_version_id is not None:
            model_ids.add(clean.model_version_id)
    if prediction_ids:
        known = set(Prediction.objects.filter(image=image, pk__in=prediction_ids).values_list("pk", flat=True))
        missing = prediction_ids - known
        if missing:
            raise DomainError(f"prediction {sorted(missing)[0]} is not a prediction of this image")
    if model_ids:
        from annotator.learning.models import ModelVersion

        known_models = set(ModelVersion.objects.filter(project=image.project_id, pk__in=model_ids).values_list("pk", flat=True))
        if model_ids - known_models:
            raise DomainError(f"model version {sorted(model_ids - known_models)[0]} is not a model of this project")
    return cleaned


def _check_image_vertices(items: list[dict[str, Any]], other_vertices: int = 0) -> None:
    """The per-image vertex limit (counted on what was sent, plus `other_vertices` kept: no geometry is parsed for it)."""
    limit = settings.ANNOTATOR_MAX_VERTICES_PER_IMAGE
    total = other_vertices
    for item in items:
        geometry = item.get("geometry")
        if isinstance(geometry, dict) and geometry.get("type") == "polygons":
            try:
                total += vertex_count(geometry)
            except (TypeError, KeyError, AttributeError):
                continue  # malformed: normalisation says why, naming the object
    if total > limit:
        raise DomainError(f"the image's objects have {total:,} points in all; the limit is {limit:,} per image")


def _clean_one(
    item: dict[str, Any], *, index: int, uid: uuid.UUID, geometry: dict[str, Any], image: Image, label_ids: set[int]
) -> CleanAnnotation:
    where = f"annotation {index} ({uid})"
    label = item.get("label")
    if not isinstance(label, int) or isinstance(label, bool) or label not in label_ids:
        raise DomainError(f"{where}: label {label!r} is not a label of this project")
    bbox, area = bbox_and_area(geometry, width=image.width, height=image.height)
    z_order = z_order_clean(item.get("z_order", 0), where=where)
    source = item.get("source", Source.MANUAL)
    if source not in _SOURCES:
        raise DomainError(f"{where}: source must be one of {', '.join(sorted(_SOURCES))}")
    score = item.get("score")
    if score is not None and (
        not isinstance(score, (int, float)) or isinstance(score, bool) or not math.isfinite(score) or not 0 <= score <= 1
    ):
        raise DomainError(f"{where}: score must be a number between 0 and 1")
    score = float(score) if score is not None else None
    attributes = attributes_clean(item.get("attributes") or {}, schema=label_schema(image.project, label), where=where)
    prediction = item.get("prediction")
    if prediction is not None and (not isinstance(prediction, int) or isinstance(prediction, bool)):
        raise DomainError(f"{where}: prediction must be a prediction id")
    model_version = item.get("model_version")
    if model_version is not None and (not isinstance(model_version, int) or isinstance(model_version, bool)):
        raise DomainError(f"{where}: model_version must be a model version id")
    return CleanAnnotation(
        uid=uid, label_id=label, geometry=geometry, bbox=bbox, area=area, z_order=z_order, source=source,
        score=score, model_version_id=model_version, prediction_id=prediction, attributes=attributes,
        digest=_digest(label, geometry, z_order, attributes, source, score, model_version, prediction),
    )


def annotations_clean_drawn(
    *, image: Image, items: list[dict[str, Any]], author: AbstractBaseUser,
) -> tuple[list[dict[str, Any]], list[ObjectRepair]]:
    """An incoming set cleaned by annotations_clean, as the annotations API gives objects, and
    the repairs made: for a person's own copy of an image that is not its annotations (a
    ground-truth attempt, a consensus version), kept as JSON rather than Annotation rows."""
    cleaned = annotations_clean(image=image, items=items)
    now = timezone.now().isoformat()
    drawn = [
        {"uid": str(c.uid), "label": c.label_id, "geometry": c.geometry, "z_order": c.z_order, "source": c.source,
         "score": c.score, "model_version": c.model_version_id, "prediction": c.prediction_id,
         "attributes": c.attributes, "bbox": c.bbox, "area": c.area, "author": author.pk,
         "created_at": now, "updated_at": now}
        for c in cleaned
    ]
    repaired: list[ObjectRepair] = [
        {"uid": str(c.uid), "index": index, **c.repair, "geometry": c.geometry}  # type: ignore[typeddict-item]
        for index, c in enumerate(cleaned) if c.repair is not None
    ]
    return drawn, repaired


def annotations_replace(
    *,
    image: Image,
    user: AbstractBaseUser | None,
    base_version: int,
    items: list[dict[str, Any]],
    action: str = RevisionAction.SAVE,
    restored_from: int | None = None,
    simplify: bool = False,
    echo: bool = True,
) -> SavedAnnotations:
    """Replace the whole annotation set of an image, if nobody saved since `base_version`.

    A save goes through the image workflow (images.workflow, action "save"): it is refused to
    whoever may not change the image now, an annotator who saves an image nobody holds takes it,
    and a new image is in progress from then on. `simplify`: see annotations_clean (imports).
    The result lists the objects whose geometry was repaired on the way in, with the geometry
    as stored. `echo=False`: the caller needs no rows back (an autosave asking for
    `Prefer: return=minimal`), and the unchanged objects are then not read at all, unless the
    revision is a snapshot.

    Raises Conflict (409) carrying the current version when someone else saved in between: the
    caller decides whose copy wins; nothing is ever overwritten silently. Every save is kept as a
    Revision, so any earlier state can be restored. Only new and changed objects are written.
    """
    with transaction.atomic():
        locked, stored = _locked_with_stored(image, base_version)
        cleaned = annotations_clean(
            image=locked, items=items, stored={uid: row.digest for uid, row in stored.items()}, simplify=simplify,
        )
        sent = {c.uid: item for c, item in zip(cleaned, items)}
        return _write(locked, stored, cleaned, sent, user=user, action=action, restored_from=restored_from, echo=echo)


class PatchMismatch(DomainError):
    """A patch that does not fit the stored set (400, ``code: patch_mismatch``): the client's idea of
    the set went wrong; the whole set (a PUT) says the same without relying on it."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail, extra={"code": "patch_mismatch"})


def annotations_patch(
    *,
    image: Image,
    user: AbstractBaseUser | None,
    base_version: int,
    changed: list[dict[str, Any]],
    removed: list[Any],
    order: list[Any] | None = None,
    echo: bool = True,
) -> SavedAnnotations:
    """Change some objects of an image's set, if nobody saved since `base_version`.

    What an autosave after one edit sends: the objects added or changed (`changed`, each whole),
    the uids of those deleted (`removed`), and optionally `order` (see patch_order). The outcome
    is exactly that of annotations_replace with the whole set: the same checks on what was sent
    (repairs, refusals naming the object by its index in `changed`), the same workflow decision,
    409 and revision; the objects not sent are neither read whole nor checked again.
    """
    resent = [uid for uid in _named(changed) if uid]
    gone = set(_uids(removed, "removed"))
    with transaction.atomic():
        locked, stored = _locked_with_stored(image, base_version, ordered=order is None)
        uids = patch_order(list(stored), resent, gone, order)
        kept = set(resent)
        cleaned = annotations_clean(
            image=locked, items=changed, stored={uid: row.digest for uid, row in stored.items()},
            # The per-image vertex limit counts the objects kept as they are too.
            other_vertices=sum(row.vertices for uid, row in stored.items() if uid not in gone and uid not in kept),
        )
        by_uid = {c.uid: c for c in cleaned}
        # Objects sent without a uid are new: they come last, in the order sent.
        uids += [c.uid for c in cleaned if c.uid not in kept]
        whole = [by_uid.get(uid) or Unchanged(uid) for uid in uids]
        sent = {c.uid: item for c, item in zip(cleaned, changed)}
        return _write(locked, stored, whole, sent, user=user, action=RevisionAction.SAVE, restored_from=None, echo=echo)


def patch_order(stored: list[uuid.UUID], sent: list[uuid.UUID], removed: set[uuid.UUID], order: list[Any] | None) -> list[uuid.UUID]:
    """The uids of a set after a patch, in order; PatchMismatch (400) when the patch does not fit the set.

    `stored`: the set's uids in order; `sent`: those of the changed objects that name one (new or
    not); `removed`: uids to delete, each stored and not sent. `order`: the uids of the whole set
    as the client holds it, every stored object not removed and every object sent with a uid;
    without it, the stored objects keep their order and the new ones follow."""
    if not isinstance(order, (list, type(None))):
        raise PatchMismatch("order must be a list of object ids")
    known = set(stored)
    if overlap := removed & set(sent):
        raise PatchMismatch(f"object {min(overlap)} is both changed and removed")
    if unknown := removed - known:
        raise PatchMismatch(f"object {min(unknown)} cannot be removed: this image has no such object")
    if order is None:
        return [uid for uid in stored if uid not in removed] + [uid for uid in sent if uid not in known]
    uids = _uids(order, "order")
    expected = (known - removed) | set(sent)
    if missing := expected - set(uids):
        raise PatchMismatch(f"order leaves out object {min(missing)}: list it, or remove it")
    if extra := set(uids) - expected:
        raise PatchMismatch(f"order lists object {min(extra)}, which is neither sent nor stored")
    return uids


def patch_objects(objects: list[dict[str, Any]], *, changed: list[dict[str, Any]], removed: list[Any], order: list[Any] | None) -> list[dict[str, Any]]:
    """A whole set of objects (API form) after a patch, for what is saved whole (a person's own copy)."""
    by_uid = {uuid.UUID(str(obj["uid"])): obj for obj in objects}
    named = _named(changed)
    uids = patch_order(list(by_uid), [uid for uid in named if uid], set(_uids(removed, "removed")), order)
    by_uid.update((uid, item) for uid, item in zip(named, changed) if uid)
    return [by_uid[uid] for uid in uids] + [item for uid, item in zip(named, changed) if not uid]


def _uids(values: Any, name: str) -> list[uuid.UUID]:
    """The uids of a patch's `removed` or `order` list; 400 on a bad or repeated one."""
    if not isinstance(values, list):
        raise PatchMismatch(f"{name} must be a list of object ids")
    uids: dict[uuid.UUID, None] = {}
    for value in values:
        try:
            uid = uuid.UUID(str(value))
        except ValueError:
            raise PatchMismatch(f"{name}: {value!r} is not an object id (a UUID)") from None
        if uid in uids:
            raise PatchMismatch(f"{name}: object {uid} appears twice")
        uids[uid] = None
    return list(uids)


def _named(items: Any) -> list[uuid.UUID | None]:
    """The uid each object of a patch names, None for a new one (annotations_clean refuses a malformed one, naming it)."""
    if not isinstance(items, list):
        raise PatchMismatch("changed must be a list of objects")
    uids: list[uuid.UUID | None] = []
    for item in items:
        try:
            uids.append(uuid.UUID(str(item["uid"])) if isinstance(item, dict) and item.get("uid") else None)
        except ValueError:
            uids.append(None)
    return uids


def _has_previous_revision() -> RawSQL:
    """Whether the image row's revision (its current version) exists, as a column of the image.

    The same test as ``Exists(Revision.objects.filter(image=OuterRef("pk"), version=OuterRef("version")))``,
    which cost the ORM more than a millisecond to build and compile on every save.
    """
    quote = connection.ops.quote_name
    image, revision = quote(Image._meta.db_table), quote(Revision._meta.db_table)
    image_id, version = quote(Revision._meta.get_field("image").column), quote(Revision._meta.get_field("version").column)
    return RawSQL(
        f"EXISTS (SELECT 1 FROM {revision} WHERE {revision}.{image_id} = {image}.{quote(Image._meta.pk.column)}"
        f" AND {revision}.{version} = {image}.{quote(Image._meta.get_field('version').column)})",
        (), output_field=BooleanField(),
    )


def _locked_with_stored(image: Image, base_version: int, *, ordered: bool = False) -> tuple[Image, dict[uuid.UUID, _Stored]]:
    """The image locked for a save based on `base_version` (409 when someone saved since), and
    what a save reads of its stored objects (in their reading order with `ordered`)."""
    # Only the image is locked and read again. Its project (labels, schemas and the workflow's
    # state are read through it) is the caller's when the caller read it with the image (an API
    # request, a moment before: joining it again cost a millisecond a save), else it comes along.
    # `has_previous`: whether revision N exists, so that revision N+1 may be a delta against it.
    rows = Image.objects.select_for_update(of=("self",)).annotate(has_previous=_has_previous_revision())
    project_held = Image.project.is_cached(image)
    locked = rows.get(pk=image.pk) if project_held else rows.select_related("project").get(pk=image.pk)
    if project_held:
        locked.project = image.project
    if locked.version != base_version:
        raise Conflict(
            f"Someone else saved this image (version {locked.version}) after the version {base_version} you edited.",
            extra={
                "current_version": locked.version,
                "updated_by": locked.annotations_updated_by.username if locked.annotations_updated_by else None,
                "updated_at": locked.annotations_updated_at.isoformat() if locked.annotations_updated_at else None,
            },
        )
    # Only what tells an object unchanged (its digest) and what a rewrite keeps (author,
    # creation time) is read: an autosave writes one object and lists the others' uids.
    # No ORDER BY unless asked: the model's default one joins images and projects for every save.
    rows = Annotation.objects.filter(image=locked).order_by(*(("z_order", "id") if ordered else ()))
    return locked, {row.uid: row for row in map(_Stored._make, rows.values_list(*_Stored._fields))}


def _write(
    locked: Image,
    stored: dict[uuid.UUID, _Stored],
    cleaned: list[CleanAnnotation | Unchanged],
    sent: dict[uuid.UUID, dict[str, Any]],
    *,
    user: AbstractBaseUser | None,
    action: str,
    restored_from: int | None,
    echo: bool,
) -> SavedAnnotations:
    """Write a save whose whole set (in order) is `cleaned`, over the `stored` objects of the
    `locked` image: the new and changed rows, the image's version and status, the revision.
    `sent`: the objects as the client sent them, by uid (an unchanged one may still have drifted)."""
    now = timezone.now()
    author_id = user.pk if user is not None and user.is_authenticated else None
    kept = [c.uid for c in cleaned if isinstance(c, Unchanged)]
    incoming = {c.uid for c in cleaned}
    changed = [c.uid for c in cleaned if isinstance(c, CleanAnnotation) and c.uid in stored]
    gone = [uid for uid in stored if uid not in incoming]
    # Unchanged objects whose prediction or model was deleted since (SET NULL on the row, not
    # in the set the client sent): the revision records them as changed.
    drifted = [
        uid for uid in kept if (item := sent.get(uid)) is not None
        and (item.get("prediction") is not None or item.get("model_version") is not None)
        and (stored[uid].prediction_id, stored[uid].model_version_id) != (item.get("prediction"), item.get("model_version"))
    ]
    as_delta = locked.has_previous and not snapshot_due(version=locked.version + 1, action=action)
    # The rows rewritten and removed go first; the rewritten ones keep their author and creation time.
    before: dict[uuid.UUID, _Kept] = {}
    if changed or gone:
        deleted = rows_delete_returning(
            Annotation.objects.filter(image=locked, uid__in=changed + gone), ("uid", "author", "created_at"),
        )
        before = {uid: _Kept(author, created) for uid, author, created in deleted}
    new_rows = [
        _row(clean, image=locked, author_id=author_id, before=before.get(clean.uid), now=now)
        for clean in cleaned if isinstance(clean, CleanAnnotation)
    ]
    rows: list[Annotation] = []
    if echo or not as_delta or drifted:
        # The unchanged rows as they are (the others were deleted above), the others as written.
        by_uid = {row.uid: row for row in Annotation.objects.filter(image=locked).order_by()} if kept else {}
        by_uid.update((row.uid, row) for row in new_rows)
        rows = [by_uid[c.uid] for c in cleaned]
    Annotation.objects.bulk_create(new_rows)
    summary = {"added": len(new_rows) - len(changed), "removed": len(gone), "changed": len(changed)}
    locked.version += 1
    locked.annotations_updated_by_id = author_id
    locked.annotations_updated_at = now
    fields = ["version", "annotations_updated_by", "annotations_updated_at", "updated_at"]
    if action in (RevisionAction.SAVE, RevisionAction.RESTORE):
        # Who may, and what it does to the status; the project's state as read with the lock.
        actor = workflow.Actor.of(user, locked.project)
        fields += workflow.apply(locked, workflow.Action.SAVE, actor)
    locked.save(update_fields=fields)
    if as_delta:
        # Only what this save wrote: the unchanged objects are those of the revision before.
        rewritten = new_rows + [row for row in rows if row.uid in drifted]
        snapshot, delta = None, Delta(
            added=[annotation_to_dict(row) for row in new_rows if row.uid not in stored],
            changed=[annotation_to_dict(row) for row in rewritten if row.uid in stored],
            removed=[str(uid) for uid in gone],
            order=[str(c.uid) for c in cleaned],
        )
    else:
        snapshot, delta = [annotation_to_dict(row) for row in rows], None
    Revision.objects.create(
        image=locked,
        version=locked.version,
        action=action,
        author_id=author_id,
        annotations=snapshot,
        delta=delta,
        object_count=len(cleaned),
        restored_from=restored_from,
        summary=summary,
    )
    # Each repair names the object by its index in what was sent.
    position = {uid: index for index, uid in enumerate(sent)}
    repaired: list[ObjectRepair] = [
        {"uid": str(c.uid), "index": position[c.uid], **c.repair, "geometry": c.geometry}
        for c in cleaned if isinstance(c, CleanAnnotation) and c.repair is not None
    ]
    return SavedAnnotations(locked, rows if echo else [], repaired)


def _row(clean: CleanAnnotation, *, image: Image, author_id: int | None, before: _Kept | None, now: datetime) -> Annotation:
    is_mask = clean.geometry["type"] == "mask"
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
        digest=clean.digest,
        vertices=vertex_count(clean.geometry),
        # The author is whoever created the object; later edits are recorded in the revisions.
        author_id=before.author_id if before is not None else author_id,
        created_at=before.created_at if before is not None else now,
        updated_at=now,
    )


def revision_restore(*, image: Image, version: int, user: AbstractBaseUser, base_version: int) -> SavedAnnotations:
    """Make an earlier revision the current state again (as a new revision; nothing is dropped)."""
    if version == 0:
        items: list[dict[str, Any]] = []
    else:
        revision = Revision.objects.filter(image=image, version=version).first()
        if revision is None:
            raise NotFound(f"Revision {version} does not exist for this image.")
        items = revision_objects(revision)
    return annotations_replace(
        image=image, user=user, base_version=base_version, items=items,
        action=RevisionAction.RESTORE, restored_from=version,
    )


def annotation_digest(row: Annotation) -> str:
    """The digest a save stores for this row (a restore recomputes it once the row's ids are remapped)."""
    return _digest(
        row.label_id, row.geometry, row.z_order, row.attributes, row.source, row.score, row.model_version_id, row.prediction_id
    )


def annotation_sets_insert(
    *,
    sets: list[tuple[Image, list[CleanAnnotation]]],
    author_id: int | None,
    now: datetime,
    action: str = RevisionAction.IMPORT,
    batch_size: int = 1000,
) -> int:
    """The first objects of many images that have none yet (an import's new images), in bulk.

    What annotations_replace writes for one image, for thousands at once: the rows of objects
    cleaned by annotations_clean (the same checks as a save) and one snapshot revision per image at
    the version the caller gave the image (inserted with it, usually 1). Returns the objects written.
    """
    rows: list[Annotation] = []
    revisions: list[Revision] = []
    for image, cleaned in sets:
        mine = [_row(clean, image=image, author_id=author_id, before=None, now=now) for clean in cleaned]
        rows += mine
        revisions.append(Revision(
            image=image, version=image.version, action=action, author_id=author_id,
            annotations=[annotation_to_dict(row) for row in mine], object_count=len(mine),
            summary={"added": len(mine), "removed": 0, "changed": 0},
        ))
    # COPY on PostgreSQL: the geometries and snapshots are megabytes of JSON, which a multi-row
    # INSERT escapes into arrays value by value.
    rows_insert(Annotation, rows, batch_size=batch_size)
    rows_insert(Revision, revisions, batch_size=max(1, batch_size // 4))
    return len(rows)
