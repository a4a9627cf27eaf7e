"""Neutral, format-independent dataset representation shared by all readers and writers."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ml import geometry as geo


class FormatError(ValueError):
    """A dataset file is broken or unsafe; the message names the file and what is wrong.

    ``file`` is the file name as the user knows it (relative to the dataset or archive root),
    ``problem`` is the human-readable reason, e.g. ``annotation 17: polygon has fewer than 3 points``.
    """

    def __init__(self, file: str | Path, problem: str) -> None:
        self.file = str(file)
        self.problem = problem
        super().__init__(f"{self.file}: {problem}" if self.file else problem)


@dataclass
class DatasetInstance:
    """One annotated object: a label and a geometry in the shared geometry contract."""

    label: str
    geometry: dict[str, Any]
    attributes: dict[str, Any] = field(default_factory=dict)
    score: float | None = None
    iscrowd: bool = False
    source_id: str | int | None = None
    # Id of the group the object came from in the source (LabelMe group_id); informational only,
    # the parts of a group are already merged into ``geometry``.
    group: str | int | None = None
    # COCO ``[x, y, w, h]`` and area when the caller already has them from ``geometry.bbox_and_area``
    # (the database stores both on every save): writers then skip recomputing them, which is a
    # large part of exporting big datasets. Readers leave them None.
    bbox: list[float] | None = None
    area: float | None = None


@dataclass
class DatasetImage:
    """One image of a dataset with its instances.

    ``file_name`` is the relative path as written in the source (folders allowed, ``/``
    separators). ``path`` is the image file on disk when the reader found it; some formats
    (LabelMe ``imageData``) embed the pixels instead, then ``embedded_loader`` returns them.
    """

    file_name: str
    width: int
    height: int
    instances: list[DatasetInstance] = field(default_factory=list)
    source_id: str | int | None = None
    path: Path | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    # A callable rather than the bytes themselves so that a dataset of thousands of images with
    # embedded pixels does not sit in memory at once.
    embedded_loader: Callable[[], bytes] | None = field(default=None, repr=False, compare=False)

    def read_bytes(self) -> bytes | None:
        """The encoded image file (JPEG/PNG...) if the reader found it, else None."""
        if self.path is not None:
            return Path(self.path).read_bytes()
        if self.embedded_loader is not None:
            return self.embedded_loader()
        return None


@dataclass(frozen=True)
class RepairNote:
    """One object a reader repaired instead of refusing: where it is and what was changed."""

    file: str
    object: str
    message: str
    changes: tuple[str, ...] = ()

    def __str__(self) -> str:
        return f"{self.file}: {self.object}: {self.message}"


def normalized_geometry(
    geometry: Any, *, width: int, height: int, file: str, where: str, repairs: list[RepairNote]
) -> dict[str, Any]:
    """A reader's geometry through ml.geometry's one normalisation step.

    Repairs (clipping, untangled outlines, parts with no area dropped) are noted in ``repairs``;
    only what cannot be repaired is a FormatError naming the file and the object.
    """
    try:
        out, repair = geo.normalize_geometry(geometry, width=width, height=height)
    except geo.GeometryError as exc:
        raise FormatError(file, f"{where}: {exc}") from exc
    if repair is not None:
        repairs.append(RepairNote(file=file, object=where, message=repair["message"], changes=tuple(repair["changes"])))
    return out



@dataclass
class PendingGeometry:
    """A reader's geometry waiting for normalized_geometries (one call for a whole file)."""

    geometry: Any
    width: int
    height: int
    where: str


def normalized_geometries(pending: list[PendingGeometry], *, file: str, repairs: list[RepairNote]) -> list[dict[str, Any]]:
    """normalized_geometry for many geometries at once, in order: one vectorised call per image size
    instead of one per object (a tenth of the time on a file of thousands of outlines).

    Repairs are noted in the order given; the first geometry (in that order) that cannot be
    repaired is the FormatError.
    """
    groups: dict[tuple[int, int], list[int]] = {}
    for index, item in enumerate(pending):
        groups.setdefault((item.width, item.height), []).append(index)
    out: list[Any] = [None] * len(pending)
    notes: list[geo.Repair | None] = [None] * len(pending)
    failures: list[tuple[int, Exception]] = []
    for (width, height), indexes in groups.items():
        try:
            done, found = geo.normalize_geometries([pending[i].geometry for i in indexes], width=width, height=height)
        except (geo.GeometryError, ValueError, TypeError):
            # Which one: the group again one by one (only a broken file pays for this).
            for i in indexes:
                try:
                    out[i], notes[i] = geo.normalize_geometry(pending[i].geometry, width=width, height=height)
                except (geo.GeometryError, ValueError, TypeError) as exc:
                    failures.append((i, exc))
                    break
            continue
        for i, geometry, note in zip(indexes, done, found):
            out[i], notes[i] = geometry, note
    if failures:
        index, error = min(failures, key=lambda failure: failure[0])
        where = pending[index].where
        if isinstance(error, geo.GeometryError):
            raise FormatError(file, f"{where}: {error}") from error
        # pycocotools raises plain errors on corrupt RLE strings
        raise FormatError(file, f"{where}: unreadable segmentation ({error})") from error
    for item, note in zip(pending, notes):
        if note is not None:
            repairs.append(RepairNote(file=file, object=item.where, message=note["message"], changes=tuple(note["changes"])))
    return out


@dataclass
class Dataset:
    """A whole dataset: labels in a stable order, images, optional label colours (``#rrggbb``).

    ``warnings`` lists things the reader deliberately did not import (e.g. LabelMe line shapes),
    so that the import job can show them instead of dropping data silently.
    """

    labels: list[str]
    images: list[DatasetImage]
    label_colors: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    #: objects repaired on the way in (see normalized_geometry), in reading order
    repairs: list[RepairNote] = field(default_factory=list)

    @property
    def instance_count(self) -> int:
        return sum(len(image.instances) for image in self.images)

    def label_counts(self) -> dict[str, int]:
        """Instances per label, in label order (labels without instances count 0)."""
        counts = Counter(inst.label for image in self.images for inst in image.instances)
        return {label: counts.get(label, 0) for label in self.labels}


def rgb_to_hex(rgb: tuple[int, int, int] | list[int]) -> str:
    r, g, b = (int(c) for c in rgb)
    return f"#{r:02x}{g:02x}{b:02x}"


def hex_to_rgb(color: str) -> tuple[int, int, int]:
    value = color.lstrip("#")
    if len(value) != 6:
        raise ValueError(f"not a #rrggbb colour: {color!r}")
    return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)
