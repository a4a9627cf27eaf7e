"""Dataset imports (COCO / VOC / LabelMe with their annotations), all or nothing.

Imports read the whole dataset with the ``ml.formats`` readers and check every image before
anything is written; then labels, images and annotations are created in one transaction and the
stored files are removed again if anything fails.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction

from annotator.annotations.attributes import attributes_coerce
from annotator.annotations.models import Annotation, RevisionAction, Source
from annotator.annotations.services import annotations_replace
from annotator.core.errors import DomainError
from annotator.core.files import domain_error, temp_folder, zip_open
from annotator.images import workflow
from annotator.images.imaging import image_decode, image_size_check
from annotator.images.models import Image, ImageStatus
from annotator.images.services import files_delete, image_store
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
        actor = workflow.Actor.of(user, project)
        try:
            with transaction.atomic():
                for name in to_create:
                    source = next((s for s, t in mapping.items() if t == name), name)
                    label_create(project=project, name=name, color=dataset.label_colors.get(source))
                label_ids = dict(Label.objects.filter(project=project).values_list("name", "pk"))
                schemas = dict(Label.objects.filter(project=project).values_list("pk", "attributes_schema"))
                source_ids = {source: label_ids[target] for source, target in mapping.items()}
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
                    decision = workflow.decide(row, workflow.IMPORT_ACTIONS[status], actor)
                    if not decision.allowed:
                        raise workflow.WorkflowError(decision)
                    if decision.to != row.status or len(decision.changes) > 1:
                        Image.objects.filter(pk=row.pk).update(**decision.changes)
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

