"""Dataset exports: COCO / Pascal VOC zips streamed from the database, kept as DatasetVersions.

Exports walk the images in chunks (a bounded number of rows in memory at any time), stream the
annotation JSON to a temporary file, and keep the zip as a DatasetVersion with a manifest and
checksums.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import zipfile
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import IO, Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify

from annotator.annotations.models import Annotation, GeometryKind, Prediction
from annotator.core.errors import DomainError
from annotator.core.files import tmp_root
from annotator.images.models import Image, ImageStatus
from annotator.projects.models import Label, Project
from ml.formats import (
    DatasetImage,
    DatasetInstance,
    write_coco,
    write_coco_results,
    write_labelme,
    write_voc,
)

from .models import DatasetVersion, ExportFormat

Progress = Callable[[int, int, str], None]

EXPORT_CHUNK = 500  # image rows per database round trip during an export (objects are streamed)
LABELME_FOLDER = "labelme/"  # where a LabelMe export's JSON files (and images) go in the zip




@dataclass
class ExportOptions:
    """What to export: format, which images (status), which labels, images and predictions or not."""

    format: str = ExportFormat.COCO
    status: list[str] | None = field(default_factory=lambda: [ImageStatus.ACCEPTED])  # None = all images
    labels: list[str] | None = None  # label names; None = all labels
    include_images: bool = False
    predictions: bool = False
    model_version: int | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExportOptions:
        fmt = data.get("format", ExportFormat.COCO)
        if fmt not in ExportFormat.values:
            raise DomainError(f"format must be one of {', '.join(ExportFormat.values)}")
        raw_status = data.get("status", "accepted")
        if raw_status in (None, "all"):
            status = None
        else:
            status = [raw_status] if isinstance(raw_status, str) else list(raw_status)
            bad = [s for s in status if s not in ImageStatus.values]
            if bad or not status:
                raise DomainError(f"status must be 'all' or image statuses ({', '.join(ImageStatus.values)})")
        labels = data.get("labels") or None
        if labels is not None and (not isinstance(labels, list) or not all(isinstance(n, str) for n in labels)):
            raise DomainError("labels must be a list of label names")
        predictions = bool(data.get("predictions", False))
        if predictions and fmt != ExportFormat.COCO:
            raise DomainError("Predictions are exported in the COCO results format; choose the COCO format.")
        return cls(
            format=fmt, status=status, labels=labels, include_images=bool(data.get("include_images", False)),
            predictions=predictions, model_version=data.get("model_version"),
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "format": self.format, "status": self.status or "all", "labels": self.labels,
            "include_images": self.include_images, "predictions": self.predictions, "model_version": self.model_version,
        }


class _HashingWriter:
    """A write-only file wrapper that hashes what goes through it."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.sha = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.sha.update(data)
        self.size += len(data)
        return self.raw.write(data)


class _HashingZip(zipfile.ZipFile):
    """A ZipFile that records the SHA-256 and size of every member written with writestr()."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.checksums: list[dict[str, Any]] = []

    def writestr(self, zinfo_or_arcname: Any, data: Any, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
        name = zinfo_or_arcname.filename if isinstance(zinfo_or_arcname, zipfile.ZipInfo) else zinfo_or_arcname
        self.checksums.append({"path": name, "sha256": hashlib.sha256(raw).hexdigest(), "size": len(raw)})
        super().writestr(zinfo_or_arcname, raw, *args, **kwargs)

    def write_stream(self, name: str, write: Callable[[IO[bytes]], Any]) -> Any:
        """Write a member by streaming into it; ``write(fh)`` gets a hashing file handle."""
        with self.open(zipfile.ZipInfo(name, date_time=_ZIP_TIME), "w", force_zip64=True) as raw:
            hashed = _HashingWriter(raw)
            result = write(hashed)
        self.checksums.append({"path": name, "sha256": hashed.sha.hexdigest(), "size": hashed.size})
        return result


# Fixed member timestamps: the same data exports to the same bytes (reproducible checksums).
_ZIP_TIME = (2000, 1, 1, 0, 0, 0)


def _chunks(iterable: Iterable[Any], size: int) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    for item in iterable:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _export_images(project: Project, options: ExportOptions):  # type: ignore[no-untyped-def]
    qs = Image.objects.filter(project=project)
    if options.status is not None:
        qs = qs.filter(status__in=options.status)
    return qs.order_by("id").only("id", "original_name", "width", "height", "file")


def _suffix(name: str) -> str:
    suffix = PurePosixPath(name).suffix.lower()
    return ".jpg" if suffix == ".jpeg" else suffix


class _Namer:
    """Flat, unique, stable file names for the exported images.

    The base name of the original (``e2e.zip/photos/0001.jpg`` → ``0001.jpg``): VOC readers glob
    ``Annotations/*.xml`` and look up ``JPEGImages/<id>.jpg``, so nested folders would hide
    images.  A name whose stem more than one image of the project has becomes ``<stem>_<image id>``
    — decided over the whole project, so an image keeps its name whichever images an export
    selects.  The original path stays in the COCO image entry (``original_name``).
    """

    def __init__(self, project: Project) -> None:
        seen: set[str] = set()
        self.shared: set[str] = set()
        for original in Image.objects.filter(project=project).values_list("original_name", flat=True).iterator(chunk_size=5000):
            key = _flat_stem(original)
            if key in seen:
                self.shared.add(key)
            seen.add(key)

    def __call__(self, image: Image) -> str:
        stored_suffix = _suffix(image.file.name)
        stem = _flat_stem(image.original_name)
        if not stem or stem in self.shared:
            stem = f"{stem or 'image'}_{image.pk}"
        return f"{stem}{stored_suffix}"


def _flat_stem(original_name: str) -> str:
    """The file name's stem without folders, safe as a file name ('' when nothing usable is left)."""
    base = PurePosixPath(original_name.replace("\\", "/")).name
    stem = PurePosixPath(base).stem if PurePosixPath(base).suffix else base
    stem = "".join(ch if ch.isalnum() or ch in "-_.+" else "_" for ch in stem).strip("._")
    return stem[:150]


def _dataset_images(
    project: Project,
    options: ExportOptions,
    *,
    labels: dict[int, str],
    namer: _Namer,
    on_image: Callable[[Image, DatasetImage], None] | None = None,
    predictions_from: int | None = None,
) -> Iterator[DatasetImage]:
    """The export's images with their objects, a chunk of rows at a time (bounded memory).

    With ``predictions_from`` (a model version id) the instances are that model's predictions
    instead of the annotations.
    """
    for chunk in _chunks(_export_images(project, options).iterator(chunk_size=EXPORT_CHUNK), EXPORT_CHUNK):
        ids = [image.pk for image in chunk]
        instances = (
            _annotation_instances(ids, labels) if predictions_from is None else _prediction_instances(ids, labels, predictions_from)
        )
        pending = next(instances, None)
        for image in chunk:
            # Both queries are ordered by image id: a merge join keeps one image's objects in memory.
            objects: list[DatasetInstance] = []
            while pending is not None and pending[0] == image.pk:
                objects.append(pending[1])
                pending = next(instances, None)
            item = DatasetImage(
                file_name=namer(image) if predictions_from is None else "", width=image.width, height=image.height,
                instances=objects, source_id=image.pk, attributes={"original_name": image.original_name},
            )
            if on_image is not None:
                on_image(image, item)
            yield item


def _annotation_instances(image_ids: list[int], labels: dict[int, str]) -> Iterator[tuple[int, DatasetInstance]]:
    rows = (
        Annotation.objects.filter(image_id__in=image_ids, label_id__in=labels)
        .order_by("image_id", "z_order", "id")
        .values_list("image_id", "label_id", "kind", "polygons", "rle", "score", "attributes", "bbox", "area")
    )
    for image_id, label_id, kind, polygons, rle, score, attributes, bbox, area in rows.iterator(chunk_size=2000):
        geometry = {"type": "mask", "rle": rle} if kind == GeometryKind.MASK else {"type": "polygons", "polygons": polygons}
        attrs = dict(attributes or {})
        crowd = bool(attrs.pop("iscrowd", False))
        # bbox and area were computed by geometry.bbox_and_area when the object was saved.
        yield image_id, DatasetInstance(
            label=labels[label_id], geometry=geometry, attributes=attrs, score=score, iscrowd=crowd, bbox=bbox, area=area
        )


def _prediction_instances(image_ids: list[int], labels: dict[int, str], model_version: int) -> Iterator[tuple[int, DatasetInstance]]:
    rows = (
        Prediction.objects.filter(image_id__in=image_ids, label_id__in=labels, model_version_id=model_version)
        .order_by("image_id", "rank")
        .values_list("image_id", "label_id", "rle", "score")
    )
    for image_id, label_id, rle, score in rows.iterator(chunk_size=2000):
        yield image_id, DatasetInstance(label=labels[label_id], geometry={"type": "mask", "rle": rle}, score=score)


def _label_set(project: Project, options: ExportOptions) -> dict[int, str]:
    labels = dict(Label.objects.filter(project=project).order_by("order", "id").values_list("pk", "name"))
    if options.labels is not None:
        unknown = set(options.labels) - set(labels.values())
        if unknown:
            raise DomainError(f"The project has no label {sorted(unknown)[0]!r}")
        labels = {pk: name for pk, name in labels.items() if name in options.labels}
    return labels


def _latest_model_version(project: Project, options: ExportOptions) -> int | None:
    if options.model_version is not None:
        return int(options.model_version)
    return (
        Prediction.objects.filter(image__project=project).order_by("-created_at", "-id")
        .values_list("model_version_id", flat=True).first()
    )


def export_write(
    *,
    project: Project,
    options: ExportOptions,
    out: IO[bytes],
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Write the export zip to the binary file ``out`` and return its manifest.

    COCO: ``annotations/instances_default.json`` (image ids = our image ids, category ids 1..N in
    label order), optionally ``images/default/<file_name>`` and ``predictions.json`` (COCO results
    of the latest model, for the same image ids). VOC: the VOC tree from ``ml.formats.write_voc``.
    LabelMe: ``labelme/<file_name stem>.json`` per image from ``ml.formats.write_labelme`` (painted
    masks traced into polygons, attributes as flags and extra shape keys), the image beside it when
    included. All end with ``manifest.json`` (counts, labels, filters, SHA-256 of every member).
    """
    labels = _label_set(project, options)
    label_names = list(labels.values())
    total = _export_images(project, options).count()
    steps = total * (2 if options.predictions else 1)
    step = 0

    def tick(message: str) -> None:
        nonlocal step
        step += 1
        if progress and (step % 50 == 0 or step == steps):
            progress(step, steps, message)

    counts: dict[str, int] = defaultdict(int)
    objects = 0

    def count(_image: Image, item: DatasetImage) -> None:
        nonlocal objects
        objects += len(item.instances)
        for inst in item.instances:
            counts[inst.label] += 1

    if progress:
        progress(0, steps, "Exporting")
    with _HashingZip(out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1, allowZip64=True) as archive:
        result: dict[str, Any] = {}
        if options.format == ExportFormat.COCO:
            namer = _Namer(project)

            def on_image(image: Image, item: DatasetImage) -> None:
                count(image, item)
                if options.include_images:
                    with image.file.open("rb") as fh:
                        archive.writestr(
                            zipfile.ZipInfo(f"images/default/{item.file_name}", date_time=_ZIP_TIME), fh.read(),
                            compress_type=zipfile.ZIP_STORED,
                        )
                tick("Writing COCO annotations")

            # The JSON goes to a temporary file first: the image files are added to the zip in
            # the same pass, and a zip can only have one member open for writing.
            with tempfile.TemporaryFile(dir=tmp_root()) as spool:
                stats = write_coco(
                    _dataset_images(project, options, labels=labels, namer=namer, on_image=on_image),
                    labels=label_names, out=spool, use_source_ids=True,
                    info={"description": f"{project.name} (Annotator export)", "version": "1.0",
                          "date_created": timezone.now().isoformat()},
                )
                spool.seek(0)
                archive.write_stream("annotations/instances_default.json", lambda fh: shutil.copyfileobj(spool, fh, 1 << 20))
            result.update(images=stats.images, annotations=stats.annotations)
            if options.predictions:
                model_version = _latest_model_version(project, options)

                def tick_only(_image: Image, _item: DatasetImage) -> None:
                    tick("Writing predictions")

                if model_version is None:
                    archive.writestr(zipfile.ZipInfo("predictions.json", date_time=_ZIP_TIME), b"[]")
                    result["predictions"] = 0
                else:
                    result["predictions"] = archive.write_stream(
                        "predictions.json",
                        lambda fh: write_coco_results(
                            _dataset_images(project, options, labels=labels, namer=namer,
                                            on_image=tick_only, predictions_from=model_version),
                            labels=label_names, out=fh,
                        ),
                    )
                result["model_version"] = model_version
        else:
            stored: dict[int, Image] = {}
            message = "Writing Pascal VOC" if options.format == ExportFormat.VOC else "Writing LabelMe"

            def on_file_image(image: Image, item: DatasetImage) -> None:
                count(image, item)
                # The writer asks for the bytes of the image it was just handed: keep only that one.
                stored.clear()
                stored[image.pk] = image
                tick(message)

            def image_bytes(item: DatasetImage) -> bytes:
                with stored[int(item.source_id)].file.open("rb") as fh:  # type: ignore[arg-type]
                    return fh.read()

            items = _dataset_images(project, options, labels=labels, namer=_Namer(project), on_image=on_file_image)
            image_bytes_for = image_bytes if options.include_images else None
            if options.format == ExportFormat.VOC:
                try:
                    stats_voc = write_voc(items, labels=label_names, out=archive, image_bytes_for=image_bytes_for)
                except ValueError as exc:
                    raise DomainError(f"Cannot write Pascal VOC: {exc}") from None
                result.update(images=stats_voc.images, annotations=stats_voc.objects)
            else:
                # A folder of its own: LabelMe and labelme2coco take every *.json of the folder
                # they are given, and the manifest is not one of theirs.
                result["images"] = write_labelme(items, out=archive, image_bytes_for=image_bytes_for, prefix=LABELME_FOLDER)
                result["annotations"] = objects
        manifest = {
            "project": project.name,
            "format": options.format,
            "filters": options.as_dict(),
            "created_at": timezone.now().isoformat(),
            "counts": {"images": result["images"], "annotations": result["annotations"], "per_label": {n: counts.get(n, 0) for n in label_names},
                       **({"predictions": result["predictions"]} if "predictions" in result else {})},
            "labels": [{"id": k + 1, "name": name} for k, name in enumerate(label_names)],
            "files": list(archive.checksums),
        }
        if "model_version" in result:
            manifest["model_version"] = result["model_version"]
        archive.writestr(zipfile.ZipInfo("manifest.json", date_time=_ZIP_TIME), json.dumps(manifest, indent=1))
    return manifest


def _default_name(project: Project, fmt: str) -> str:
    # Short enough for the 200-character name with a `-n` suffix, whatever the project's name.
    return f"{slugify(project.name)[:160] or 'project'}-{fmt}-{timezone.now():%Y%m%d-%H%M%S}"


def dataset_export(
    *,
    project: Project,
    options: ExportOptions,
    name: str | None = None,
    user: AbstractBaseUser | None = None,
    job: Any = None,
    progress: Progress | None = None,
) -> DatasetVersion:
    """Export the project to a zip and keep it as a named DatasetVersion (manifest, SHA-256, size).

    An unnamed export gets `<project>-<format>-<time>`, with `-2`, `-3`… when exports started in
    the same second took that name first; a name the caller chose is refused if it is taken.
    """
    chosen = (name or "").strip()
    name = chosen or _default_name(project, options.format)
    if chosen and DatasetVersion.objects.filter(project=project, name=name).exists():
        raise DomainError(f"A dataset version named {name!r} already exists in this project.")
    with tempfile.TemporaryFile(dir=tmp_root()) as out:
        manifest = export_write(project=project, options=options, out=out, progress=progress)
        out.seek(0)
        sha = hashlib.sha256()
        size = 0
        for block in iter(lambda: out.read(1 << 20), b""):
            sha.update(block)
            size += len(block)
        out.seek(0)
        version = DatasetVersion(
            project=project, name=name, format=options.format, filters=options.as_dict(), manifest=manifest,
            sha256=sha.hexdigest(), size=size, job=job, created_by=user if user and user.is_authenticated else None,
        )
        version.file.save(f"{slugify(name) or 'dataset'}-{sha.hexdigest()[:8]}.zip", File(out), save=False)
    try:
        _version_insert(version, renumber=not chosen)
    except BaseException:
        default_storage.delete(version.file.name)
        raise
    return version


def _version_insert(version: DatasetVersion, *, renumber: bool) -> None:
    """Insert the version; the unique key on (project, name), not an earlier look-up, decides who
    gets a name when exports finish at the same moment. `renumber`: take the next free `-n`."""
    base = version.name
    for attempt in range(2, 102):
        try:
            with transaction.atomic():
                version.save(force_insert=True)
            return
        except IntegrityError:
            if not DatasetVersion.objects.filter(project=version.project, name=version.name).exists():
                raise  # another constraint
            if not renumber:
                raise DomainError(f"A dataset version named {version.name!r} already exists in this project.") from None
        version.name = f"{base[:195]}-{attempt}"
    raise DomainError(f"Too many dataset versions named {base!r}…; give the export a name.")


def dataset_version_delete(*, version: DatasetVersion) -> None:
    name = version.file.name
    with transaction.atomic():
        version.delete()
        transaction.on_commit(lambda: default_storage.delete(name))

