"""LabelMe JSON (versions 3-5): reader for folders of per-image files, and a writer."""

from __future__ import annotations

import base64
import binascii
import io
import json
import os
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path, PurePosixPath
from typing import Any, Literal

import numpy as np
from PIL import Image, UnidentifiedImageError
from shapely.geometry import Point, Polygon

from ml import geometry as geo
from ml.formats.archive import iter_files, json_top_level, output_sink
from ml.formats.model import Dataset, DatasetImage, DatasetInstance, FormatError, RepairNote, normalized_geometry
from ml.formats.paths import resolve_in, safe_relative_path

CIRCLE_VERTICES = 64
SEGMENT_SHAPES = {"polygon", "rectangle", "circle", "mask"}
LABELME_VERSION = "5.4.1"
#: How a painted mask is written: traced into polygon shapes, or one labelme 5.1 mask shape.
MaskShapes = Literal["polygons", "mask"]


def looks_like_labelme(path: str | os.PathLike[str]) -> bool:
    """A JSON object with a ``shapes`` list and an ``imagePath`` at the top level.

    Decided from the top-level keys, parsed as a stream that stops once both are seen (the shapes
    of a big file come before ``imagePath``, well past any fixed window of bytes).
    """
    found = json_top_level(path, enough=lambda keys: "shapes" in keys and "imagePath" in keys)
    return found is not None and found.keys.get("shapes") == "start_array" and "imagePath" in found.keys


def _b64_image(data: str, display: str, what: str, *, load: bool = True) -> Image.Image:
    """The embedded image; with ``load=False`` only its header is read (size, mode), no pixels."""
    try:
        raw = base64.b64decode(data, validate=False)
        img = Image.open(io.BytesIO(raw))
        if load:
            img.load()
        return img
    except (binascii.Error, ValueError, UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
        raise FormatError(display, f"{what}: not a valid base64 image ({exc})") from exc


def _points(shape: dict[str, Any], display: str, where: str) -> list[list[float]]:
    pts = shape.get("points")
    if not isinstance(pts, list) or not all(
        isinstance(p, (list, tuple))
        and len(p) == 2
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in p)
        for p in pts
    ):
        raise FormatError(display, f"{where}: points must be a list of [x, y] pairs")
    return [[float(x), float(y)] for x, y in pts]


def _shape_ring(shape: dict[str, Any], shape_type: str, display: str, where: str) -> list[list[float]]:
    """The outline of a polygon / rectangle / circle shape as an open ring."""
    pts = _points(shape, display, where)
    if shape_type == "rectangle":
        if len(pts) == 2:
            (xa, ya), (xb, yb) = pts
            x0, x1, y0, y1 = min(xa, xb), max(xa, xb), min(ya, yb), max(ya, yb)
            return [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]
        if len(pts) == 4:
            return pts
        raise FormatError(display, f"{where}: a rectangle needs 2 corner points")
    if shape_type == "circle":
        if len(pts) != 2:
            raise FormatError(display, f"{where}: a circle needs a centre and a point on it")
        (cx, cy), (px, py) = pts
        radius = float(np.hypot(px - cx, py - cy))
        if radius <= 0:
            raise FormatError(display, f"{where}: circle with zero radius")
        ring = list(Point(cx, cy).buffer(radius, quad_segs=CIRCLE_VERTICES // 4).exterior.coords)[:-1]
        return [[float(x), float(y)] for x, y in ring]
    if len(pts) < 3:
        raise FormatError(display, f"{where}: polygon has fewer than 3 points")
    return pts


def _group_polygons(rings: list[list[list[float]]]) -> dict[str, Any]:
    """Merge the rings of one group: a ring inside another part becomes a hole of that part, a ring
    inside such a hole becomes a new part (an island), anything else is one more part."""
    order = sorted(range(len(rings)), key=lambda i: -abs(Polygon(rings[i]).area))
    parts: list[dict[str, Any]] = []  # {"shell": Polygon, "exterior": ring, "holes": [ring]}
    for i in order:
        ring = rings[i]
        shape = Polygon(ring)
        owner = None
        for part in parts:
            if part["shell"].contains(shape) and not any(Polygon(h).contains(shape) for h in part["holes"]):
                owner = part
                break
        if owner is not None:
            owner["holes"].append(ring)
        else:
            parts.append({"shell": shape, "exterior": ring, "holes": []})
    return {"type": "polygons", "polygons": [{"exterior": p["exterior"], "holes": p["holes"]} for p in parts]}


def _safe_image_path(root: Path, json_file: Path, image_path: Any) -> tuple[Path | None, FormatError | None]:
    """The ``imagePath`` file (relative to the JSON's folder) if it exists inside the dataset folder.

    Through the path resolver: a name that leads outside is returned as the error, decided from
    the name alone, so the answer is the same whether a file exists there or not.
    """
    if not isinstance(image_path, str) or not image_path.strip():
        return None, None
    display = json_file.relative_to(root).as_posix()
    try:
        candidate = resolve_in(
            root, image_path, file=display, entry="imagePath", base=PurePosixPath(display).parent
        )
    except FormatError as exc:
        return None, exc
    return (candidate if candidate.is_file() else None), None


def _read_file(
    path: Path, root: Path, labels: list[str], warnings: list[str], repairs: list[RepairNote]
) -> DatasetImage | None:
    display = path.relative_to(root).as_posix()
    try:
        data = json.loads(path.read_bytes())
    except json.JSONDecodeError as exc:
        raise FormatError(display, f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from exc
    except UnicodeDecodeError as exc:
        raise FormatError(display, f"not UTF-8 text ({exc.reason})") from exc
    if not isinstance(data, dict) or "shapes" not in data:
        if display == "manifest.json" and isinstance(data, dict) and "files" in data:
            return None  # the manifest of an export (ours), beside the LabelMe folder: not an image
        warnings.append(f"{display}: not a LabelMe file (no 'shapes'), skipped")
        return None
    shapes = data.get("shapes")
    if not isinstance(shapes, list):
        raise FormatError(display, "'shapes' must be a list")

    image_path, outside = _safe_image_path(root, path, data.get("imagePath"))
    image_data = data.get("imageData")
    has_embedded = isinstance(image_data, str) and bool(image_data)
    if outside is not None:
        if not has_embedded:
            raise outside
        # LabelMe on Windows wrote absolute imagePaths next to the embedded pixels: those are
        # the image; the path is never opened, and the user is told.
        warnings.append(f"{outside}; the embedded imageData is used")
    if image_path is None and not has_embedded:
        raise FormatError(
            display, f"image {data.get('imagePath')!r} not found next to the file and no imageData embedded"
        )
    width, height = data.get("imageWidth"), data.get("imageHeight")
    if not (isinstance(width, int) and isinstance(height, int) and width > 0 and height > 0):
        if image_path is not None:
            try:
                with Image.open(image_path) as img:
                    width, height = img.width, img.height
            except (UnidentifiedImageError, OSError) as exc:
                raise FormatError(display, f"image {image_path.name} is unreadable ({exc})") from exc
        else:
            # The size is in the header: the pixels are decoded once, by the import's own
            # decoder, where the pixel limit applies.
            embedded = _b64_image(str(image_data), display, "imageData", load=False)
            width, height = embedded.width, embedded.height

    if image_path is not None:
        file_name = image_path.relative_to(root.resolve()).as_posix()
    else:
        # Embedded only: keep the name the file gives, relative to this JSON's folder.
        name = PurePosixPath(str(data.get("imagePath") or "").replace("\\", "/")).name
        if safe_relative_path(name) != name:
            name = path.with_suffix(".jpg").name
        file_name = (PurePosixPath(display).parent / name).as_posix().removeprefix("./")

    # Group shapes into objects: labelme's own rule is (label, group_id); no group_id = alone.
    objects: dict[Any, list[tuple[int, dict[str, Any]]]] = {}
    for k, shape in enumerate(shapes):
        where = f"shape {k}"
        if not isinstance(shape, dict):
            raise FormatError(display, f"{where}: must be an object")
        shape_type = shape.get("shape_type") or "polygon"
        label = shape.get("label")
        if not isinstance(label, str) or not label.strip():
            raise FormatError(display, f"{where}: missing label")
        if shape_type not in SEGMENT_SHAPES:
            warnings.append(f"{display}: {where} ({shape_type} '{label}') is not an area, skipped")
            continue
        group_id = shape.get("group_id")
        key = (label, group_id) if group_id is not None else ("#", k)
        objects.setdefault(key, []).append((k, shape))

    instances: list[DatasetInstance] = []
    for members in objects.values():
        first_index, first = members[0]
        label = first["label"]
        where = f"shape {first_index}" if len(members) == 1 else f"group {first.get('group_id')!r} ({label})"
        rings = []
        masks = []
        for k, shape in members:
            shape_type = shape.get("shape_type") or "polygon"
            if shape_type == "mask":
                masks.append(_mask_shape(shape, width, height, display, f"shape {k}"))
            else:
                rings.append(_shape_ring(shape, shape_type, display, f"shape {k}"))
        geometry: dict[str, Any] | None = _group_polygons(rings) if rings else None
        if geometry is not None:
            # Hand-drawn outlines cross themselves and spill over the border: repaired, noted.
            geometry = normalized_geometry(
                geometry, width=width, height=height, file=display, where=where, repairs=repairs
            )
        if masks:
            full = np.zeros((height, width), dtype=bool)
            if geometry is not None:
                full |= geo.geometry_to_mask(geometry, width=width, height=height)
            for mask in masks:
                full |= mask
            if not full.any():
                raise FormatError(display, f"{where}: mask is empty")
            geometry = {"type": "mask", "rle": geo.mask_to_rle(full)}
        assert geometry is not None  # a group has at least one ring or mask
        attributes: dict[str, Any] = {}
        for _, shape in members:
            if isinstance(shape.get("flags"), dict):
                attributes.update({f: v for f, v in shape["flags"].items() if v is not None})
            if isinstance(shape.get("description"), str) and shape["description"]:
                attributes["description"] = shape["description"]
            # Keys LabelMe does not know are kept by LabelMe itself (its "other_data"): attributes.
            for shape_key, shape_value in shape.items():
                if shape_key == "attributes" and isinstance(shape_value, dict):
                    attributes.update({k: v for k, v in shape_value.items() if isinstance(k, str) and v is not None})
                elif shape_key not in SHAPE_KEYS and shape_value is not None:
                    attributes[shape_key] = shape_value
        if label not in labels:
            labels.append(label)
        instances.append(
            DatasetInstance(
                label=label,
                geometry=geometry,
                attributes=attributes,
                source_id=first_index,
                group=first.get("group_id"),
            )
        )

    def load_embedded(json_file: Path = path) -> bytes:
        return base64.b64decode(json.loads(json_file.read_bytes())["imageData"])

    return DatasetImage(
        file_name=file_name,
        width=width,
        height=height,
        instances=instances,
        source_id=display,
        path=image_path,
        embedded_loader=None if image_path is not None else load_embedded,
    )


def _mask_shape(shape: dict[str, Any], width: int, height: int, display: str, where: str) -> np.ndarray:
    """labelme ≥ 5.1 mask shape: points = top-left and bottom-right pixel, mask = PNG of that crop."""
    pts = _points(shape, display, where)
    if len(pts) != 2 or not isinstance(shape.get("mask"), str):
        raise FormatError(display, f"{where}: a mask shape needs 2 corner points and a base64 'mask'")
    crop = np.array(_b64_image(shape["mask"], display, where).convert("L")) > 0
    x0, y0 = int(round(min(pts[0][0], pts[1][0]))), int(round(min(pts[0][1], pts[1][1])))
    full = np.zeros((height, width), dtype=bool)
    h = max(0, min(crop.shape[0], height - y0))
    w = max(0, min(crop.shape[1], width - x0))
    if x0 < 0 or y0 < 0 or h == 0 or w == 0:
        raise FormatError(display, f"{where}: mask lies outside the image")
    full[y0 : y0 + h, x0 : x0 + w] = crop[:h, :w]
    return full


def read_labelme(folder: str | os.PathLike[str]) -> Dataset:
    """Read every LabelMe ``*.json`` under ``folder`` (recursively) into a Dataset.

    polygon, rectangle, circle (as a 64-gon) and mask shapes become instances; line / point shapes
    are skipped with a warning in ``Dataset.warnings``. Shapes with the same label and group_id are
    one object: a part inside another part of the group is a hole of it, other parts stay parts.
    Labels are in order of first appearance. The image is the ``imagePath`` file next to the JSON
    (only inside ``folder``), else the embedded ``imageData``; neither → FormatError.
    """
    root = Path(folder)
    if not root.is_dir():
        raise FormatError(root.name, "not a folder")
    labels: list[str] = []
    warnings: list[str] = []
    repairs: list[RepairNote] = []
    images = []
    for path in iter_files(root, ".json"):
        image = _read_file(path, root, labels, warnings, repairs)
        if image is not None:
            images.append(image)
    if not images:
        raise FormatError(root.name, "no LabelMe JSON files found")
    return Dataset(labels=labels, images=images, warnings=warnings, repairs=repairs)


#: The keys of a LabelMe shape (and the colour keys of LabelMe 3); any other key is an attribute.
SHAPE_KEYS = frozenset({
    "label", "points", "group_id", "shape_type", "flags", "description", "mask", "line_color", "fill_color", "other_data",
})


def _shape_attributes(attributes: dict[str, Any]) -> dict[str, Any]:
    """An object's attributes as LabelMe holds them: yes/no ones as ``flags``, a ``description`` as
    LabelMe's own field, everything else as extra keys of the shape (LabelMe keeps unknown keys)."""
    flags = {k: v for k, v in attributes.items() if isinstance(v, bool) and k != "bbox_only"}
    description = attributes.get("description")
    extra = {
        k: v for k, v in attributes.items()
        if not isinstance(v, bool) and k != "description" and k not in SHAPE_KEYS and v is not None
    }
    return {"description": description if isinstance(description, str) else "", "flags": flags, **extra}


def _mask_shape_of(mask: np.ndarray) -> dict[str, Any] | None:
    """A labelme >= 5.1 mask shape: the corners of the mask's box and a PNG of that crop."""
    ys, xs = np.nonzero(mask)
    if not len(xs):
        return None
    x0, x1, y0, y1 = int(xs.min()), int(xs.max()), int(ys.min()), int(ys.max())
    buffer = io.BytesIO()
    Image.fromarray(mask[y0 : y1 + 1, x0 : x1 + 1]).save(buffer, format="PNG")
    return {"shape_type": "mask", "points": [[x0, y0], [x1, y1]], "mask": base64.b64encode(buffer.getvalue()).decode()}


def labelme_shapes(
    instance: DatasetInstance, *, group_id: int, width: int, height: int, masks: MaskShapes = "polygons"
) -> list[dict[str, Any]]:
    """The LabelMe shapes of one object, all with its label, ``group_id``, flags and attributes.

    Every part and every hole of an outline is a polygon shape (the reader's group rule puts a
    ring inside a part back as its hole; tools that union a group's shapes, like labelme2coco,
    fill holes). An object that only ever had a box (``bbox_only``) is a rectangle. A painted mask
    is traced into polygons along its pixel edges (rasterised back it gives the same pixels) or,
    with ``masks="mask"``, kept as one labelme 5.1 mask shape.
    """
    attributes = dict(instance.attributes)
    if instance.iscrowd:
        attributes["iscrowd"] = True  # a flag: read back as the attribute the app keeps crowds in
    base = {"label": instance.label, "group_id": group_id, **_shape_attributes(attributes)}
    geometry = instance.geometry
    if geometry.get("type") == "mask":
        if masks == "mask":
            shape = _mask_shape_of(geo.rle_to_mask(geometry["rle"]))
            return [base | shape] if shape is not None else []
        try:
            geometry = geo.convert(geometry, to="polygons", width=width, height=height)
        except geo.GeometryError:
            return []  # an empty mask has no shape
    if attributes.get("bbox_only"):
        bbox, _area = geo.bbox_and_area(geometry, width=width, height=height)
        x, y, w, h = bbox
        return [base | {"shape_type": "rectangle", "points": [[x, y], [x + w, y + h]], "mask": None}]
    return [
        base | {"shape_type": "polygon", "points": [list(p) for p in ring], "mask": None}
        for part in geometry["polygons"]
        for ring in [part["exterior"], *part.get("holes", [])]
    ]


def labelme_document(image: DatasetImage, *, masks: MaskShapes = "polygons") -> dict[str, Any]:
    """The LabelMe 5 JSON of one image; ``imagePath`` is the image's base name (it goes next to the JSON)."""
    shapes = [
        shape
        for group_id, inst in enumerate(image.instances, start=1)
        for shape in labelme_shapes(inst, group_id=group_id, width=image.width, height=image.height, masks=masks)
    ]
    return {
        "version": LABELME_VERSION,
        "flags": {},
        "shapes": shapes,
        "imagePath": PurePosixPath(image.file_name).name,
        "imageData": None,
        "imageHeight": image.height,
        "imageWidth": image.width,
    }


def write_labelme(
    images: Iterable[DatasetImage],
    *,
    out: zipfile.ZipFile | str | os.PathLike[str],
    image_bytes_for: Callable[[DatasetImage], bytes | None] | None = None,
    masks: MaskShapes = "polygons",
    prefix: str = "",
) -> int:
    """Write one LabelMe 5 JSON per image into a zip or a folder and return the count.

    ``<prefix><file_name without extension>.json`` per image (see labelme_document); with
    ``image_bytes_for`` the image goes next to it as ``<prefix><file_name>``, which is where
    LabelMe and labelme2coco look for it. The reader gives back the same objects and attributes.
    """
    sink = output_sink(out)
    count = 0
    for image in images:
        document = labelme_document(image, masks=masks)
        sink.write(f"{prefix}{PurePosixPath(image.file_name).with_suffix('.json')}", json.dumps(document, indent=2).encode())
        if image_bytes_for is not None:
            data = image_bytes_for(image)
            if data is not None:
                sink.write(f"{prefix}{image.file_name}", data)
        count += 1
    return count
