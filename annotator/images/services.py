"""Writes on images: adding files (single, many, zip, folder), the annotate queue, submission."""
from __future__ import annotations

import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Callable

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from annotator.core.errors import DomainError
from annotator.core.locks import person_lock
from annotator.projects.models import Project, QueueOrder

from .imaging import IMAGE_SUFFIXES, DecodedImage, image_decode
from .models import Image, ImageStatus


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
            sources.append((upload.name, _reader(upload)))
    return sources


def _reader(upload) -> Callable[[], bytes]:  # type: ignore[no-untyped-def]
    def read() -> bytes:
        upload.seek(0)
        return upload.read()

    return read


def sources_from_zip(file: IO[bytes], *, name: str) -> list[Source]:
    """The image members of a zip; refuses the whole archive on path tricks or bomb-like sizes."""
    try:
        archive = zipfile.ZipFile(file)
    except zipfile.BadZipFile:
        raise DomainError(f"{name}: not a valid zip archive") from None
    members = [info for info in archive.infolist() if not info.is_dir()]
    if len(members) > settings.ANNOTATOR_MAX_ZIP_FILES:
        raise DomainError(f"{name}: {len(members)} files is more than the limit of {settings.ANNOTATOR_MAX_ZIP_FILES}")
    total = 0
    sources: list[Source] = []
    for info in members:
        path = PurePosixPath(info.filename.replace("\\", "/"))
        if path.is_absolute() or ".." in path.parts or info.filename.startswith(("/", "\\")) or ":" in path.parts[0]:
            raise DomainError(f"{name}: refused, member {info.filename!r} points outside the archive")
        total += info.file_size
        if total > settings.ANNOTATOR_MAX_ZIP_BYTES:
            raise DomainError(f"{name}: the archive unpacks to more than {settings.ANNOTATOR_MAX_ZIP_BYTES:,} bytes")
        if path.name.startswith(".") or "__MACOSX" in path.parts:
            continue
        if path.suffix.lower() in IMAGE_SUFFIXES:
            sources.append((f"{name}/{info.filename}", lambda info=info: archive.read(info)))
    return sources


def sources_from_folder(folder: Path) -> list[Source]:
    if not folder.is_dir():
        raise DomainError(f"{folder}: no such folder")
    paths = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    return [(str(p.relative_to(folder)), p.read_bytes) for p in paths]


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
    image.file.save(f"{decoded.checksum}{decoded.suffix}", ContentFile(decoded.content), save=False)
    written.append(image.file.name)
    image.thumbnail.save(f"{decoded.checksum}.jpg", ContentFile(decoded.thumbnail), save=False)
    written.append(image.thumbnail.name)
    image.save()
    return image


def files_delete(names: Iterable[str]) -> None:
    for name in names:
        default_storage.delete(name)


def _queue_order(project: Project) -> list:  # type: ignore[type-arg]
    if project.queue_order == QueueOrder.UNCERTAINTY:
        return [F("priority").desc(), F("uncertainty").desc(nulls_last=True), "id"]
    return [F("priority").desc(), "id"]


def queue_next(*, project: Project, user: AbstractBaseUser) -> Image | None:
    """Hand the user their next image: their unfinished one first, else a new one assigned to them,
    else a new one nobody holds.

    Atomic: two annotators asking at the same moment never get the same image (row locks with
    SKIP LOCKED on PostgreSQL, plus a conditional update as the final guard on any database), and
    one annotator asking several times at once gets one image: their requests take turns on a lock
    of their user row, so each sees the image the previous one handed out.
    """
    for _ in range(10):
        with transaction.atomic():
            person_lock(user)
            mine = (
                Image.objects.filter(
                    project=project, assignee=user, status__in=[ImageStatus.IN_PROGRESS, ImageStatus.REJECTED]
                )
                .order_by(*_queue_order(project))
                .first()
            )
            if mine is not None:
                return mine
            # New images nobody holds, and those a manager assigned to this user (those first): an
            # image assigned to someone else is never handed out to anybody but them.
            free_or_mine = Q(assignee__isnull=True) | Q(assignee=user)
            candidate = (
                Image.objects.select_for_update(skip_locked=True)
                .filter(free_or_mine, project=project, status=ImageStatus.NEW)
                .order_by(F("assignee").asc(nulls_last=True), *_queue_order(project))
                .first()
            )
            if candidate is None:
                return None
            taken = Image.objects.filter(free_or_mine, pk=candidate.pk, status=ImageStatus.NEW).update(
                assignee=user, status=ImageStatus.IN_PROGRESS, updated_at=timezone.now()
            )
            if taken:
                candidate.refresh_from_db()
                return candidate
    return None


@transaction.atomic
def image_submit(*, image: Image, user: AbstractBaseUser, is_manager: bool) -> Image:
    image = Image.objects.select_for_update().get(pk=image.pk)
    if image.status not in (ImageStatus.NEW, ImageStatus.IN_PROGRESS, ImageStatus.REJECTED):
        raise DomainError(f"The image is {image.get_status_display().lower()}; only work in progress can be submitted.", status=409)
    if image.assignee_id != user.pk and not is_manager:
        raise DomainError("This image is assigned to someone else.", status=403)
    if image.assignee_id is None:
        image.assignee = user
    image.status = ImageStatus.SUBMITTED
    image.submitted_at = timezone.now()
    image.save()
    return image


@transaction.atomic
def image_update(*, image: Image, **changes: object) -> Image:
    """Manager edits: priority, assignee, reviewer, status (e.g. to send an image back)."""
    for name, value in changes.items():
        setattr(image, name, value)
    image.save()
    return image


def image_delete(*, image: Image) -> None:
    names = [image.file.name, image.thumbnail.name]
    with transaction.atomic():
        image.delete()
        transaction.on_commit(lambda: files_delete([n for n in names if n]))
