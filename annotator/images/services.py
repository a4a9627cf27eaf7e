"""Writes on images: adding files (single, many, zip, folder), the annotate queue, submission."""
from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from annotator.consensus.models import ReplicaStatus
from annotator.consensus.selectors import own_version_needed, replica_of, replica_open
from annotator.consensus.services import replica_release, replica_serve, replica_submit
from annotator.core.errors import Conflict, DomainError
from annotator.core.files import domain_error, zip_open
from annotator.core.locks import person_lock
from annotator.groundtruth.selectors import attempt_of, attempt_open
from annotator.groundtruth.services import attempt_release, attempt_submit, ground_truth_serve
from annotator.projects.models import Project, QueueOrder
from ml.formats.archive import SafeZip, ZipMember, iter_files
from ml.formats.model import FormatError

from . import workflow
from .imaging import IMAGE_SUFFIXES, DecodedImage, image_decode, image_size_check
from .models import Image, ImageCount, ImageStatus


@dataclass
class AddResult:
    """What happened to a batch of incoming files."""

    created: list[Image] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "created": [image.pk for image in self.created],
            "created_count": len(self.created),
            "duplicates": self.duplicates,
        }


# A source of files: (display name, a function returning the bytes).
Source = tuple[str, Callable[[], bytes]]


def sources_from_uploads(files: Iterable) -> list[Source]:  # type: ignore[type-arg]
    """Expand uploaded files (images and zips of images) into named byte sources."""
    sources: list[Source] = []
    for upload in files:
        if upload.name.lower().endswith(".zip"):
            sources.extend(sources_from_zip(upload, name=upload.name))
        else:
            image_size_check(upload.name, upload.size)
            sources.append((upload.name, _reader(upload)))
    return sources




def _reader(upload) -> Callable[[], bytes]:  # type: ignore[no-untyped-def]
    def read() -> bytes:
        upload.seek(0)
        return upload.read()

    return read


def sources_from_zip(file: IO[bytes], *, name: str) -> list[Source]:
    """The image members of a zip, through the one archive reader (core.files.zip_open).

    The whole archive is refused before any member is read on path tricks, links, too many
    files, too many bytes, an image member over ANNOTATOR_MAX_IMAGE_MB or a bomb-like ratio; a
    corrupt member (bad CRC) is a 400 naming it when it is read.
    """
    archive = zip_open(file, name=name, max_file_bytes=settings.ANNOTATOR_MAX_IMAGE_BYTES)
    sources: list[Source] = []
    for member in archive.members:
        path = member.path
        if path.name.startswith(".") or "__MACOSX" in path.parts:
            continue
        if path.suffix.lower() in IMAGE_SUFFIXES:
            sources.append((f"{name}/{path}", lambda member=member: _read_member(archive, member)))
    return sources


def _read_member(archive: SafeZip, member: ZipMember) -> bytes:
    try:
        return archive.read(member)
    except FormatError as exc:
        raise domain_error(exc) from None


def sources_from_folder(folder: Path) -> list[Source]:
    """The image files under ``folder``; a link leading out of it is refused (path resolver)."""
    if not folder.is_dir():
        raise DomainError(f"{folder.name}: no such folder")
    sources: list[Source] = []
    try:
        for path in iter_files(folder, *IMAGE_SUFFIXES):
            name = path.relative_to(folder).as_posix()
            image_size_check(name, path.stat().st_size)
            sources.append((name, path.read_bytes))
    except FormatError as exc:
        raise domain_error(exc) from None
    return sources


def images_add(
    *,
    project: Project,
    sources: list[Source],
    progress: Callable[[int, int], None] | None = None,
) -> AddResult:
    """Add images to a project, all or nothing: one bad file and nothing is created.

    Files are checked in a first pass (decoding each once, without keeping them in memory) so that
    a corrupt file late in a big batch leaves no half-created images behind.
    """
    total = len(sources)
    if not total:
        raise DomainError("No image files found (supported: " + ", ".join(IMAGE_SUFFIXES) + ")")
    seen: dict[str, str] = {}
    existing = set(Image.objects.filter(project=project).values_list("checksum", flat=True))
    duplicates: list[str] = []
    keep: list[int] = []
    for index, (name, read) in enumerate(sources):
        decoded = image_decode(read(), name=name)
        if decoded.checksum in existing or decoded.checksum in seen:
            duplicates.append(name)
        else:
            seen[decoded.checksum] = name
            keep.append(index)
        if progress:
            progress(index + 1, 2 * total)
    result = AddResult(duplicates=duplicates)
    written: list[str] = []
    try:
        with transaction.atomic():
            for step, index in enumerate(keep):
                name, read = sources[index]
                image = image_store(project=project, name=name, decoded=image_decode(read(), name=name), written=written)
                result.created.append(image)
                if progress:
                    progress(total + step + 1, 2 * total)
    except IntegrityError:
        files_delete(written)
        raise DomainError("Another upload added the same images at the same time; try again.") from None
    except BaseException:
        files_delete(written)
        raise
    return result


def image_store(*, project: Project, name: str, decoded: DecodedImage, written: list[str]) -> Image:
    """Store one decoded image and its thumbnail; the stored file names are appended to `written`
    so that the caller can remove them again if its transaction fails."""
    image = Image(
        project=project,
        original_name=name[:500],
        width=decoded.width,
        height=decoded.height,
        checksum=decoded.checksum,
    )
    image.file, image.thumbnail = image_files_store(project=project, decoded=decoded, written=written)
    image.save()
    return image


def image_files_store(*, project: Project, decoded: DecodedImage, written: list[str]) -> tuple[str, str]:
    """Store the image's file and thumbnail without a row (an import's chunks write the rows later,
    in bulk); their stored names, also appended to `written`."""
    image = Image(project=project, checksum=decoded.checksum)
    return (
        _store_file(image, "file", f"{decoded.checksum}{decoded.suffix}", decoded.content, written),
        _store_file(image, "thumbnail", f"{decoded.checksum}.jpg", decoded.thumbnail, written),
    )


def _store_file(image: Image, field_name: str, filename: str, content: bytes, written: list[str]) -> str:
    """Store ``content`` under the name the field's ``upload_to`` gives (project + checksum).

    The name is the same on every try, so a retry after a killed import replaces the file that
    the dead attempt left (maybe a torn write) instead of storing a suffixed copy beside it. No row
    can own it already: the project's unique (project, checksum) would have made this image a
    duplicate. Rewriting also makes the file young again, so the sweeper leaves it alone.
    """
    field = Image._meta.get_field(field_name)
    storage = field.storage  # type: ignore[attr-defined]
    name = field.generate_filename(image, filename)  # type: ignore[attr-defined]
    if storage.exists(name):
        storage.delete(name)
    stored = storage.save(name, ContentFile(content))
    written.append(stored)
    return stored


def files_delete(names: Iterable[str]) -> None:
    """Remove stored files that no image references (after a rollback, or a deleted image).

    Names are deterministic, so another request may have stored (and committed) the same file
    meanwhile: that one is kept.
    """
    names = [name for name in names if name]
    try:
        referenced = set(Image.objects.filter(file__in=names).values_list("file", flat=True))
        referenced |= set(Image.objects.filter(thumbnail__in=names).values_list("thumbnail", flat=True))
    except DatabaseError:
        referenced = set()  # the database is what failed: nothing of ours was committed
    for name in names:
        if name not in referenced:
            default_storage.delete(name)


# The queue's ground-truth draws (seeded in tests through queue_next's `rng`).
_DRAWS = random.Random()


def _queue_order(project: Project) -> list:  # type: ignore[type-arg]
    if project.queue_order == QueueOrder.UNCERTAINTY:
        return [F("priority").desc(), F("uncertainty").desc(nulls_last=True), "id"]
    return [F("priority").desc(), "id"]


def queue_next(*, project: Project, user: AbstractBaseUser, rng: random.Random | None = None) -> Image | None:
    """Hand the user their next image: their unfinished one first, else a new one assigned to them,
    else a new one nobody holds.

    Ground truth is mixed in: with the project's `ground_truth_rate`, a draw (from `rng`) hands out
    a ground-truth image the user did not author and never tried instead, as their own attempt
    (annotator.groundtruth), which looks to them like any image in progress.

    With `consensus_annotators` N > 1, new work is a version of an image that needs more of them
    (annotator.consensus): each image goes to N different people, never twice to one.

    Atomic: two annotators asking at the same moment never get the same image (row locks with
    SKIP LOCKED on PostgreSQL, plus a conditional update as the final guard on any database), and
    one annotator asking several times at once gets one image: their requests take turns on a lock
    of their user row, so each sees the image the previous one handed out.
    """
    actor = workflow.Actor.of(user, project)
    truth_drawn = project.ground_truth_rate > 0 and (rng or _DRAWS).random() < project.ground_truth_rate
    for _ in range(10):
        with transaction.atomic():
            person_lock(user)
            mine = (
                Image.objects.filter(project=project, assignee=user, status__in=workflow.ANNOTATOR_WORK)
                .order_by(*_queue_order(project))
                .first()
            )
            if mine is not None:
                return mine
            attempt = attempt_open(project, user) or (ground_truth_serve(project=project, user=user) if truth_drawn else None)
            if attempt is not None:
                return attempt.image
            if project.consensus_annotators > 1:
                replica = replica_open(project, user) or replica_serve(project=project, user=user)
                return replica.image if replica is not None else None
            # New images a manager assigned to this user first, then those nobody holds: an image
            # assigned to someone else is never handed out to anybody but them. Two queries rather
            # than one ordered by "assignee nulls last": each reads the first entry of an index in
            # queue order (image_assignee_idx, image_queue_free_idx), where the single query sorted
            # every new image of the project.
            free_or_mine = Q(assignee__isnull=True) | Q(assignee=user)
            claimable = workflow.sources(workflow.Action.CLAIM)
            new_images = Image.objects.select_for_update(skip_locked=True).filter(project=project, status__in=claimable)
            order = _queue_order(project)
            candidate = (
                new_images.filter(assignee=user).order_by(*order).first()
                or new_images.filter(assignee__isnull=True).order_by(*order).first()
            )
            if candidate is None:
                return None
            decision = workflow.decide(candidate, workflow.Action.CLAIM, actor)
            if not decision.allowed:
                raise workflow.WorkflowError(decision)
            taken = Image.objects.filter(free_or_mine, pk=candidate.pk, status=candidate.status).update(
                **decision.changes, updated_at=timezone.now()
            )
            if taken:
                candidate.refresh_from_db()
                return candidate
    return None


@transaction.atomic
def image_submit(*, image: Image, user: AbstractBaseUser) -> Image:
    """Submit the image for review; on a ground-truth image the user is trying, submit their attempt."""
    attempt = attempt_of(image, user)
    replica = replica_of(image, user) if attempt is None else None
    own = attempt or replica  # their own version of the image, submitted under the same checks as any image
    if own is not None and own.status != ReplicaStatus.ABANDONED and workflow.decide(
        own, workflow.Action.SUBMIT, workflow.Actor.of(user, image.project_id)
    ).allowed:
        _check_required_attributes(image, own.drawn)  # (a submit refused otherwise is refused below)
    if attempt is not None:
        attempt_submit(attempt=attempt, user=user)
        return image
    if replica is not None:
        replica_submit(replica=replica, user=user)
        return Image.objects.get(pk=image.pk)
    if reason := own_version_needed(image):
        raise Conflict(reason)
    image = Image.objects.select_for_update().get(pk=image.pk)
    fields = workflow.apply(image, workflow.Action.SUBMIT, user)
    _check_required_attributes(image)  # refused: nothing is saved
    image.save(update_fields=fields)
    return image


@transaction.atomic
def image_release(*, image: Image, user: AbstractBaseUser) -> Image:
    """The annotator (or a manager) gives an unfinished image back to the queue; its annotations stay.
    A ground-truth attempt given back is dropped (never scored)."""
    attempt = attempt_of(image, user)
    if attempt is not None:
        attempt_release(attempt=attempt, user=user)
        return image
    replica = replica_of(image, user)
    if replica is not None:
        replica_release(replica=replica, user=user)
        return image
    image = Image.objects.select_for_update().get(pk=image.pk)
    image.save(update_fields=workflow.apply(image, workflow.Action.RELEASE, user))
    return image


def _check_required_attributes(image: Image, objects: list[dict[str, Any]] | None = None) -> None:
    """Submitting needs every required attribute set (label schemas); the error names the objects.
    `objects`: the set being submitted when it is not the image's own (a ground-truth attempt, a consensus version)."""
    from annotator.annotations.attributes import attributes_missing
    from annotator.annotations.models import Annotation

    schemas = dict(image.project.labels.values_list("pk", "attributes_schema"))
    if not any(isinstance(s, dict) and any(isinstance(v, dict) and v.get("required") for v in s.values()) for s in schemas.values()):
        return
    missing = []
    if objects is None:
        rows = Annotation.objects.filter(image=image).order_by("z_order", "id").values_list("uid", "label_id", "label__name", "attributes")
    else:
        names = dict(image.project.labels.values_list("pk", "name"))
        rows = [(o["uid"], o["label"], names.get(o["label"]), o.get("attributes")) for o in objects]
    for uid, label_id, label_name, attributes in rows:
        names = attributes_missing(attributes, schemas.get(label_id))
        if names:
            missing.append({"uid": str(uid), "label": label_name, "missing": names})
    if missing:
        first = missing[0]
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise DomainError(
            f"{len(missing)} object{'s' if len(missing) > 1 else ''} {'lack' if len(missing) > 1 else 'lacks'} required "
            f"attributes: a {first['label']} has no {', '.join(first['missing'])}{more}.",
            extra={"objects": missing},
        )


@transaction.atomic
def image_update(
    *, image: Image, user: AbstractBaseUser, status: str | None = None, **changes: object,
) -> Image:
    """Manager edits: priority, assignee, reviewer, and a status that is one of the workflow's
    actions (reset to new, reopen for its annotator, give back to the review queue)."""
    image = Image.objects.select_for_update().get(pk=image.pk)
    fields: set[str] = set()
    if status is not None:
        action = workflow.STATUS_ACTIONS.get(ImageStatus(status))
        if action is None:
            raise workflow.WorkflowError(workflow.Decision(
                workflow.Action.ASSIGN, ImageStatus(image.status), http_status=409,
                reason=f"An image becomes {ImageStatus(status).label.lower()} through the workflow (submission, review), "
                       "not by setting its status; a manager can reset it to new, reopen it (in progress) "
                       "or give it back to the review queue (submitted).",
            ))
        fields.update(workflow.apply(image, action, user))
    if {"assignee", "reviewer"} & changes.keys():
        fields.update(workflow.apply(image, workflow.Action.ASSIGN, user))
    for name, value in changes.items():
        setattr(image, name, value)
        fields.add(name)
    image.save(update_fields=[*fields, "updated_at"])
    return image


def image_delete(*, image: Image) -> None:
    names = [image.file.name, image.thumbnail.name]
    with transaction.atomic():
        image.delete()
        transaction.on_commit(lambda: files_delete([n for n in names if n]))


@transaction.atomic
def image_counts_compact(*, project_id: int | None = None) -> int:
    """Fold the ImageCount rows the triggers appended into one per (project, status, assignee,
    reviewer); the number of rows folded.

    `DELETE … RETURNING` hands this transaction exactly the rows it removed, so two compactions
    at once cannot count a row twice, and the triggers' inserts meanwhile wait for nothing.
    """
    where, params = ("WHERE project_id = %s", [project_id]) if project_id is not None else ("", [])
    with connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {ImageCount._meta.db_table} {where} RETURNING project_id, status, assignee_pk, reviewer_pk, count",
            params,
        )
        rows = cursor.fetchall()
    totals: Counter[tuple[int, str, int, int]] = Counter()
    for project, status, assignee, reviewer, count in rows:
        totals[(project, status, assignee, reviewer)] += count
    live = set(Project.objects.filter(pk__in={key[0] for key in totals}).values_list("pk", flat=True))
    ImageCount.objects.bulk_create(
        ImageCount(project_id=project, status=status, assignee_pk=assignee, reviewer_pk=reviewer, count=count)
        for (project, status, assignee, reviewer), count in totals.items() if count and project in live
    )
    return len(rows)
