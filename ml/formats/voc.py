"""Pascal VOC: reader (XML boxes + SegmentationObject/Class PNGs) and zip/folder writer."""

from __future__ import annotations

import io
import json
import os
import zipfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any
from xml.etree import ElementTree as ET

import defusedxml.ElementTree as safe_et
import numpy as np
from defusedxml import DefusedXmlException
from PIL import Image, UnidentifiedImageError

from ml import geometry as geo
from ml.formats.archive import output_sink
from ml.formats.model import Dataset, DatasetImage, DatasetInstance, FormatError, RepairNote, normalized_geometry, rgb_to_hex
from ml.formats.paths import clean_path, resolve_in

VOC_CLASSES: tuple[str, ...] = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
)  # fmt: skip
VOID_INDEX = 255
MAX_INDEX = 254  # 0 is background and 255 is void in both class and object PNGs
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
# Refuse to decode absurd PNGs (decompression bombs) before allocating them.
MAX_MASK_PIXELS = 200_000_000


def voc_colormap(n: int = 256) -> np.ndarray:
    """The standard Pascal VOC palette (index → RGB), as in the VOC devkit's ``labelcolormap.m``."""
    cmap = np.zeros((n, 3), dtype=np.uint8)
    for index in range(n):
        r = g = b = 0
        c = index
        for shift in range(7, -1, -1):
            r |= (c & 1) << shift
            g |= ((c >> 1) & 1) << shift
            b |= ((c >> 2) & 1) << shift
            c >>= 3
        cmap[index] = (r, g, b)
    return cmap


def _rgb(color: np.ndarray) -> tuple[int, int, int]:
    return int(color[0]), int(color[1]), int(color[2])


_COLORMAP = voc_colormap()
_PALETTE = _COLORMAP.flatten().tolist()


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------


def find_voc_root(folder: str | os.PathLike[str]) -> Path:
    """The folder holding ``Annotations/`` (accepts the dataset itself or ``VOCdevkit/VOC20xx`` above it)."""
    root = Path(folder)
    if (root / "Annotations").is_dir() or (root / "SegmentationObject").is_dir():
        return root
    for candidate in sorted(root.rglob("Annotations")):
        if candidate.is_dir():
            return candidate.parent
    raise FormatError(root.name, "no Annotations/ folder found (not a Pascal VOC dataset)")


def _read_labelmap(path: Path) -> list[tuple[str, tuple[int, int, int] | None]]:
    """Datumaro-style ``label:color_rgb:parts:actions`` lines (colour optional)."""
    entries: list[tuple[str, tuple[int, int, int] | None]] = []
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, _, rest = line.partition(":")
        color_text = rest.split(":", 1)[0].strip()
        color = None
        if color_text:
            try:
                r, g, b = (int(c) for c in color_text.split(","))
            except ValueError as exc:
                raise FormatError("labelmap.txt", f"line {number}: colour {color_text!r} is not r,g,b") from exc
            color = (r, g, b)
        entries.append((name.strip(), color))
    return entries


def _read_id_list(path: Path) -> list[str]:
    """Image ids of an ImageSets list; ``# comment`` lines, blank lines and ``id  1`` flags tolerated."""
    ids = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            ids.append(line.split()[0])
    return ids


def _parse_xml(path: Path, display: str) -> ET.Element:
    try:
        # defusedxml refuses entity declarations (billion laughs, external entities).
        return safe_et.parse(path, forbid_dtd=False, forbid_entities=True, forbid_external=True).getroot()
    except DefusedXmlException as exc:
        raise FormatError(display, f"unsafe XML refused ({type(exc).__name__})") from exc
    except ET.ParseError as exc:
        line, column = exc.position
        raise FormatError(display, f"invalid XML at line {line}, column {column}") from exc


def _text(element: ET.Element | None, tag: str) -> str | None:
    child = element.find(tag) if element is not None else None
    return child.text.strip() if child is not None and child.text and child.text.strip() else None


def _number(element: ET.Element, tag: str, display: str, where: str) -> float:
    value = _text(element, tag)
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise FormatError(display, f"{where}: <{tag}> is missing or not a number") from exc


def _flag(value: str | None) -> bool | None:
    if value is None:
        return None
    return value.lower() in ("1", "true", "yes")


#: Object fields VOC has tags of its own for; other attributes go in <attributes> as CVAT and Datumaro write them.
BUILTIN_ATTRIBUTES = ("pose", "truncated", "occluded", "difficult")
#: Our own markers, not attributes anyone set (bbox_only is how a box-only object is written).
_INTERNAL_ATTRIBUTES = ("bbox_only", "iscrowd")


def _attribute_value(text: str | None) -> Any:
    """An <attribute><value> as written by CVAT / Datumaro (text): true/false, numbers and JSON lists
    come back typed; anything else stays text (the label's schema has the last word on import)."""
    if text is None:
        return ""
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    try:
        return int(text)
    except ValueError:
        pass
    try:
        number = float(text)
        if np.isfinite(number):
            return number
    except ValueError:
        pass
    if text.startswith("[") and text.endswith("]"):
        try:
            value = json.loads(text)
            if isinstance(value, list):
                return value
        except ValueError:
            pass
    return text


def _attribute_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _load_index_png(path: Path, display: str, colors: dict[tuple[int, int, int], int]) -> np.ndarray:
    """A VOC mask PNG as an index array. Palette / grey PNGs hold indices; RGB ones (as Datumaro
    writes them) are mapped back through ``colors``."""
    try:
        with Image.open(path) as img:
            if img.width * img.height > MAX_MASK_PIXELS:
                raise FormatError(display, f"mask is too large ({img.width}x{img.height})")
            if img.mode in ("P", "L"):
                return np.array(img)
            rgb = np.array(img.convert("RGB"))
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
        raise FormatError(display, f"unreadable PNG ({exc})") from exc
    packed = (rgb[..., 0].astype(np.int32) << 16) | (rgb[..., 1].astype(np.int32) << 8) | rgb[..., 2]
    out = np.zeros(packed.shape, dtype=np.uint8)
    for value in np.unique(packed):
        color = (int(value) >> 16, (int(value) >> 8) & 255, int(value) & 255)
        index = colors.get(color)
        if index is None:
            raise FormatError(display, f"colour {color} is not in the colour map")
        out[packed == value] = index
    return out


def _image_size(path: Path | None) -> tuple[int, int] | None:
    if path is None:
        return None
    try:
        with Image.open(path) as img:  # reads the header only
            return img.width, img.height
    except (UnidentifiedImageError, OSError):
        return None


def _inside(root: Path, relative: str, *, file: str | None = None) -> Path:
    """A file of the dataset by its place in the VOC layout, through the path resolver (no links out)."""
    return resolve_in(root, relative, file=file or relative, entry="file")


def _find_image(root: Path, stem: str, filename: str | None, display: str) -> Path | None:
    """The image of ``stem``: ``<filename>`` in ``JPEGImages/`` (beside the id's folder), else ``<stem>.<ext>``.

    ``<filename>`` goes through the path resolver: one that leads out of the dataset is an error
    (the same whether its target exists or not), never a reason to pick another file instead.
    """
    base = PurePosixPath("JPEGImages") / PurePosixPath(stem).parent
    if filename:
        candidate = resolve_in(root, filename, file=display, entry="<filename>", base=base)
        if candidate.is_file():
            return candidate
    for ext in IMAGE_EXTENSIONS:
        candidate = resolve_in(root, f"{PurePosixPath(stem).name}{ext}", file=display, entry="image", base=base)
        if candidate.is_file():
            return candidate
    return None


def _image_file_name(root: Path, image_path: Path) -> str:
    """The image's name relative to ``JPEGImages/`` (or to the dataset when it lies elsewhere in it)."""
    top = root.resolve()
    images = top / "JPEGImages"
    return (image_path.relative_to(images) if image_path.is_relative_to(images) else image_path.relative_to(top)).as_posix()


def _box_polygon(x0: float, y0: float, x1: float, y1: float) -> dict[str, Any]:
    return {"type": "polygons", "polygons": [{"exterior": [[x0, y0], [x1, y0], [x1, y1], [x0, y1]], "holes": []}]}


def read_voc(folder: str | os.PathLike[str]) -> Dataset:
    """Read a Pascal VOC dataset (the folder with ``Annotations/``, or a folder above it).

    One image per ``Annotations/*.xml`` plus ids listed in ``ImageSets`` that only have masks or
    images. Object k (1-based, in XML order) takes the pixels of value k in
    ``SegmentationObject/<id>.png`` as a mask geometry; 255 (void/border) is ignored. An object with
    no pixels there (or no PNG at all) becomes its box outline with ``attributes["bbox_only"]``.
    Object indices in the PNG beyond the XML objects become instances labelled from
    ``SegmentationClass``. Boxes follow the VOC devkit convention (1-based inclusive pixel
    indices), i.e. ``xmin=1`` is the left edge of the first pixel.
    """
    root = find_voc_root(folder)
    repairs: list[RepairNote] = []
    labelmap_path = _inside(root, "labelmap.txt")
    labelmap_entries = _read_labelmap(labelmap_path) if labelmap_path.is_file() else []
    if labelmap_entries:
        class_names = [name for name, _ in labelmap_entries]
        class_colors = {name: color for name, color in labelmap_entries if color is not None}
    else:
        class_names = list(VOC_CLASSES)
        class_colors = {name: _rgb(_COLORMAP[k]) for k, name in enumerate(VOC_CLASSES)}
    # For RGB class PNGs: colour → class index (background is index 0 and colour 0,0,0).
    class_color_index: dict[tuple[int, int, int], int] = {(0, 0, 0): 0, (224, 224, 192): VOID_INDEX}
    for k, name in enumerate(class_names):
        if name in class_colors:
            class_color_index[class_colors[name]] = k
    object_color_index = {_rgb(_COLORMAP[k]): k for k in range(256)}

    # Subsets from ImageSets lists that are not per-class lists ("train.txt", not "cat_train.txt").
    subsets: dict[str, str] = {}
    listed: list[str] = []
    for task in ("Segmentation", "Main"):
        task_dir = root / "ImageSets" / task
        if not task_dir.is_dir():
            continue
        for list_file in sorted(task_dir.glob("*.txt")):
            if task == "Main" and "_" in list_file.stem:
                continue
            list_display = f"ImageSets/{task}/{list_file.name}"
            for listed_id in _read_id_list(_inside(root, list_display)):
                # An id names files under Annotations/, JPEGImages/...: it goes through the resolver.
                image_id = clean_path(listed_id, file=list_display, entry="image id").as_posix()
                subsets.setdefault(image_id, list_file.stem)
                listed.append(image_id)

    xml_ids = [
        p.relative_to(root / "Annotations").with_suffix("").as_posix()
        for p in sorted((root / "Annotations").rglob("*.xml"))
    ] if (root / "Annotations").is_dir() else []
    ids = list(dict.fromkeys(xml_ids + listed))

    used_labels: set[str] = set()
    images: list[DatasetImage] = []
    for image_id in ids:
        xml_display = f"Annotations/{image_id}.xml"
        xml_path = _inside(root, xml_display)
        obj_png = _inside(root, f"SegmentationObject/{image_id}.png")
        cls_png = _inside(root, f"SegmentationClass/{image_id}.png")
        annotation = _parse_xml(xml_path, xml_display) if xml_path.is_file() else None
        filename = _text(annotation, "filename")
        image_path = _find_image(root, image_id, filename, xml_display)
        if annotation is None and image_path is None and not obj_png.is_file():
            # Listed in ImageSets but nothing of it exists: a broken list, not an empty image.
            raise FormatError(f"ImageSets/*/{subsets.get(image_id, '')}.txt", f"image {image_id!r} has no XML, image or mask")

        size = annotation.find("size") if annotation is not None else None
        width = int(float(_text(size, "width") or 0)) if size is not None else 0
        height = int(float(_text(size, "height") or 0)) if size is not None else 0
        if width <= 0 or height <= 0:
            found = _image_size(image_path) or _image_size(obj_png if obj_png.is_file() else None)
            if found is None:
                raise FormatError(
                    xml_display if annotation is not None else image_id,
                    f"no <size> and no image file JPEGImages/{filename or image_id + '.jpg'} to take it from",
                )
            width, height = found

        object_masks: np.ndarray | None = None
        if obj_png.is_file():
            object_masks = _load_index_png(obj_png, f"SegmentationObject/{image_id}.png", object_color_index)
            if object_masks.shape != (height, width):
                raise FormatError(
                    f"SegmentationObject/{image_id}.png",
                    f"mask is {object_masks.shape[1]}x{object_masks.shape[0]}, the image is {width}x{height}",
                )

        instances: list[DatasetInstance] = []
        objects = annotation.findall("object") if annotation is not None else []
        for k, obj in enumerate(objects, start=1):
            where = f"object {k}"
            obj_name = _text(obj, "name")
            if not obj_name:
                raise FormatError(xml_display, f"{where}: missing <name>")
            attributes: dict[str, Any] = {}
            for tag in ("difficult", "truncated", "occluded"):
                flag = _flag(_text(obj, tag))
                if flag is not None:
                    attributes[tag] = flag
            pose = _text(obj, "pose")
            if pose and pose != "Unspecified":
                attributes["pose"] = pose
            for attribute in obj.findall("attributes/attribute"):
                attribute_name = _text(attribute, "name")
                if attribute_name and attribute_name not in attributes:
                    value_element = attribute.find("value")
                    attributes[attribute_name] = _attribute_value(value_element.text if value_element is not None else None)
            geometry: dict[str, Any] | None = None
            if object_masks is not None and k <= MAX_INDEX:
                mask = object_masks == k
                if mask.any():
                    geometry = {"type": "mask", "rle": geo.mask_to_rle(mask)}
            if geometry is None:
                box = obj.find("bndbox")
                if box is None:
                    raise FormatError(xml_display, f"{where}: no <bndbox> and no pixels in SegmentationObject")
                xmin, ymin, xmax, ymax = (_number(box, t, xml_display, where) for t in ("xmin", "ymin", "xmax", "ymax"))
                x0, y0 = max(0.0, xmin - 1), max(0.0, ymin - 1)
                x1, y1 = min(float(width), xmax), min(float(height), ymax)
                if x1 <= x0 or y1 <= y0:
                    raise FormatError(xml_display, f"{where}: empty or inverted <bndbox>")
                geometry = _box_polygon(x0, y0, x1, y1)
                attributes["bbox_only"] = True
            geometry = normalized_geometry(
                geometry, width=width, height=height, file=xml_display, where=where, repairs=repairs
            )
            used_labels.add(obj_name)
            instances.append(DatasetInstance(label=obj_name, geometry=geometry, attributes=attributes, source_id=k))

        if object_masks is not None:
            extra = sorted(int(v) for v in np.unique(object_masks) if len(objects) < v < VOID_INDEX)
            if extra:
                if not cls_png.is_file():
                    raise FormatError(
                        f"SegmentationObject/{image_id}.png",
                        f"object indices {extra} have no <object> in the XML and there is no SegmentationClass PNG",
                    )
                classes = _load_index_png(cls_png, f"SegmentationClass/{image_id}.png", class_color_index)
                for index in extra:
                    mask = object_masks == index
                    values, counts = np.unique(classes[mask], return_counts=True)
                    class_index = int(values[np.argmax(counts)])
                    if not 0 < class_index < len(class_names):
                        raise FormatError(
                            f"SegmentationClass/{image_id}.png", f"object {index} has no class (index {class_index})"
                        )
                    label = class_names[class_index]
                    used_labels.add(label)
                    instances.append(
                        DatasetInstance(label=label, geometry={"type": "mask", "rle": geo.mask_to_rle(mask)}, source_id=index)
                    )

        file_name = (
            _image_file_name(root, image_path) if image_path is not None else
            str(PurePosixPath(image_id).parent / (filename or f"{PurePosixPath(image_id).name}.jpg")).removeprefix("./")
        )
        images.append(
            DatasetImage(
                file_name=file_name,
                width=width,
                height=height,
                instances=instances,
                source_id=image_id,
                path=image_path,
                attributes={"subset": subsets[image_id]} if image_id in subsets else {},
            )
        )

    # Label order: a labelmap defines the label set and its order (background only if objects use
    # it); without one, the VOC class order for the used classes. Then unknown names by first use.
    if labelmap_entries:
        labels = [n for n in class_names if n != "background" or n in used_labels]
    else:
        labels = [n for n in VOC_CLASSES if n in used_labels]
    for image in images:
        for inst in image.instances:
            if inst.label not in labels:
                labels.append(inst.label)
    label_colors = {name: rgb_to_hex(color) for name, color in class_colors.items() if name in labels}
    return Dataset(labels=labels, images=images, label_colors=label_colors, repairs=repairs)


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


@dataclass
class VocWriteStats:
    """What ``write_voc`` produced."""

    images: int = 0
    objects: int = 0
    ids: list[str] = field(default_factory=list)


def _voc_box(bbox: Sequence[float], width: int, height: int) -> tuple[int, int, int, int]:
    """Continuous [x, y, w, h] → VOC 1-based inclusive pixel indices of the covered pixels."""
    x, y, w, h = bbox
    xmin = int(np.floor(x)) + 1
    ymin = int(np.floor(y)) + 1
    xmax = int(np.ceil(x + w))
    ymax = int(np.ceil(y + h))
    xmin, ymin = min(max(xmin, 1), width), min(max(ymin, 1), height)
    return xmin, ymin, max(min(xmax, width), xmin), max(min(ymax, height), ymin)


def _png(index: np.ndarray) -> bytes:
    img = Image.fromarray(index.astype(np.uint8), mode="P")
    img.putpalette(_PALETTE)
    buffer = io.BytesIO()
    img.save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()


def _sub(parent: ET.Element, tag: str, text: Any = None) -> ET.Element:
    child = ET.SubElement(parent, tag)
    if text is not None:
        child.text = str(text)
    return child


def write_voc(
    images: Iterable[DatasetImage],
    *,
    labels: Sequence[str],
    out: zipfile.ZipFile | str | os.PathLike[str],
    image_bytes_for: Callable[[DatasetImage], bytes | None] | None = None,
    subset: str = "trainval",
    prefix: str = "",
) -> VocWriteStats:
    """Write a Pascal VOC dataset into a zip or a folder, one image at a time.

    Per image ``<id>`` (= ``file_name`` without extension, folders kept): ``Annotations/<id>.xml``
    (objects in instance order, VOC 1-based boxes), ``SegmentationClass/<id>.png`` (class index =
    position in ``labels`` + 1, 0 = background) and ``SegmentationObject/<id>.png`` (object index =
    position of the ``<object>``), both 8-bit palette PNGs with the VOC colour map; where objects
    overlap the later one wins; no 255 border is drawn; objects with ``attributes["bbox_only"]``
    (no outline was ever drawn) are only boxes in the XML, not painted in the PNGs. With ``image_bytes_for`` the image goes to
    ``JPEGImages/<file_name>`` as given. ``ImageSets/{Main,Segmentation}/<subset>.txt`` list all
    ids and ``labelmap.txt`` the labels with their colours. ``prefix`` nests everything (e.g.
    ``"VOCdevkit/VOC2012/"``).
    """
    if len(labels) > MAX_INDEX:
        raise ValueError(f"Pascal VOC masks hold at most {MAX_INDEX} classes, got {len(labels)}")
    class_index = {label: k + 1 for k, label in enumerate(labels)}
    if len(class_index) != len(labels):
        raise ValueError("labels must be unique")
    sink = output_sink(out)
    stats = VocWriteStats()
    seen_ids: set[str] = set()
    for image in images:
        file_path = PurePosixPath(image.file_name)
        image_id = str(file_path.with_suffix(""))
        if image_id in seen_ids:
            raise ValueError(f"{image.file_name}: two images map to the VOC id {image_id!r}")
        seen_ids.add(image_id)
        if len(image.instances) > MAX_INDEX:
            raise ValueError(
                f"{image.file_name}: {len(image.instances)} objects, a VOC object PNG holds at most {MAX_INDEX}"
            )
        root = ET.Element("annotation")
        _sub(root, "folder", "JPEGImages")
        _sub(root, "filename", file_path.name)
        source = _sub(root, "source")
        _sub(source, "database", "Annotator")
        size = _sub(root, "size")
        _sub(size, "width", image.width)
        _sub(size, "height", image.height)
        _sub(size, "depth", 3)
        _sub(root, "segmented", int(bool(image.instances)))
        class_png = np.zeros((image.height, image.width), dtype=np.uint8)
        object_png = np.zeros((image.height, image.width), dtype=np.uint8)
        for k, inst in enumerate(image.instances, start=1):
            cls = class_index.get(inst.label)
            if cls is None:
                raise ValueError(f"{image.file_name}: label {inst.label!r} is not in labels")
            bbox, _area = geo.bbox_and_area(inst.geometry, width=image.width, height=image.height)
            xmin, ymin, xmax, ymax = _voc_box(bbox, image.width, image.height)
            obj = _sub(root, "object")
            _sub(obj, "name", inst.label)
            _sub(obj, "pose", inst.attributes.get("pose", "Unspecified"))
            _sub(obj, "truncated", int(bool(inst.attributes.get("truncated", False))))
            _sub(obj, "occluded", int(bool(inst.attributes.get("occluded", False))))
            _sub(obj, "difficult", int(bool(inst.attributes.get("difficult", False))))
            box = _sub(obj, "bndbox")
            for tag, value in (("xmin", xmin), ("ymin", ymin), ("xmax", xmax), ("ymax", ymax)):
                _sub(box, tag, value)
            extra = {
                k: v for k, v in inst.attributes.items()
                if k not in BUILTIN_ATTRIBUTES and k not in _INTERNAL_ATTRIBUTES and v is not None
            }
            if extra:
                # <attributes><attribute><name>…</name><value>…</value></attribute></attributes>: CVAT's and
                # Datumaro's VOC layout (values as text: true/false, numbers, JSON for lists).
                holder = _sub(obj, "attributes")
                for name, value in extra.items():
                    attribute = _sub(holder, "attribute")
                    _sub(attribute, "name", name)
                    _sub(attribute, "value", _attribute_text(value))
            if inst.attributes.get("bbox_only"):
                # Nobody drew this object's outline: painting its box would claim pixels it does
                # not cover (and steal them from the objects under it). The XML box is all there
                # is, which is how read_voc gives it back (no pixels → box, bbox_only).
                continue
            mask = geo.geometry_to_mask(inst.geometry, width=image.width, height=image.height)
            class_png[mask] = cls
            object_png[mask] = k
        ET.indent(root)
        sink.write(f"{prefix}Annotations/{image_id}.xml", ET.tostring(root, encoding="utf-8", xml_declaration=True))
        sink.write(f"{prefix}SegmentationClass/{image_id}.png", _png(class_png))
        sink.write(f"{prefix}SegmentationObject/{image_id}.png", _png(object_png))
        if image_bytes_for is not None:
            data = image_bytes_for(image)
            if data is not None:
                sink.write(f"{prefix}JPEGImages/{image.file_name}", data)
        stats.images += 1
        stats.objects += len(image.instances)
        stats.ids.append(image_id)

    id_list = "".join(f"{image_id}\n" for image_id in stats.ids).encode()
    sink.write(f"{prefix}ImageSets/Segmentation/{subset}.txt", id_list)
    sink.write(f"{prefix}ImageSets/Main/{subset}.txt", id_list)
    lines = ["# label:color_rgb:parts:actions", "background:0,0,0::"]
    for label, index in class_index.items():
        r, g, b = (int(c) for c in _COLORMAP[index])
        lines.append(f"{label}:{r},{g},{b}::")
    sink.write(f"{prefix}labelmap.txt", ("\n".join(lines) + "\n").encode())
    return stats


__all__ = ["VOC_CLASSES", "find_voc_root", "read_voc", "voc_colormap", "write_voc"]
