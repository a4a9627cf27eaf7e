"""Dataset imports (COCO / VOC / LabelMe with their annotations), all or nothing.

The dataset is read whole with the ``ml.formats`` readers; its images are handled in chunks
(decoded once, stored, objects cleaned, no row written), which several worker processes may
share; then every row is written in one transaction with bulk inserts, and the stored files are
removed again if anything fails. See docs/imports.md.
"""
from __future__ import annotations

import dataclasses
import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import ProtectedError
from django.utils import timezone

from annotator.annotations.attributes import attributes_coerce, label_schemas
from annotator.annotations.models import Annotation, Revision, RevisionAction, Source
from annotator.annotations.services import CleanAnnotation, annotation_sets_insert, annotations_clean, annotations_replace
from annotator.core.db import rows_insert, table_statistics_refresh
from annotator.core.errors import DomainError
from annotator.core.files import domain_error, temp_folder, zip_open
from annotator.images import workflow
from annotator.images.imaging import DecodedImage, image_decode, image_size_check
from annotator.images.models import Image, ImageStatus
from annotator.images.services import files_delete, image_files_store
from annotator.learning.services.shapes import shape_learn_on_accept
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
)
from ml.formats.coco import looks_like_coco
from ml.formats.model import RepairNote
from ml.formats.paths import resolve_in

Progress = Callable[[int, int, str], None]

IMPORT_FORMATS = ("coco", "voc", "labelme")
IMPORT_STATUSES = {
    "new": ImageStatus.NEW,
    "accepted": ImageStatus.ACCEPTED,  # seeds training data
    "submitted": ImageStatus.SUBMITTED,  # proposals for reviewers
}




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


@dataclass
class ChunkImage:
    """What a chunk made of one dataset image: its stored files and its objects, checked.

    ``error`` is the image's own refusal (unreadable, not an image, another size than its
    annotations say); ``score_error`` and ``clean_error`` are refusals that only count if the
    image is imported (a copy of another picture may be skipped), in the order the old one-pass
    import met them.
    """

    position: int
    checksum: str = ""
    file: str = ""
    thumbnail: str = ""
    error: str | None = None
    score_error: str | None = None
    clean_error: str | None = None
    objects: list[CleanAnnotation] = field(default_factory=list)
    written: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {**{name: getattr(self, name) for name in _CHUNK_FIELDS},
                "objects": [{**{f: getattr(c, f) for f in _CLEAN_FIELDS}, "uid": str(c.uid)} for c in self.objects]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ChunkImage:
        objects = [CleanAnnotation(**{**obj, "uid": uuid.UUID(obj["uid"])}) for obj in data["objects"]]
        return cls(**{name: data[name] for name in _CHUNK_FIELDS}, objects=objects)


_CHUNK_FIELDS = ("position", "checksum", "file", "thumbnail", "error", "score_error", "clean_error", "written")
_CLEAN_FIELDS = tuple(f.name for f in fields(CleanAnnotation))

#: Reads the encoded bytes of the dataset image at a position (None: not found).
ImageReader = Callable[[int], "bytes | None"]
#: Runs the chunks (here, one after the other, or spread over worker processes) and returns
#: every chunk's images; ``progress(done)`` counts images done.
ChunkRunner = Callable[[Project, list[dict[str, Any]], ImageReader, Callable[[int], None]], list[ChunkImage]]


#: An import is cut into at least this many chunks (while they hold CHUNK_MIN_IMAGES each), so that
#: several workers share it evenly: with 5 chunks for 2 workers, one runs 3 and the other waits.
CHUNK_COUNT = 16
CHUNK_MIN_IMAGES = 25


def chunk_size(total: int) -> int:
    """Images per chunk for an import of ``total``: ANNOTATOR_IMPORT_CHUNK_IMAGES at most, smaller
    for a smaller import (CHUNK_COUNT chunks, of CHUNK_MIN_IMAGES images at least)."""
    largest = max(1, settings.ANNOTATOR_IMPORT_CHUNK_IMAGES)
    return min(largest, max(CHUNK_MIN_IMAGES, math.ceil(total / CHUNK_COUNT)))


def chunk_spec(dataset: Dataset, positions: range, items: list[list[dict[str, Any]]], root: Path | None) -> dict[str, Any]:
    """A chunk as plain data (it may travel to another process as a job's parameters).

    ``member`` is the image's path inside the dataset's folder or zip (None for images whose
    pixels are embedded in the annotation files, which only the process that read them has).
    """
    images = []
    for position in positions:
        image = dataset.images[position]
        member = None
        if root is not None and image.path is not None:
            try:
                member = Path(image.path).resolve().relative_to(root.resolve()).as_posix()
            except ValueError:
                member = None  # an images_dir outside the dataset
        images.append({"position": position, "name": image.file_name, "width": image.width, "height": image.height,
                       "member": member, "items": items[position]})
    return {"images": images}


def import_chunk(*, project: Project, spec: dict[str, Any], read: ImageReader,
                 progress: Callable[[int], None] | None = None) -> list[ChunkImage]:
    """The expensive part of an import for one chunk, without writing a row: each image decoded
    once (checksum, one thumbnail), both files stored, its objects cleaned as a save would.

    Idempotent: stored names are the checksum, so a retried chunk rewrites the same files. An
    image already in the project is not stored again (its file belongs to that image). Stops at
    the first image that is refused (``ChunkImage.error``).
    """
    entries = spec["images"]
    done: list[ChunkImage] = []
    decoded_all: list[tuple[dict[str, Any], DecodedImage] | None] = []
    for entry in entries:
        name = entry["name"]
        result = ChunkImage(position=entry["position"])
        done.append(result)
        try:
            data = read(entry["position"])
            if data is None:
                raise DomainError(f"{name}: image file not found (give the image folder with --images / images_dir)")
            decoded = image_decode(data, name=name)
            if (decoded.width, decoded.height) != (entry["width"], entry["height"]):
                raise DomainError(
                    f"{name}: the image is {decoded.width}x{decoded.height} but its annotations are for {entry['width']}x{entry['height']}"
                )
        except DomainError as exc:
            result.error = exc.detail
            decoded_all.append(None)
            break
        result.checksum = decoded.checksum
        # Only the thumbnail stays in memory until the chunk is stored (the file is read again
        # then), unless the pixels were turned upright and re-encoded.
        decoded_all.append((entry, dataclasses.replace(decoded, content=b"") if decoded.content is data else decoded))
    if done and done[-1].error is not None:
        return done  # the import fails at this image: nothing of the chunk is worth storing
    existing = set(Image.objects.filter(project=project, checksum__in=[r.checksum for r in done])
                   .values_list("checksum", flat=True))
    probe = Image(project=project)
    try:
        _chunk_store(project=project, done=done, decoded_all=decoded_all, existing=existing, read=read, probe=probe, progress=progress)
    except BaseException:
        # Cancelled or broken half-way: nobody else knows what this chunk stored.
        files_delete([name for result in done for name in result.written])
        raise
    return done


def _chunk_store(*, project: Project, done: list[ChunkImage], decoded_all: list[tuple[dict[str, Any], DecodedImage] | None],
                 existing: set[str], read: ImageReader, probe: Image, progress: Callable[[int], None] | None) -> None:
    schemas = label_schemas(project)  # also what label_schema reads, from the project object
    for count, (result, pair) in enumerate(zip(done, decoded_all), start=1):
        if pair is None:
            continue
        entry, decoded = pair
        if decoded.checksum not in existing:
            if not decoded.content:
                decoded = dataclasses.replace(decoded, content=read(entry["position"]) or b"")
            result.file, result.thumbnail = image_files_store(project=project, decoded=decoded, written=result.written)
        items = entry["items"]
        for item in items:
            score = item["score"]
            if score is not None and not (math.isfinite(score) and 0 <= score <= 1):
                result.score_error = f"{entry['name']}: object {item['source_name']}: score {score} is not between 0 and 1"
                break
        if items:
            probe.width, probe.height = decoded.width, decoded.height
            try:
                result.objects = annotations_clean(image=probe, items=[_item(i) for i in items], simplify=True, schemas=schemas)
            except DomainError as exc:
                result.clean_error = f"{entry['name']}: {exc.detail}"
        if progress:
            progress(count)


def _item(item: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in item.items() if key != "source_name"}


def chunks_run_here(project: Project, specs: list[dict[str, Any]], read: ImageReader,
                    progress: Callable[[int], None]) -> list[ChunkImage]:
    """The chunks one after the other in this process (an import without a job, a small one)."""
    results: list[ChunkImage] = []
    for spec in specs:
        before = len(results)
        results += import_chunk(project=project, spec=spec, read=read, progress=lambda n, before=before: progress(before + n))
        if results[-1].error is not None:
            break  # the import fails there: the later chunks cannot change that
    return results


@dataclass
class _Planned:
    """One dataset image after the check: where it goes and with which objects."""

    image: DatasetImage
    result: ChunkImage  # of `image`: a later copy with objects takes an earlier one's place
    existing: Image | None = None
    skipped_name: str | None = None


def _plan(project: Project, dataset: Dataset, results: dict[int, ChunkImage], skipped: list[str]) -> list[_Planned]:
    """Walk the chunks' images in dataset order, refusing what the one-pass import refused, in the
    same order: the first refused image, copies of one picture both with objects, objects with a
    score out of range, images already in the project with annotations.

    Identical copies of one picture without objects are left out and their names added to ``skipped``.
    """
    by_checksum: dict[str, _Planned] = {}
    existing = {image.checksum: image for image in Image.objects.filter(project=project).only("id", "checksum", "version", "width", "height")}
    with_annotations = set(
        Annotation.objects.filter(image__project=project).values_list("image_id", flat=True).distinct()
    ) if existing else set()
    planned: list[_Planned] = []
    for position, image in enumerate(dataset.images):
        result = results[position]  # chunks stop at their first refused image, which comes first here
        name = image.file_name
        if result.error is not None:
            raise DomainError(result.error)
        twin = by_checksum.get(result.checksum)
        if twin is not None:
            # A project holds each picture once. A copy without objects is skipped (and said so);
            # two copies with different objects cannot be merged silently.
            if image.instances and twin.image.instances:
                raise DomainError(f"{name}: the same image as {twin.image.file_name}, and both have annotations")
            if image.instances:
                twin.image, twin.skipped_name = image, twin.image.file_name
                twin.result = result
            else:
                twin.skipped_name = name
            skipped.append(twin.skipped_name)
            continue
        if result.score_error is not None:
            raise DomainError(result.score_error)
        match = existing.get(result.checksum)
        if match is not None and match.pk in with_annotations and image.instances:
            raise DomainError(f"{name}: this image is already in the project with annotations; nothing was imported")
        plan = _Planned(image=image, result=result, existing=match)
        by_checksum[result.checksum] = plan
        planned.append(plan)
    return planned


def _labels_create(project: Project, dataset: Dataset, mapping: dict[str, str], to_create: list[str]) -> list[str]:
    """Create the labels the import needs before its chunks run (they name them by id); the ones
    another attempt of this import created already are taken as they are. Returns those created."""
    created = []
    with transaction.atomic():
        existing = set(project.labels.values_list("name", flat=True))
        for name in to_create:
            if name in existing:
                continue
            source = next((s for s, t in mapping.items() if t == name), name)
            label_create(project=project, name=name, color=dataset.label_colors.get(source))
            created.append(name)
    return created


def _labels_remove(project: Project, names: list[str]) -> None:
    """Undo _labels_create after a failed import, unless someone has used a label meanwhile."""
    try:
        Label.objects.filter(project=project, name__in=names).delete()
    except ProtectedError:
        pass


def dataset_import(
    *,
    project: Project,
    fmt: str,
    path: Path,
    options: ImportOptions,
    user: AbstractBaseUser | None,
    progress: Progress | None = None,
    run_chunks: ChunkRunner = chunks_run_here,
) -> dict[str, Any]:
    """Import a COCO / VOC / LabelMe dataset into ``project``, all or nothing.

    Images already in the project (same pixels) without annotations receive the imported
    objects; with annotations, the import is refused. Imported images get ``options.status``:
    new, accepted (training data) or submitted (proposals for the review queue).

    The dataset is read here; its images are handled in chunks by ``run_chunks`` (decoded once,
    stored, objects cleaned: no row written), then every row is written here in one transaction
    with bulk inserts. A failure anywhere removes the stored files and the labels it created.
    """
    with temp_folder("import") as workdir:
        dataset, _root = dataset_read(fmt, path, images_dir=options.images_dir, workdir=workdir)
        if not dataset.images:
            raise DomainError(f"{path.name}: the dataset has no images")
        mapping, to_create = _resolve_labels(project, dataset, options)
        status = IMPORT_STATUSES[options.status]
        actor = workflow.Actor.of(user, project)
        total = len(dataset.images)
        written: list[str] = []
        created_labels = _labels_create(project, dataset, mapping, to_create)
        try:
            label_ids = dict(Label.objects.filter(project=project).values_list("name", "pk"))
            schemas = dict(Label.objects.filter(project=project).values_list("pk", "attributes_schema"))
            source_ids = {source: label_ids[target] for source, target in mapping.items()}
            coerced_at: list[list[str]] = []  # attribute values that did not fit the label's schema, per image
            items: list[list[dict[str, Any]]] = []
            for image in dataset.images:
                coerced_at.append([])
                items.append(_items(image.instances, source_ids, schemas=schemas, warnings=coerced_at[-1], where=image.file_name))
                for k, (item, inst) in enumerate(zip(items[-1], image.instances)):
                    item["source_name"] = inst.source_id if inst.source_id is not None else k  # for the score refusal
            base = workdir / "extracted" if path.is_file() and path.suffix.lower() == ".zip" else (path if path.is_dir() else path.parent)
            size = chunk_size(total)
            specs = [chunk_spec(dataset, range(start, min(start + size, total)), items, base) for start in range(0, total, size)]

            def chunk_progress(done: int) -> None:
                if progress:
                    progress(done, 2 * total, "Checking images and annotations")

            results = run_chunks(project, specs, lambda position: _read_image(dataset.images[position]), chunk_progress)
            for result in results:
                written += result.written
            skipped: list[str] = []
            planned = _plan(project, dataset, {result.position: result for result in results}, skipped)
            report = _write(project=project, planned=planned, items=items, status=status, actor=actor, user=user,
                            progress=progress, total=total)
        except IntegrityError:
            files_delete(written)
            _labels_remove(project, created_labels)
            raise DomainError("Another upload added the same images at the same time; try again.") from None
        except BaseException:
            # Cancelled, broken or crashed: the rows rolled back, the files must go too.
            files_delete(written)
            _labels_remove(project, created_labels)
            raise
        # Files of copies that were skipped, or stored twice under another name: what no row references.
        kept = {name for plan in planned for name in (plan.result.file, plan.result.thumbnail)}
        files_delete([name for name in written if name not in kept])
    table_statistics_refresh(Image, Annotation, Revision)
    if status == ImageStatus.ACCEPTED and report.annotations:
        shape_learn_on_accept(project=project)  # accepted objects came in: maybe enough to learn the box tool's shape
    coerced = [line for plan in planned for line in coerced_at[plan.result.position]]
    return {
        "created_count": report.created,
        "matched_count": report.matched,
        "annotation_count": report.annotations,
        "labels_created": to_create,
        "label_map": mapping,
        "status": options.status,
        "repaired_count": len(dataset.repairs) + len(report.repairs),
        # What the readers repaired (file and object named), then what the save simplified.
        "repairs": ([str(note) for note in dataset.repairs] + report.repairs)[:REPORT_LIMIT],
        "warnings": (
            dataset.warnings + coerced + [f"{name}: the same picture as another image of the dataset, skipped" for name in skipped]
        )[:REPORT_LIMIT],
    }


def _read_image(image: DatasetImage) -> bytes | None:
    """The image's bytes (size checked first), or None; DomainError naming it if it cannot be read."""
    try:
        if image.path is not None:
            image_size_check(image.file_name, image.path.stat().st_size)
        return image.read_bytes()
    except OSError as exc:
        raise DomainError(f"{image.file_name}: cannot read the image file ({exc.strerror})") from None


@dataclass
class _Written:
    created: int = 0
    matched: int = 0
    annotations: int = 0
    repairs: list[str] = field(default_factory=list)


def _write(*, project: Project, planned: list[_Planned], items: list[list[dict[str, Any]]], status: ImageStatus,
           actor: workflow.Actor, user: AbstractBaseUser | None, progress: Progress | None, total: int) -> _Written:
    """Every row of the import in one transaction: new images, their objects and first revisions
    in bulk inserts; images already in the project (rare) through annotations_replace."""
    out = _Written()
    for plan in planned:
        if plan.image.instances and plan.result.clean_error is not None:
            raise DomainError(plan.result.clean_error)
    now = timezone.now()
    author_id = user.pk if user is not None and user.is_authenticated else None
    action = workflow.IMPORT_ACTIONS[status]
    fresh = [plan for plan in planned if plan.existing is None]
    with transaction.atomic():
        rows = []
        if fresh:
            # Every new image starts as new and nobody's: one decision holds for all of them.
            decision = workflow.decide(Image(project=project), action, actor)
            if not decision.allowed:
                raise workflow.WorkflowError(decision)
            for plan in fresh:
                has_objects = bool(plan.image.instances)
                rows.append(Image(
                    project=project, original_name=plan.image.file_name[:500], width=plan.image.width,
                    height=plan.image.height, checksum=plan.result.checksum, file=plan.result.file,
                    thumbnail=plan.result.thumbnail, version=1 if has_objects else 0,
                    annotations_updated_at=now if has_objects else None,
                    annotations_updated_by_id=author_id if has_objects else None, **decision.changes,
                ))
            rows_insert(Image, rows, batch_size=500)  # COPY on PostgreSQL
            out.annotations += annotation_sets_insert(
                sets=[(row, plan.result.objects) for row, plan in zip(rows, fresh) if plan.image.instances],
                author_id=author_id, now=now,
            )
            out.created = len(rows)
        repairs: dict[int, list[str]] = {
            id(plan): _repair_lines(plan, [(k, c.repair) for k, c in enumerate(plan.result.objects) if c.repair is not None])
            for plan in fresh
        }
        if progress:
            progress(total + len(fresh), 2 * total, "Storing images and annotations")
        for plan in planned:
            if plan.existing is None:
                continue
            row = Image.objects.get(pk=plan.existing.pk)
            out.matched += 1
            if plan.image.instances:
                try:
                    row, saved, repaired = annotations_replace(
                        image=row, user=user, base_version=row.version,
                        items=[_item(i) for i in items[plan.result.position]],
                        action=RevisionAction.IMPORT,
                        simplify=True,  # over the vertex limit: simplified and reported, not refused
                    )
                except DomainError as exc:
                    raise DomainError(f"{plan.image.file_name}: {exc.detail}") from None
                out.annotations += len(saved)
                repairs[id(plan)] = _repair_lines(plan, [(r["index"], r) for r in repaired])
            decision = workflow.decide(row, action, actor)
            if not decision.allowed:
                raise workflow.WorkflowError(decision)
            if decision.to != row.status or len(decision.changes) > 1:
                Image.objects.filter(pk=row.pk).update(**decision.changes)
        if progress:
            progress(2 * total, 2 * total, "Storing images and annotations")
    out.repairs = [line for plan in planned for line in repairs.get(id(plan), [])]
    return out


def _repair_lines(plan: _Planned, repaired: list[tuple[int, Any]]) -> list[str]:
    return [f"{plan.image.file_name}: object {_source_name(plan.image.instances[k], k)}: {r['message']}" for k, r in repaired]

