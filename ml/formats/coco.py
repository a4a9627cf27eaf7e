"""COCO instances JSON: a validating reader and bounded-memory streaming writers (GT and results)."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from ml import geometry as geo
from ml.formats.archive import json_top_level
from ml.formats.model import (
    Dataset,
    DatasetImage,
    DatasetInstance,
    FormatError,
    PendingGeometry,
    RepairNote,
    normalized_geometries,
)
from ml.formats.paths import clean_path, resolve_in

# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------


def _load_json(path: Path, display: str) -> Any:
    try:
        with open(path, "rb") as fh:
            return json.load(fh)
    except json.JSONDecodeError as exc:
        raise FormatError(display, f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from exc
    except UnicodeDecodeError as exc:
        raise FormatError(display, f"not UTF-8 text ({exc.reason})") from exc
    except OSError as exc:
        raise FormatError(display, f"cannot read file ({exc.strerror})") from exc


def _positive_int(value: Any) -> int | None:
    # bool is an int subclass; "true" is never a valid size or id.
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and value > 0:
        return value
    if isinstance(value, float) and value.is_integer() and value > 0:
        return int(value)
    return None


def _object_id(value: Any) -> int | str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, str)):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def find_coco_images_dir(json_path: str | os.PathLike[str], file_names: Sequence[str]) -> Path | None:
    """Guess where the images of a COCO file live, for the usual layouts.

    Tries, in order: next to the JSON, ``images/`` next to it, and for ``annotations/instances_<subset>.json``
    the folders ``../images/<subset>``, ``../images``, ``../<subset>``, ``..``. The first folder that holds
    the first listed image wins.
    """
    path = Path(json_path)
    here = path.parent
    subset = path.stem.split("_", 1)[1] if "_" in path.stem else path.stem
    candidates = [here, here / "images", here / subset]
    if here.name == "annotations":
        parent = here.parent
        candidates += [parent / "images" / subset, parent / "images", parent / subset, parent]
    probe = next(iter(file_names), None)
    if probe is None:
        return None
    for candidate in candidates:
        # Through the resolver: a link out of the folder is an error, whether its target exists or not.
        if resolve_in(candidate, probe, file=path.name, entry="file_name").is_file():
            return candidate
    return None


def _coco_keys(keys: dict[str, str]) -> bool | None:
    """True/False once the top-level keys decide it, None while they do not yet."""
    if "shapes" in keys or "imagePath" in keys:  # LabelMe
        return False
    if keys.get("images") == "start_array" and ("annotations" in keys or "categories" in keys):
        return True
    return None


def looks_like_coco(path: str | os.PathLike[str]) -> bool:
    """A JSON object with an ``images`` list and ``annotations`` or ``categories`` (not LabelMe's ``shapes``).

    Decided from the top-level keys, parsed as a stream that stops as soon as they decide it; a
    file that breaks off after its image list still counts, for its reader to report where.
    """
    found = json_top_level(path, enough=lambda keys: _coco_keys(keys) is not None)
    if found is None:
        return False
    decided = _coco_keys(found.keys)
    return decided if decided is not None else found.broken and "images" in found.keys


def _segmentation_to_geometry(ann: dict[str, Any], *, display: str, where: str) -> tuple[Any, str, bool]:
    """Geometry for one annotation as written (normalised later, with the whole file), the name
    its repairs go under, and whether it was bbox-only."""
    segm = ann.get("segmentation")
    if segm is None or segm == [] or segm == {}:
        # bbox only (detection-style annotation): import as the box outline so the object is not
        # lost, flagged so that the UI / export can tell it was never a real outline.
        bbox = ann.get("bbox")
        if (
            not isinstance(bbox, list)
            or len(bbox) != 4
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in bbox)
        ):
            raise FormatError(display, f"{where}: no segmentation and no valid bbox")
        x, y, w, h = (float(v) for v in bbox)
        if w <= 0 or h <= 0:
            raise FormatError(display, f"{where}: no segmentation and an empty bbox {bbox}")
        ring = [[x, y], [x + w, y], [x + w, y + h], [x, y + h]]
        return {"type": "polygons", "polygons": [{"exterior": ring, "holes": []}]}, f"{where} (bbox only)", True
    try:
        return geo.coco_geometry(segm), where, False
    except geo.GeometryError as exc:
        raise FormatError(display, f"{where}: {exc}") from exc
    except (ValueError, TypeError) as exc:
        raise FormatError(display, f"{where}: unreadable segmentation ({exc})") from exc


def read_coco(
    json_path: str | os.PathLike[str],
    *,
    images_dir: str | os.PathLike[str] | None = None,
    display_name: str | None = None,
) -> Dataset:
    """Read a COCO instances (or results-with-images) JSON file into a Dataset.

    Labels are the category names in category-id order. With ``images_dir`` every referenced image
    must exist there (FormatError otherwise) and ``DatasetImage.path`` is set. Annotation ``score``
    (results-style files) and a dict ``attributes`` field are kept. Broken content raises
    FormatError naming the file and the annotation / image id. Outlines that cross themselves or
    reach outside the image are repaired (ml.geometry.normalize_geometries) and each repair is
    listed in ``Dataset.repairs``.
    """
    warnings: list[str] = []
    repairs: list[RepairNote] = []
    path = Path(json_path)
    display = display_name or path.name
    data = _load_json(path, display)
    if not isinstance(data, dict):
        raise FormatError(display, "top level must be a JSON object with images, annotations and categories")
    images_raw: Any = data.get("images")
    anns_raw = data.get("annotations", [])
    cats_raw = data.get("categories", [])
    for key, value in (("images", images_raw), ("annotations", anns_raw), ("categories", cats_raw)):
        if not isinstance(value, list):
            raise FormatError(display, f"'{key}' must be a list")

    categories: dict[int | str, str] = {}
    for k, cat in enumerate(cats_raw):
        cid = _object_id(cat.get("id")) if isinstance(cat, dict) else None
        name = cat.get("name") if isinstance(cat, dict) else None
        if cid is None or not isinstance(name, str) or not name.strip():
            raise FormatError(display, f"category {k}: needs an id and a non-empty name")
        if cid in categories:
            raise FormatError(display, f"category {cid}: duplicate category id")
        if name in categories.values():
            raise FormatError(display, f"category {cid}: duplicate category name {name!r}")
        categories[cid] = name
    # Category-id order is what training code sees (contiguous index = rank of the id).
    labels = [categories[cid] for cid in sorted(categories, key=lambda c: (isinstance(c, str), c))]

    base_dir = Path(images_dir) if images_dir is not None else None
    images: dict[int | str, DatasetImage] = {}
    for k, img in enumerate(images_raw):
        if not isinstance(img, dict):
            raise FormatError(display, f"image {k}: must be an object")
        iid = _object_id(img.get("id"))
        if iid is None:
            raise FormatError(display, f"image {k}: missing or invalid id")
        if iid in images:
            raise FormatError(display, f"image {iid}: duplicate image id")
        width, height = _positive_int(img.get("width")), _positive_int(img.get("height"))
        if width is None or height is None:
            raise FormatError(display, f"image {iid}: width and height must be positive integers")
        entry = f"image {iid}: file_name"
        file_name = str(clean_path(img.get("file_name"), file=display, entry=entry))
        image_path = None
        if base_dir is not None:
            image_path = resolve_in(base_dir, file_name, file=display, entry=entry)
            if not image_path.is_file():
                raise FormatError(display, f"image {iid}: image file {file_name!r} not found in {base_dir.name or '.'}/")
        images[iid] = DatasetImage(
            file_name=file_name, width=width, height=height, source_id=iid, path=image_path
        )

    pending: list[PendingGeometry] = []  # every geometry, normalised in one go after the loop
    in_file_order: list[DatasetInstance] = []
    for k, ann in enumerate(anns_raw):
        if not isinstance(ann, dict):
            raise FormatError(display, f"annotation #{k}: must be an object")
        aid = _object_id(ann.get("id"))
        where = f"annotation {aid}" if aid is not None else f"annotation #{k}"
        image = images.get(_object_id(ann.get("image_id")))  # type: ignore[arg-type]
        if image is None:
            raise FormatError(display, f"{where}: unknown image_id {ann.get('image_id')!r}")
        label = categories.get(_object_id(ann.get("category_id")))  # type: ignore[arg-type]
        if label is None:
            raise FormatError(display, f"{where}: unknown category_id {ann.get('category_id')!r}")
        geometry, repair_where, bbox_only = _segmentation_to_geometry(ann, display=display, where=where)
        pending.append(PendingGeometry(geometry, image.width, image.height, repair_where))
        attributes = dict(ann["attributes"]) if isinstance(ann.get("attributes"), dict) else {}
        if bbox_only:
            attributes["bbox_only"] = True
        score = ann.get("score")
        instance = DatasetInstance(
            label=label,
            geometry=geometry,
            attributes=attributes,
            score=float(score) if isinstance(score, (int, float)) and not isinstance(score, bool) else None,
            iscrowd=bool(ann.get("iscrowd", 0)),
            source_id=aid,
        )
        image.instances.append(instance)
        in_file_order.append(instance)
    for inst, geometry in zip(in_file_order, normalized_geometries(pending, file=display, repairs=repairs)):
        inst.geometry = geometry
    return Dataset(labels=labels, images=list(images.values()), warnings=warnings, repairs=repairs)


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


@dataclass
class CocoWriteStats:
    """What a writer produced, for job progress and reports."""

    images: int = 0
    annotations: int = 0


def _dumps(obj: Any) -> bytes:
    # Compact separators: exports of 100k instances are dominated by coordinate text.
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _annotation(
    inst: DatasetInstance,
    *,
    ann_id: int,
    image_id: int,
    category_id: int,
    width: int,
    height: int,
    include_scores: bool,
) -> dict[str, Any]:
    segmentation, iscrowd = geo.to_coco_segmentation(
        inst.geometry, width=width, height=height, iscrowd=inst.iscrowd
    )
    if inst.bbox is not None and inst.area is not None:
        bbox, area = inst.bbox, inst.area  # precomputed by the caller with geo.bbox_and_area
    else:
        bbox, area = geo.bbox_and_area(inst.geometry, width=width, height=height)
    ann: dict[str, Any] = {
        "id": ann_id,
        "image_id": image_id,
        "category_id": category_id,
        "segmentation": segmentation,
        "area": float(area),
        "bbox": [float(v) for v in bbox],
        "iscrowd": int(bool(iscrowd)),
    }
    if include_scores and inst.score is not None:
        ann["score"] = float(inst.score)
    if inst.attributes:
        ann["attributes"] = inst.attributes
    return ann


def write_coco(
    images: Iterable[DatasetImage],
    *,
    labels: Sequence[str],
    out: IO[bytes],
    use_source_ids: bool = False,
    include_scores: bool = False,
    info: dict[str, Any] | None = None,
    on_image: Any = None,
) -> CocoWriteStats:
    """Stream a COCO instances JSON to the binary file ``out``.

    ``images`` may be a generator (e.g. over database rows): it is consumed once and memory does
    not grow with its length — image entries go straight to ``out`` while annotation entries are
    spooled to a temporary file and appended after the images array. Category ids are ``1..N`` in
    ``labels`` order. Image ids are ``1..`` in iteration order, or ``image.source_id`` (which must
    then be a unique int) with ``use_source_ids`` — use that when a results file must refer to
    the same ids. ``on_image(count)`` is called after each image (progress reporting).
    """
    category_ids = {label: k + 1 for k, label in enumerate(labels)}
    if len(category_ids) != len(labels):
        raise ValueError("labels must be unique")
    stats = CocoWriteStats()
    used_ids: set[int] = set()
    header = {
        "info": info or {"description": "Annotator export", "version": "1.0"},
        "licenses": [],
        "categories": [{"id": cid, "name": name, "supercategory": ""} for name, cid in category_ids.items()],
    }
    out.write(_dumps(header)[:-1])  # leave the object open, the two arrays follow
    out.write(b',"images":[')
    # The annotations go to a temporary file, not memory: COCO puts them in their own array after
    # the images, and the image iterable can only be consumed once.
    with tempfile.TemporaryFile() as spool:
        ann_id = 0
        for image in images:
            if use_source_ids:
                if not isinstance(image.source_id, int) or isinstance(image.source_id, bool):
                    raise ValueError(f"{image.file_name}: source_id must be an int with use_source_ids")
                image_id = image.source_id
                if image_id in used_ids:
                    raise ValueError(f"{image.file_name}: duplicate image id {image_id}")
                used_ids.add(image_id)
            else:
                image_id = stats.images + 1
            entry = {"id": image_id, "file_name": image.file_name, "width": image.width, "height": image.height}
            original = image.attributes.get("original_name")
            if original and original != image.file_name:
                # exports use flat names; where the picture came from stays (pycocotools ignores it)
                entry["original_name"] = original
            if stats.images:
                out.write(b",")
            out.write(_dumps(entry))
            for inst in image.instances:
                category_id = category_ids.get(inst.label)
                if category_id is None:
                    raise ValueError(f"{image.file_name}: label {inst.label!r} is not in labels")
                ann_id += 1
                ann = _annotation(
                    inst,
                    ann_id=ann_id,
                    image_id=image_id,
                    category_id=category_id,
                    width=image.width,
                    height=image.height,
                    include_scores=include_scores,
                )
                if ann_id > 1:
                    spool.write(b",")
                spool.write(_dumps(ann))
            stats.images += 1
            if on_image is not None:
                on_image(stats.images)
        stats.annotations = ann_id
        out.write(b'],"annotations":[')
        spool.seek(0)
        shutil.copyfileobj(spool, out, 64 * 1024)
    out.write(b"]}")
    return stats


def write_coco_results(
    images: Iterable[DatasetImage],
    *,
    labels: Sequence[str],
    out: IO[bytes],
    default_score: float = 1.0,
) -> int:
    """Stream predictions as a COCO results list (``COCO.loadRes`` input) and return their count.

    Each image's ``source_id`` is the COCO image id of the ground-truth file (write that one with
    ``use_source_ids=True``), each instance becomes ``{image_id, category_id, segmentation (RLE),
    bbox, score}``; category ids are ``1..N`` in ``labels`` order as in ``write_coco``. Instances
    without a score get ``default_score``.
    """
    category_ids = {label: k + 1 for k, label in enumerate(labels)}
    count = 0
    out.write(b"[")
    for image in images:
        if not isinstance(image.source_id, int) or isinstance(image.source_id, bool):
            raise ValueError(f"{image.file_name}: source_id must be the int COCO image id")
        for inst in image.instances:
            category_id = category_ids.get(inst.label)
            if category_id is None:
                raise ValueError(f"{image.file_name}: label {inst.label!r} is not in labels")
            # Results are always RLE: loadRes derives area/bbox from it, and masks from a model
            # have no reason to be polygons.
            mask = geo.geometry_to_mask(inst.geometry, width=image.width, height=image.height)
            bbox, _area = geo.bbox_and_area(inst.geometry, width=image.width, height=image.height)
            result = {
                "image_id": image.source_id,
                "category_id": category_id,
                "segmentation": geo.mask_to_rle(mask),
                "bbox": [float(v) for v in bbox],
                "score": float(inst.score if inst.score is not None else default_score),
            }
            if count:
                out.write(b",")
            out.write(_dumps(result))
            count += 1
    out.write(b"]")
    return count
