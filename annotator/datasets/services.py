"""Writes of the datasets app: all-or-nothing imports of COCO / VOC / LabelMe, streamed exports.

Imports read the whole dataset with the ``ml.formats`` readers and check every image before
anything is written; then labels, images and annotations are created in one transaction and the
stored files are removed again if anything fails. Exports walk the images in chunks (a bounded
number of rows in memory at any time), stream the annotation JSON to a temporary file, and keep
the zip as a DatasetVersion with a manifest and checksums.
"""
from __future__ import annotations

import hashlib
import json
import math
import shutil
import tempfile
import zipfile
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify

from annotator.annotations.attributes import attributes_coerce
from annotator.annotations.models import Annotation, GeometryKind, Prediction, RevisionAction, Source
from annotator.annotations.services import annotations_replace
from annotator.core.errors import DomainError, Forbidden
from annotator.core.files import domain_error, temp_folder, tmp_root, zip_open
from annotator.images.imaging import image_decode, image_size_check
from annotator.images.models import Image, ImageStatus
from annotator.images.services import files_delete, image_store
from annotator.jobs.models import Job, JobKind
from annotator.jobs.services import job_start
from annotator.projects.models import Label, Project
from annotator.projects.services import label_create
from ml.formats import (
    Dataset,
    DatasetImage,
    DatasetInstance,
    FormatError,
    find_coco_images_dir,
    find_dataset_root,
    iter_files,
    read_coco,
    read_labelme,
    read_voc,
    write_coco,
    write_coco_results,
    write_voc,
)
from ml.formats.coco import looks_like_coco
from ml.formats.model import RepairNote
from ml.formats.paths import resolve_in

from .models import DatasetVersion, ExportFormat

Progress = Callable[[int, int, str], None]

IMPORT_FORMATS = ("coco", "voc", "labelme")
IMPORT_STATUSES = {
    "new": ImageStatus.NEW,
    "accepted": ImageStatus.ACCEPTED,  # seeds training data
    "submitted": ImageStatus.SUBMITTED,  # proposals for reviewers
}
EXPORT_CHUNK = 500  # image rows per database round trip during an export (objects are streamed)


# --------------------------------------------------------------------------------------------
# Import
# --------------------------------------------------------------------------------------------


@dataclass
class ImportOptions:
    """What the user chose for an import."""

    status: str = "new"
    images_dir: Path | None = None
    label_map: dict[str, str] = field(default_factory=dict)  # source label → project label name
    create_labels: bool = True

    @classmethod
    def from_dict(cls, options: dict[str, Any]) -> ImportOptions:
        status = options.get("status") or "new"
        if status not in IMPORT_STATUSES:
            raise DomainError(f"status must be one of {', '.join(IMPORT_STATUSES)}, not {status!r}")
        label_map = options.get("label_map") or {}
        if not isinstance(label_map, dict) or not all(
            isinstance(k, str) and isinstance(v, str) and v.strip() for k, v in label_map.items()
        ):
            raise DomainError("label_map must map source label names to project label names")
        images_dir = options.get("images_dir")
        if images_dir and not Path(images_dir).is_dir():
            raise DomainError(f"images_dir {Path(images_dir).name!r}: no such folder")
        return cls(
            status=status,
            images_dir=Path(images_dir).resolve() if images_dir else None,
            label_map={k: v.strip() for k, v in label_map.items()},
            create_labels=bool(options.get("create_labels", True)),
        )


def _coco_files(root: Path) -> list[Path]:
    if root.is_file():
        return [root]
    candidates = [p for p in iter_files(root, ".json") if looks_like_coco(p)]
    # A COCO folder with several tasks (captions, keypoints, panoptic...) has the instances
    # files for what we import; anything else would be read as objects without outlines.
    instances = [p for p in candidates if p.name.startswith("instances")]
    return instances or candidates


def _read_coco_tree(root: Path, images_dir: Path | None) -> Dataset:
    files = _coco_files(root)
    if not files:
        raise DomainError(f"{root.name}: no COCO annotation file (a .json with images, annotations and categories) found")
    base = root if root.is_dir() else root.parent
    labels: list[str] = []
    images: list[DatasetImage] = []
    warnings: list[str] = []
    repairs: list[RepairNote] = []
    for json_path in files:
        display = json_path.relative_to(base).as_posix()
        dataset = read_coco(json_path, display_name=display)
        folder = images_dir or find_coco_images_dir(json_path, [image.file_name for image in dataset.images])
        for image in dataset.images:
            # The name stays inside the image folder (links included), whatever the JSON says.
            path = resolve_in(folder, image.file_name, file=display, entry=f"image {image.source_id}: file_name") if folder is not None else None
            if path is None or not path.is_file():
                raise FormatError(display, f"image {image.source_id}: image file {image.file_name!r} not found"
                                  + (f" in {folder.name or '.'}/" if folder is not None else " (looked next to the JSON and in images/)"))
            image.path = path
            if len(files) > 1:
                image.attributes.setdefault("subset", json_path.stem.removeprefix("instances_"))
        labels += [label for label in dataset.labels if label not in labels]
        images += dataset.images
        warnings += dataset.warnings
        repairs += dataset.repairs
    return Dataset(labels=labels, images=images, warnings=warnings, repairs=repairs)


def dataset_read(fmt: str, path: Path, *, images_dir: Path | None, workdir: Path) -> tuple[Dataset, Path]:
    """Read a dataset (a file, a folder or a zip, which is extracted safely into ``workdir``).

    Returns the dataset and its root folder. Broken input raises DomainError naming the file.
    """
    if fmt not in IMPORT_FORMATS:
        raise DomainError(f"Unknown dataset format {fmt!r}; use one of {', '.join(IMPORT_FORMATS)}")
    try:
        if path.is_file() and path.suffix.lower() == ".zip":
            target = workdir / "extracted"
            with zip_open(path, name=path.name) as archive:
                archive.extract(target)
            root = find_dataset_root(target)
        else:
            root = path
        if fmt == "coco":
            dataset = _read_coco_tree(root, images_dir)
        elif fmt == "voc":
            dataset = read_voc(root)
        else:
            dataset = read_labelme(root)
        if fmt != "coco" and images_dir is not None:
            for image in dataset.images:
                if image.path is None and image.embedded_loader is None:
                    candidate = resolve_in(images_dir, image.file_name, file=image.file_name, entry="image")
                    if candidate.is_file():
                        image.path = candidate
    except FormatError as exc:
        raise domain_error(exc) from None
    return dataset, root if root.is_dir() else root.parent


@dataclass
class _Planned:
    """One dataset image after the check pass: where it goes and with which objects."""

    image: DatasetImage
    checksum: str
    existing: Image | None = None
    skipped_name: str | None = None


def _resolve_labels(project: Project, dataset: Dataset, options: ImportOptions) -> tuple[dict[str, str], list[str]]:
    """Source label → project label name, and the project labels to create."""
    existing = set(project.labels.values_list("name", flat=True))
    in_use = {inst.label for image in dataset.images for inst in image.instances}
    used = [label for label in dataset.labels if label in in_use]
    unknown_keys = set(options.label_map) - set(dataset.labels)
    if unknown_keys:
        raise DomainError(f"label_map names labels that are not in the dataset: {', '.join(sorted(unknown_keys))}")
    mapping = {label: options.label_map.get(label, label) for label in used}
    to_create = [name for name in dict.fromkeys(mapping.values()) if name not in existing]
    if to_create and not options.create_labels:
        raise DomainError(
            f"The project has no label {to_create[0]!r}"
            + (f" (and {len(to_create) - 1} more)" if len(to_create) > 1 else "")
            + "; map it to an existing label or allow creating labels."
        )
    return mapping, to_create


def _check_images(project: Project, dataset: Dataset, progress: Progress | None, skipped: list[str]) -> list[_Planned]:
    """Decode every image once (not kept in memory) and check it matches its annotations.

    Identical copies of one picture without objects are left out and their names added to ``skipped``.
    """
    by_checksum: dict[str, _Planned] = {}
    existing = {image.checksum: image for image in Image.objects.filter(project=project).only("id", "checksum", "version", "width", "height")}
    with_annotations = set(
        Annotation.objects.filter(image__project=project).values_list("image_id", flat=True).distinct()
    ) if existing else set()
    planned: list[_Planned] = []
    total = len(dataset.images)
    for index, image in enumerate(dataset.images):
        name = image.file_name
        try:
            if image.path is not None:
                image_size_check(name, image.path.stat().st_size)
            data = image.read_bytes()
        except OSError as exc:
            raise DomainError(f"{name}: cannot read the image file ({exc.strerror})") from None
        if data is None:
            raise DomainError(f"{name}: image file not found (give the image folder with --images / images_dir)")
        decoded = image_decode(data, name=name)
        if (decoded.width, decoded.height) != (image.width, image.height):
            raise DomainError(
                f"{name}: the image is {decoded.width}x{decoded.height} but its annotations are for {image.width}x{image.height}"
            )
        twin = by_checksum.get(decoded.checksum)
        if twin is not None:
            # A project holds each picture once. A copy without objects is skipped (and said so);
            # two copies with different objects cannot be merged silently.
            if image.instances and twin.image.instances:
                raise DomainError(f"{name}: the same image as {twin.image.file_name}, and both have annotations")
            if image.instances:
                twin.image, twin.skipped_name = image, twin.image.file_name
            else:
                twin.skipped_name = name
            skipped.append(twin.skipped_name)
            continue
        for k, inst in enumerate(image.instances):
            if inst.score is not None and not (math.isfinite(inst.score) and 0 <= inst.score <= 1):
                raise DomainError(f"{name}: object {inst.source_id if inst.source_id is not None else k}: score {inst.score} is not between 0 and 1")
        match = existing.get(decoded.checksum)
        if match is not None and match.pk in with_annotations and image.instances:
            raise DomainError(f"{name}: this image is already in the project with annotations; nothing was imported")
        plan = _Planned(image=image, checksum=decoded.checksum, existing=match)
        by_checksum[decoded.checksum] = plan
        planned.append(plan)
        if progress:
            progress(index + 1, 2 * total, "Checking images and annotations")
    return planned


def _store_image(*, project: Project, image: DatasetImage, written: list[str]) -> Image:
    decoded = image_decode(image.read_bytes() or b"", name=image.file_name)
    return image_store(project=project, name=image.file_name, decoded=decoded, written=written)


#: Repairs and warnings listed in an import's report (all of them are counted).
REPORT_LIMIT = 200


def _source_name(instance: DatasetInstance, index: int) -> str:
    return str(instance.source_id) if instance.source_id is not None else f"#{index}"


def _items(
    instances: list[DatasetInstance], label_ids: dict[str, int], *, schemas: dict[int, Any] | None = None,
    warnings: list[str] | None = None, where: str = "",
) -> list[dict[str, Any]]:
    """Rows for annotations_replace; attribute values are made to fit the label's schema ("true" → true,
    "3" → 3), and one that cannot is left out with a warning (one odd value does not stop an import)."""
    items = []
    for z, inst in enumerate(instances):
        attributes = dict(inst.attributes)
        schema = (schemas or {}).get(label_ids[inst.label])
        if schema:
            attributes, problems = attributes_coerce(attributes, schema)
            if warnings is not None:
                warnings += [f"{where}: object {_source_name(inst, z)}: {problem}" for problem in problems]
        if inst.iscrowd:
            attributes["iscrowd"] = True  # kept so that an export writes it back as a crowd region
        items.append({
            "label": label_ids[inst.label], "geometry": inst.geometry, "z_order": z, "source": Source.IMPORT,
            "score": inst.score, "attributes": attributes,
        })
    return items


def dataset_import(
    *,
    project: Project,
    fmt: str,
    path: Path,
    options: ImportOptions,
    user: AbstractBaseUser | None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Import a COCO / VOC / LabelMe dataset into ``project``, all or nothing.

    Images already in the project (same pixels) without annotations receive the imported
    objects; with annotations, the import is refused. Imported images get ``options.status``:
    new, accepted (training data) or submitted (proposals for the review queue).
    """
    with temp_folder("import") as workdir:
        dataset, _root = dataset_read(fmt, path, images_dir=options.images_dir, workdir=workdir)
        if not dataset.images:
            raise DomainError(f"{path.name}: the dataset has no images")
        mapping, to_create = _resolve_labels(project, dataset, options)
        skipped: list[str] = []
        planned = _check_images(project, dataset, progress, skipped)
        status = IMPORT_STATUSES[options.status]
        total = len(planned)
        written: list[str] = []
        created = matched = annotation_count = 0
        # What the readers repaired (file and object named), then what the save simplified.
        repairs: list[str] = [str(note) for note in dataset.repairs]
        coerced: list[str] = []  # attribute values that did not fit the label's schema
        try:
            with transaction.atomic():
                for name in to_create:
                    source = next((s for s, t in mapping.items() if t == name), name)
                    label_create(project=project, name=name, color=dataset.label_colors.get(source))
                label_ids = dict(Label.objects.filter(project=project).values_list("name", "pk"))
                schemas = dict(Label.objects.filter(project=project).values_list("pk", "attributes_schema"))
                source_ids = {source: label_ids[target] for source, target in mapping.items()}
                now = timezone.now()
                for index, plan in enumerate(planned):
                    if plan.existing is not None:
                        row = Image.objects.get(pk=plan.existing.pk)
                        matched += 1
                    else:
                        row = _store_image(project=project, image=plan.image, written=written)
                        created += 1
                    if plan.image.instances:
                        try:
                            row, rows, repaired = annotations_replace(
                                image=row, user=user, base_version=row.version,
                                items=_items(plan.image.instances, source_ids, schemas=schemas, warnings=coerced, where=plan.image.file_name),
                                action=RevisionAction.IMPORT,
                                simplify=True,  # over the vertex limit: simplified and reported, not refused
                            )
                        except DomainError as exc:
                            raise DomainError(f"{plan.image.file_name}: {exc.detail}") from None
                        annotation_count += len(rows)
                        repairs += [
                            f"{plan.image.file_name}: object {_source_name(plan.image.instances[r['index']], r['index'])}: {r['message']}"
                            for r in repaired
                        ]
                    if status != ImageStatus.NEW or plan.existing is None:
                        changes: dict[str, Any] = {"status": status}
                        if status == ImageStatus.SUBMITTED:
                            changes["submitted_at"] = now
                        Image.objects.filter(pk=row.pk).update(**changes)
                    if progress:
                        progress(total + index + 1, 2 * total, "Storing images and annotations")
        except IntegrityError:
            files_delete(written)
            raise DomainError("Another upload added the same images at the same time; try again.") from None
        except BaseException:
            # Cancelled, broken or crashed: the rows rolled back, the files must go too.
            files_delete(written)
            raise
    return {
        "created_count": created,
        "matched_count": matched,
        "annotation_count": annotation_count,
        "labels_created": to_create,
        "label_map": mapping,
        "status": options.status,
        "repaired_count": len(repairs),
        "repairs": repairs[:REPORT_LIMIT],
        "warnings": (
            dataset.warnings + coerced + [f"{name}: the same picture as another image of the dataset, skipped" for name in skipped]
        )[:REPORT_LIMIT],
    }


# --------------------------------------------------------------------------------------------
# Export
# --------------------------------------------------------------------------------------------


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
    Both end with ``manifest.json`` (counts, labels, filters, SHA-256 of every member).
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

            def on_voc_image(image: Image, item: DatasetImage) -> None:
                count(image, item)
                # write_voc asks for the bytes of the image it was just handed: keep only that one.
                stored.clear()
                stored[image.pk] = image
                tick("Writing Pascal VOC")

            def image_bytes(item: DatasetImage) -> bytes:
                with stored[int(item.source_id)].file.open("rb") as fh:  # type: ignore[arg-type]
                    return fh.read()

            try:
                stats_voc = write_voc(
                    _dataset_images(project, options, labels=labels, namer=_Namer(project), on_image=on_voc_image),
                    labels=label_names, out=archive, image_bytes_for=image_bytes if options.include_images else None,
                )
            except ValueError as exc:
                raise DomainError(f"Cannot write Pascal VOC: {exc}") from None
            result.update(images=stats_voc.images, annotations=stats_voc.objects)
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


def upload_store(file: IO[bytes], *, name: str) -> str:
    """Keep an uploaded dataset in storage until the import job (maybe on another machine) reads it."""
    suffix = _suffix(name) if _suffix(name) in (".zip", ".json") else ".zip"
    return default_storage.save(f"imports/{timezone.now():%Y%m%d}/{hashlib.sha256(name.encode()).hexdigest()[:8]}{suffix}", File(file))


def upload_fetch(storage_name: str, dest_dir: Path) -> Path:
    """Copy a stored upload to a local file (storage may be remote) and return its path."""
    target = dest_dir / PurePosixPath(storage_name).name
    with default_storage.open(storage_name, "rb") as src, open(target, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
    return target



# --------------------------------------------------------------------------------------------
# Starting the jobs (one path for the API, the pages and the commands)
# --------------------------------------------------------------------------------------------


def _refuse_read_only(project: Project) -> None:
    from annotator.core.access import ARCHIVED_REASON, DELETING_REASON

    if project.delete_requested_at is not None:
        raise Forbidden(DELETING_REASON)
    if project.archived_at is not None:
        raise Forbidden(ARCHIVED_REASON)


def dataset_import_start(
    *,
    project: Project,
    fmt: str,
    user: AbstractBaseUser | None,
    options: dict[str, Any],
    path: Path | None = None,
    upload: str | None = None,
    filename: str = "",
    enqueue: bool = True,
) -> Job:
    """Check the options and start an import job: of a file or folder on the worker's machine
    (commands), or of an upload kept in storage (API, pages), which is removed if the job cannot start."""
    from .importers import IMPORTERS

    try:
        if fmt not in IMPORTERS:
            raise DomainError(f"Unknown dataset format {fmt!r}; use one of {', '.join(sorted(IMPORTERS))}")
        _refuse_read_only(project)
        ImportOptions.from_dict(options)  # refuse bad options now, not in the worker
        params: dict[str, Any] = {"format": fmt, "options": options}
        if upload is not None:
            params.update(upload=upload, filename=filename)
        elif path is not None:
            params["path"] = str(path)
        else:
            raise DomainError("Nothing to import: give a file, a folder or an upload.")
        with transaction.atomic():
            return job_start(kind=JobKind.IMPORT, project=project, params=params, user=user, enqueue=enqueue)
    except BaseException:
        if upload is not None:
            default_storage.delete(upload)
        raise


def dataset_export_start(*, project: Project, params: dict[str, Any], user: AbstractBaseUser | None, enqueue: bool = True) -> Job:
    """Check an export's options (ExportOptions fields and an optional version name) and start its job.

    An archived project can be exported: an export changes nothing in it.
    """
    from annotator.core.access import DELETING_REASON

    if project.delete_requested_at is not None:
        raise Forbidden(DELETING_REASON)
    ExportOptions.from_dict(params)
    name = (params.get("name") or "").strip()
    if name and DatasetVersion.objects.filter(project=project, name=name).exists():
        raise DomainError(f"A dataset version named {name!r} already exists in this project.")
    with transaction.atomic():
        return job_start(kind=JobKind.EXPORT, project=project, params={**params, "name": name}, user=user, enqueue=enqueue)
