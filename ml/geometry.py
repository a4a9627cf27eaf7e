"""Instance geometry for the whole product: validation, polygon ⇄ mask ⇄ RLE, COCO segmentation, IoU.

The JSON contract (see docs) is one of::

    {"type": "polygons", "polygons": [{"exterior": [[x, y], ...], "holes": [[[x, y], ...], ...]}, ...]}
    {"type": "mask", "rle": {"size": [height, width], "counts": "<COCO compressed RLE>"}}

Coordinates are image pixels with the origin at the top-left corner; pixel (row i, column j) is the
square [j, j+1] x [i, i+1] (the COCO convention).  A polygon covers a pixel when it covers the
pixel's centre (j + 0.5, i + 0.5): this is what pycocotools does when it rasterises COCO polygons,
and we rasterise with pycocotools so that our masks, areas and IoUs agree with the training code
that reads our exports.

Parts of one object are united (they may touch or overlap); holes are subtracted from their own
part only.  Indices in error messages are 0-based, like the JSON arrays they point into.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal, TypedDict

import numpy as np
import pycocotools.mask as mask_utils
import shapely
from shapely.geometry import Polygon
from shapely.geometry.polygon import orient

__all__ = [
    "REPAIR_KINDS",
    "SNAP_DISTANCE",
    "GeometryError",
    "Part",
    "Repair",
    "Rle",
    "bbox_and_area",
    "coco_geometry",
    "convert",
    "from_coco_segmentation",
    "geometry_iou",
    "geometry_to_mask",
    "geometry_to_rle",
    "mask_iou",
    "mask_to_polygons",
    "mask_to_rle",
    "normalize_geometries",
    "normalize_geometry",
    "polygons_to_mask",
    "polygons_to_rle",
    "rle_bbox_area",
    "rle_iou_matrix",
    "rle_to_mask",
    "rle_vote",
    "simplify_polygons",
    "to_coco_segmentation",
    "validate_geometries",
    "validate_geometry",
    "vertex_count",
]

Point = list[float]


class Part(TypedDict):
    """One polygon of an object: an exterior ring and the rings of its holes (rings not closed)."""

    exterior: list[Point]
    holes: list[list[Point]]


class Rle(TypedDict):
    """COCO run-length encoding, column-major, ``counts`` in pycocotools' compressed string form."""

    size: list[int]
    counts: str


Geometry = dict[str, Any]
#: a part as it arrives (JSON dicts), read-only
PartLike = Mapping[str, Any]

# Anything smaller is a sliver produced by collinear points, not a drawn shape.
_MIN_AREA = 1e-9
_LOCATION = re.compile(r"\[\s*(-?[\d.eE+-]+)\s+(-?[\d.eE+-]+)")


class GeometryError(ValueError):
    """A geometry is malformed or invalid; ``str(error)`` is a reason a person can act on.

    ``part``/``hole`` (0-based) and ``point`` locate the problem when known, so an editor can
    highlight it; ``reason`` says it in plain words, for a person looking at the object.
    """

    def __init__(
        self,
        message: str,
        *,
        part: int | None = None,
        hole: int | None = None,
        point: tuple[float, float] | None = None,
        reason: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        #: the problem in plain words for a person looking at the object (no part numbers)
        self.reason = reason or (message if part is None else "its outline is malformed")
        #: position in the list given to validate_geometries (None for a single geometry)
        self.index: int | None = None
        self.part = part
        self.hole = hole
        self.point = point


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------


def validate_geometry(geometry: Any, *, width: int, height: int) -> Geometry:
    """Check ``geometry`` against the contract and a ``width`` x ``height`` image; return it normalised.

    Normalised means: plain floats, rings without a repeated closing point, every part with a
    ``holes`` list, RLE counts as a compressed string (uncompressed ``counts: [ints]`` is accepted
    and converted).  Raises GeometryError with the first problem found.
    """
    try:
        return validate_geometries([geometry], width=width, height=height)[0]
    except GeometryError as exc:
        exc.index = None
        raise


def validate_geometries(geometries: Sequence[Any], *, width: int, height: int) -> list[Geometry]:
    """validate_geometry for all the geometries of one image in one go.

    The numeric checks run vectorised over every point and ring of every geometry, which makes
    saving an image with hundreds of objects several times faster than validating them one by
    one.  A problem raises GeometryError whose ``index`` is the position of the geometry at fault.
    """
    out, batch = _parse(geometries, width=width, height=height, batch=_RingBatch())
    if batch.rings:
        for i, parts in batch.check(width, height).items():
            out[i] = {"type": "polygons", "polygons": parts}
    return out  # type: ignore[return-value]  # every slot was filled above


def _parse(
    geometries: Sequence[Any], *, width: int, height: int, batch: _RingBatch
) -> tuple[list[Geometry | None], _RingBatch]:
    """Structural checks of every geometry: masks checked and set, polygon rings into ``batch``.

    A mask whose RLE is already in canonical form is returned as the object given.
    """
    _check_image_size(width, height)
    out: list[Geometry | None] = [None] * len(geometries)
    for i, geometry in enumerate(geometries):
        try:
            if not isinstance(geometry, dict):
                raise GeometryError('geometry must be an object with a "type"')
            kind = geometry.get("type")
            if kind == "polygons":
                _check_keys(geometry, {"type", "polygons"}, "geometry")
                batch.add(i, geometry.get("polygons"))
            elif kind == "mask":
                _check_keys(geometry, {"type", "rle"}, "geometry")
                rle = _validate_rle(geometry.get("rle"), width=width, height=height, allow_empty=False)
                out[i] = geometry if rle == geometry.get("rle") else {"type": "mask", "rle": rle}
            else:
                raise GeometryError('geometry type must be "polygons" or "mask"')
        except GeometryError as exc:
            exc.index = i
            raise
    return out, batch


def _check_image_size(width: Any, height: Any) -> None:
    for name, value in (("width", width), ("height", height)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value <= 0:
            raise GeometryError(f"image {name} must be a positive integer, got {value!r}")


def _check_keys(obj: dict[str, Any], allowed: set[str], what: str) -> None:
    for key in obj:
        if key not in allowed:
            raise GeometryError(f"unexpected key {key!r} in {what}")


def _ring_name(part: int, hole: int | None) -> str:
    return f"part {part}" if hole is None else f"hole {hole} of part {part}"


def _ring_array(ring: Any, part: int, hole: int | None, *, strict: bool = True) -> tuple[np.ndarray, bool]:
    """One ring as an (n, 2) float array, closing point dropped; structural errors raised.

    Also says whether the ring was given closed.  ``strict=False`` lets rings with fewer than 3
    points through (normalisation drops them instead of refusing the object).
    """
    name = _ring_name(part, hole)
    if not isinstance(ring, (list, tuple)):
        raise GeometryError(f"{name} must be a list of [x, y] points", part=part, hole=hole)
    if not strict and len(ring) == 0:
        return np.zeros((0, 2)), False
    if strict and len(ring) < 3:
        raise GeometryError(f"{name} has fewer than 3 points", part=part, hole=hole)
    try:
        arr = np.asarray(ring)
    except (ValueError, TypeError):  # ragged nesting such as [[1, 2], [3]]
        raise GeometryError(f"{name} must be a list of [x, y] points", part=part, hole=hole) from None
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise GeometryError(f"{name} must be a list of [x, y] points", part=part, hole=hole)
    if arr.dtype.kind not in "iuf" or (
        # [1, true] becomes an integer array: booleans are not coordinates
        arr.dtype.kind in "iu" and any(isinstance(v, bool) for point in ring for v in point)
    ):
        # strings, None, booleans: checked on the dtype because asarray(dtype=float) would
        # silently accept "1.5"
        raise GeometryError(
            f"coordinates must be finite numbers ({name})", part=part, hole=hole,
            reason="its coordinates are not all finite numbers",
        )
    arr = arr.astype(np.float64, copy=False)
    closed = False
    if len(arr) > 1 and arr[0, 0] == arr[-1, 0] and arr[0, 1] == arr[-1, 1]:
        arr = arr[:-1]
        closed = True
        if strict and len(arr) < 3:
            raise GeometryError(f"{name} has fewer than 3 points", part=part, hole=hole)
    return arr, closed


class _RingBatch:
    """Rings of many polygon geometries, parsed one by one and then checked all at once."""

    def __init__(self, *, strict: bool = True) -> None:
        self.strict = strict
        self.rings: list[np.ndarray] = []
        #: the ring as given, and whether it can be returned as it is (an open list of numbers)
        self.raw: list[Any] = []
        self.reusable: list[bool] = []
        #: per exterior ring: its part dict already has exactly the keys we write
        self.part_canonical: dict[int, bool] = {}
        self.ring_geometry: list[int] = []
        self.ring_part: list[int] = []
        self.ring_hole: list[int] = []  # -1 for an exterior
        self.part_count: dict[int, int] = {}

    def add(self, index: int, polygons: Any) -> None:
        """Structural checks of one geometry's ``polygons`` list; keep its rings as arrays."""
        if not isinstance(polygons, list):
            raise GeometryError('"polygons" must be a list of parts')
        if not polygons:
            raise GeometryError("polygons list is empty")
        for p, part in enumerate(polygons):
            if not isinstance(part, dict):
                raise GeometryError(f'part {p} must be an object with an "exterior"', part=p)
            _check_keys(part, {"exterior", "holes"}, f"part {p}")
            if "exterior" not in part:
                raise GeometryError(f'part {p} has no "exterior"', part=p)
            holes = part.get("holes", [])
            if not isinstance(holes, list):
                raise GeometryError(f"holes of part {p} must be a list of rings", part=p)
            self.part_canonical[len(self.rings)] = isinstance(part.get("holes"), list)
            for h, ring in enumerate([part["exterior"], *holes]):
                arr, closed = _ring_array(ring, p, h - 1 if h else None, strict=self.strict)
                self.rings.append(arr)
                self.raw.append(ring)
                self.reusable.append(isinstance(ring, list) and not closed and all(type(pt) is list for pt in ring))
                self.ring_geometry.append(index)
                self.ring_part.append(p)
                self.ring_hole.append(h - 1)
        self.part_count[index] = len(polygons)

    def _fail(self, ring: int, message: str, point: tuple[float, float] | None = None) -> GeometryError:
        hole = self.ring_hole[ring] if self.ring_hole[ring] >= 0 else None
        part = self.ring_part[ring]
        exc = GeometryError(message.format(name=_ring_name(part, hole)), part=part, hole=hole, point=point)
        exc.index = self.ring_geometry[ring]
        return exc

    def check(self, width: int, height: int) -> dict[int, list[Part]]:
        """Numeric and topological checks over all rings; the normalised parts per geometry."""
        # Vectorised over all points / rings / parts: the API validates every save, so this path
        # has to stay in the low milliseconds for hundreds of polygons.
        rings = self.rings
        lengths = np.fromiter((len(r) for r in rings), dtype=np.int64, count=len(rings))
        coords = np.concatenate(rings)
        starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))

        def ring_of(point_index: int) -> int:
            return int(np.searchsorted(starts, point_index, side="right") - 1)

        finite = np.isfinite(coords).all(axis=1)
        if not finite.all():
            raise self._fail(ring_of(int(np.argmin(finite))), "coordinates must be finite numbers ({name})")
        x, y = coords[:, 0], coords[:, 1]
        outside = (x < 0) | (x > width) | (y < 0) | (y > height)
        if outside.any():
            i = int(np.argmax(outside))
            point = (float(x[i]), float(y[i]))
            raise self._fail(
                ring_of(i),
                f"point ({point[0]:.1f}, {point[1]:.1f}) of {{name}} is outside the {width}x{height} image",
                point,
            )
        areas = _ring_areas(coords, starts, lengths)
        for r in np.flatnonzero(areas <= _MIN_AREA).tolist():
            if len(np.unique(rings[r], axis=0)) < 3:
                raise self._fail(r, "{name} has fewer than 3 distinct points")
            if _collinear(rings[r]):
                raise self._fail(r, "{name} has zero area")
            # else lobes of a self-intersecting ring cancel out (a bow-tie): reported below

        # GEOS wants closed rings; from_ragged_array is the cheapest way to build many polygons
        closed = np.concatenate([np.concatenate((r, r[:1])) for r in rings])
        ring_offsets = np.concatenate(([0], np.cumsum(lengths + 1)))
        exterior_rings = np.flatnonzero(np.asarray(self.ring_hole) < 0)
        part_offsets = np.concatenate((exterior_rings, [len(rings)]))
        shapes = shapely.from_ragged_array(shapely.GeometryType.POLYGON, closed, (ring_offsets, part_offsets))
        valid = shapely.is_valid(shapes)
        if not valid.all():
            k = int(np.argmin(valid))
            first_ring = int(exterior_rings[k])
            try:
                _raise_invalid_part(self.ring_part[first_ring], shapes[k])
            except GeometryError as exc:
                exc.index = self.ring_geometry[first_ring]
                raise

        out: dict[int, list[Part]] = {
            i: [{"exterior": [], "holes": []} for _ in range(n)] for i, n in self.part_count.items()
        }
        for r, arr in enumerate(rings):
            part = out[self.ring_geometry[r]][self.ring_part[r]]
            if self.ring_hole[r] < 0:
                part["exterior"] = arr.tolist()
            else:
                part["holes"].append(arr.tolist())
        return out


    def normalize(self, width: int, height: int) -> dict[int, tuple[list[Part], bool, set[str]]]:
        """Per geometry: (parts, whether the given object can be kept as it is, changes made).

        Vectorised over all rings to find the geometries that need nothing (the common case on
        every save); only the others are repaired, part by part, with shapely.
        """
        rings = self.rings
        count = len(rings)
        lengths = np.fromiter((len(r) for r in rings), dtype=np.int64, count=count)
        coords = np.concatenate(rings) if int(lengths.sum()) else np.zeros((0, 2))
        ring_ids = np.repeat(np.arange(count), lengths)
        finite = np.isfinite(coords).all(axis=1)
        if not finite.all():
            exc = self._fail(int(ring_ids[int(np.argmin(finite))]), "coordinates must be finite numbers ({name})")
            exc.reason = "its coordinates are not all finite numbers"
            raise exc
        x, y = coords[:, 0], coords[:, 1]
        starts = np.concatenate(([0], np.cumsum(lengths)[:-1])).astype(np.int64)
        nxt = np.arange(1, len(coords) + 1)
        nonempty = lengths > 0
        nxt[(starts + lengths - 1)[nonempty]] = starts[nonempty]
        outside = (x < 0) | (x > width) | (y < 0) | (y > height)
        repeated = (coords == coords[nxt]).all(axis=1) if len(coords) else np.zeros(0, dtype=bool)
        cross = x * y[nxt] - x[nxt] * y if len(coords) else np.zeros(0)
        areas = np.abs(np.bincount(ring_ids, weights=cross, minlength=count)) / 2.0
        needs = (
            (np.bincount(ring_ids, weights=outside | repeated, minlength=count) > 0)
            | (lengths < 3)
            | (areas <= _MIN_AREA)
        )
        geometry_of = np.asarray(self.ring_geometry, dtype=np.int64)
        flagged = set(np.unique(geometry_of[needs]).tolist())

        # Validity (GEOS) of the parts of the geometries that passed the cheap checks.
        exterior_rings = np.flatnonzero(np.asarray(self.ring_hole) < 0)
        part_end = np.concatenate((exterior_rings[1:], [count]))
        candidate = np.array([int(geometry_of[r]) not in flagged for r in exterior_rings.tolist()], dtype=bool)
        if candidate.any():
            chosen = [(int(s), int(e)) for s, e, c in zip(exterior_rings, part_end, candidate) if c]
            ring_list = [r for s, e in chosen for r in range(s, e)]
            closed = np.concatenate([np.concatenate((rings[r], rings[r][:1])) for r in ring_list])
            ring_offsets = np.concatenate(([0], np.cumsum(lengths[ring_list] + 1)))
            part_sizes = [e - s for s, e in chosen]
            part_offsets = np.concatenate(([0], np.cumsum(part_sizes)))
            shapes = shapely.from_ragged_array(shapely.GeometryType.POLYGON, closed, (ring_offsets, part_offsets))
            for (s, _), valid in zip(chosen, shapely.is_valid(shapes).tolist()):
                if not valid:
                    flagged.add(int(geometry_of[s]))

        grouped: dict[int, list[tuple[int, int]]] = {}
        for s, e in zip(exterior_rings.tolist(), part_end.tolist()):
            grouped.setdefault(int(geometry_of[s]), []).append((s, e))
        box = shapely.box(0, 0, width, height)
        out: dict[int, tuple[list[Part], bool, set[str]]] = {}
        for index, spans in grouped.items():
            if index not in flagged:
                parts: list[Part] = []
                same = True
                for s, e in spans:
                    same = same and self.part_canonical[s] and all(self.reusable[r] for r in range(s, e))
                    parts.append(
                        {"exterior": self._ring_out(s), "holes": [self._ring_out(r) for r in range(s + 1, e)]}
                    )
                out[index] = (parts, same, set())
                continue
            out[index] = self._repair(index, spans, width, height, box)
        return out

    def _ring_out(self, r: int) -> list[Point]:
        return self.raw[r] if self.reusable[r] else self.rings[r].tolist()

    def _repair(
        self, index: int, spans: list[tuple[int, int]], width: int, height: int, box: Any
    ) -> tuple[list[Part], bool, set[str]]:
        parts: list[Part] = []
        changes: set[str] = set()
        outside = 0
        for s, e in spans:
            pieces, part_changes, wholly_outside = _repair_part(
                self.rings[s], [self.rings[r] for r in range(s + 1, e)], width, height, box
            )
            if wholly_outside:
                outside += 1
                changes.add("clipped")
            changes |= part_changes
            parts.extend(pieces)
        if not parts:
            if outside:
                exc = GeometryError(
                    f"the object lies entirely outside the {width}x{height} image",
                    reason="it lies entirely outside the image",
                )
            else:
                exc = GeometryError(
                    "the object has no area (fewer than 3 distinct points, or all on one line)",
                    reason="it has no area (fewer than 3 distinct points, or all on one line)",
                )
            exc.index = index
            raise exc
        try:
            # The repaired parts must pass the strict checks; a second round settles the rare
            # case where GEOS's output still trips them (points on the edge after clipping).
            validate_geometries([{"type": "polygons", "polygons": parts}], width=width, height=height)
        except GeometryError:
            again = _RingBatch(strict=False)
            again.add(0, parts)
            try:
                parts2, _, more = again.normalize(width, height)[0]
                validate_geometries([{"type": "polygons", "polygons": parts2}], width=width, height=height)
            except GeometryError as exc:
                failure = GeometryError(f"the outline could not be repaired ({exc})", reason="its outline could not be repaired")
                failure.index = index
                raise failure from None
            parts, changes = parts2, changes | more
        return parts, False, changes


def _collinear(ring: np.ndarray) -> bool:
    centred = ring - ring.mean(axis=0)
    singular = np.linalg.svd(centred, compute_uv=False)
    return bool(singular[1] <= 1e-9 * max(1.0, singular[0]))


def _ring_areas(coords: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Unsigned shoelace area of every ring in a concatenated coordinate array."""
    nxt = np.arange(1, len(coords) + 1)
    nxt[starts + lengths - 1] = starts  # each ring wraps to its own first point
    x, y = coords[:, 0], coords[:, 1]
    cross = x * y[nxt] - x[nxt] * y
    return np.abs(np.add.reduceat(cross, starts)) / 2.0


def _location(reason: str) -> tuple[float, float] | None:
    match = _LOCATION.search(reason)
    if not match:
        return None
    return float(match.group(1)), float(match.group(2))


def _near(point: tuple[float, float] | None) -> str:
    return f" near ({point[0]:.1f}, {point[1]:.1f})" if point else ""


def _raise_invalid_part(p: int, polygon: Polygon) -> None:
    """Turn GEOS's validity reason for part ``p`` into a message naming the ring at fault."""
    shell = Polygon(polygon.exterior)
    if not shell.is_valid:
        point = _location(shapely.is_valid_reason(shell))
        raise GeometryError(f"part {p} is self-intersecting{_near(point)}", part=p, point=point)
    holes = [Polygon(ring) for ring in polygon.interiors]
    for h, hole in enumerate(holes):
        if not hole.is_valid:
            point = _location(shapely.is_valid_reason(hole))
            raise GeometryError(
                f"hole {h} of part {p} is self-intersecting{_near(point)}", part=p, hole=h, point=point
            )
    for h, hole in enumerate(holes):
        if not shell.covers(hole):
            raise GeometryError(f"hole {h} of part {p} is not inside its exterior", part=p, hole=h)
    if len(holes) > 1:
        tree = shapely.STRtree(holes)
        left, right = tree.query(holes, predicate="intersects")
        for a, b in zip(left.tolist(), right.tolist()):
            # touching at points is allowed (OGC); sharing interior is not
            if a < b and shapely.relate_pattern(holes[a], holes[b], "T********"):
                raise GeometryError(f"holes {a} and {b} of part {p} overlap", part=p, hole=b)
    reason = shapely.is_valid_reason(polygon)
    point = _location(reason)
    text = reason.split("[", 1)[0].strip().lower() or "invalid"
    raise GeometryError(f"part {p} is invalid: {text}{_near(point)}", part=p, point=point)


# --------------------------------------------------------------------------------------------
# Normalisation: what every path (saves, imports, assists, conversions) goes through
# --------------------------------------------------------------------------------------------

#: Points at most this far (pixels) outside the image move onto its edge; parts farther out are
#: cut off at the edge.  A click on the border lands a hair outside after the screen → image
#: transform (480.0000148 on a 480-pixel image), and tools trace to the pixel edge and beyond.
SNAP_DISTANCE = 1.0
#: Tolerances (pixels) tried in turn when an imported outline has more points than allowed.
SIMPLIFY_TOLERANCES = (0.1, 0.25, 0.5, 1.0, 2.0)

_REPAIR_TEXT = {
    "repeated_points": "repeated points were removed",
    "snapped": "points just outside the image were moved onto its edge",
    "untangled": "an outline that crossed itself was untangled",
    "holes_fixed": "a hole reaching outside its outline (or into another hole) was trimmed",
    "clipped": "the part outside the image was cut off",
    "dropped_parts": "parts with no area were removed",
    "dropped_holes": "holes with no area were removed",
    "simplified": "the outline was simplified",
}
#: The order changes are listed in (stable, so reports and tests can compare them).
REPAIR_KINDS = tuple(_REPAIR_TEXT)


class Repair(TypedDict):
    """What normalisation changed in one geometry: ``changes`` are REPAIR_KINDS codes."""

    changes: list[str]
    message: str


def normalize_geometry(
    geometry: Any, *, width: int, height: int, max_vertices: int | None = None, simplify: bool = False
) -> tuple[Geometry, Repair | None]:
    """normalize_geometries for one geometry."""
    try:
        out, repairs = normalize_geometries(
            [geometry], width=width, height=height, max_vertices=max_vertices, simplify=simplify
        )
    except GeometryError as exc:
        exc.index = None
        raise
    return out[0], repairs[0]


def normalize_geometries(
    geometries: Sequence[Any],
    *,
    width: int,
    height: int,
    max_vertices: int | None = None,
    simplify: bool = False,
) -> tuple[list[Geometry], list[Repair | None]]:
    """Repair what people and tools really produce; refuse only garbage.  The one entry point.

    Repaired (and reported, one Repair per geometry, None when nothing changed):

    - points at most SNAP_DISTANCE outside the image move onto its edge; parts farther out are
      cut off at the edge (intersection with the image box);
    - rings that cross or touch themselves (bow ties, loops, spikes) become valid polygons
      (shapely ``make_valid``, "structure" method: the area the outline encloses is kept, its
      pieces stay parts of the same object); holes reaching outside their part are trimmed to it;
    - repeated consecutive points are removed; parts and holes with no area are dropped;
    - with ``simplify``, an outline over ``max_vertices`` points is simplified (topology kept)
      at the smallest of SIMPLIFY_TOLERANCES that brings it under the limit.

    Refused with GeometryError (``index`` names the geometry, ``reason`` says it in plain words):
    malformed structure, non-finite numbers, an RLE of the wrong size or an empty mask, an object
    with no area left or wholly outside the image, more than ``max_vertices`` points (without
    ``simplify``).

    Geometries that need nothing are returned as the very objects given (byte for byte in JSON);
    the result is deterministic and idempotent: ``normalize(normalize(g)) == normalize(g)``.
    Only the geometries that need a repair leave the vectorised fast path.
    """
    out, batch = _parse(geometries, width=width, height=height, batch=_RingBatch(strict=False))
    repairs: list[Repair | None] = [None] * len(geometries)
    if batch.rings:
        for i, (parts, same, changes) in batch.normalize(width, height).items():
            out[i] = geometries[i] if same else {"type": "polygons", "polygons": parts}
            if changes:
                repairs[i] = _repair_report(changes)
    if max_vertices is not None:
        for i, geometry in enumerate(out):
            if geometry is not None and geometry["type"] == "polygons":
                try:
                    limited, note = _limit_vertices(geometry, max_vertices, simplify)
                except GeometryError as exc:
                    exc.index = i
                    raise
                if note:
                    out[i] = limited
                    previous = repairs[i]
                    if previous is None:
                        repairs[i] = {"changes": ["simplified"], "message": f"{note[:1].upper()}{note[1:]}."}
                    else:
                        # "….": one sentence, the simplification appended
                        message = f"{previous['message'].removesuffix('.')}; {note}."
                        repairs[i] = {"changes": [*previous["changes"], "simplified"], "message": message}
    return out, repairs  # type: ignore[return-value]  # every slot was filled above


def _repair_report(changes: set[str]) -> Repair:
    ordered = [kind for kind in REPAIR_KINDS if kind in changes]
    text = "; ".join(_REPAIR_TEXT[kind] for kind in ordered)
    return {"changes": ordered, "message": text[:1].upper() + text[1:] + "."}


def vertex_count(geometry: Geometry) -> int:
    """Points in all rings of a polygons geometry (0 for a mask)."""
    if geometry.get("type") != "polygons":
        return 0
    return sum(len(p["exterior"]) + sum(len(h) for h in p.get("holes") or []) for p in geometry["polygons"])


def _limit_vertices(geometry: Geometry, limit: int, simplify: bool) -> tuple[Geometry, str]:
    count = vertex_count(geometry)
    if count <= limit:
        return geometry, ""
    if simplify:
        for tolerance in SIMPLIFY_TOLERANCES:
            parts = simplify_polygons(geometry["polygons"], tolerance)
            simplified = {"type": "polygons", "polygons": parts}
            after = vertex_count(simplified)
            if parts and after <= limit:
                return simplified, f"simplified from {count:,} to {after:,} points (within {tolerance:g} px)"
    reason = f"it has {count:,} points; the limit is {limit:,} per object"
    raise GeometryError(f"outline has {count} points, more than the limit of {limit} per object", reason=reason)


def _without_repeats(ring: np.ndarray) -> tuple[np.ndarray, set[str]]:
    """Consecutive duplicate points removed."""
    if len(ring) > 1:
        keep = np.any(ring != np.roll(ring, 1, axis=0), axis=1)
        if not keep.all():
            return (ring[keep] if keep.any() else ring[:1]), {"repeated_points"}
    return ring, set()


def _tidy_ring(ring: np.ndarray, width: int, height: int) -> tuple[np.ndarray, set[str]]:
    """Consecutive duplicates removed and points within SNAP_DISTANCE of the image moved onto it."""
    ring, changes = _without_repeats(ring)
    lo = np.array([0.0, 0.0])
    hi = np.array([float(width), float(height)])
    near = (ring >= lo - SNAP_DISTANCE) & (ring <= hi + SNAP_DISTANCE)
    outside = (ring < lo) | (ring > hi)
    snap = outside & near
    if snap.any():
        changes.add("snapped")
        ring = np.where(snap, np.clip(ring, lo, hi), ring)
        # snapping can make neighbours equal (two points a hair below the same edge point)
        ring, more = _tidy_ring(ring, width, height)
        changes |= more - {"repeated_points"}
    return ring, changes


def _distinct(ring: np.ndarray) -> bool:
    return len(ring) >= 3 and len(np.unique(ring, axis=0)) >= 3


def _valid_area(ring: np.ndarray) -> Any:
    """A valid shapely geometry for the area a ring encloses (make_valid when it crosses itself)."""
    shape = Polygon(ring)
    if shape.is_valid:
        return shape, False
    return shapely.make_valid(shape, method="structure", keep_collapsed=False), True


def _repair_part(
    exterior: np.ndarray, holes: list[np.ndarray], width: int, height: int, box: Any
) -> tuple[list[Part], set[str], bool]:
    """One part made valid and clipped: (parts it became, changes, whether it lay wholly outside).

    Points a hair outside the image are snapped onto its edge (no new vertices). Where snapping
    would change the part's area by more than a pixel or 1% (a thin sliver along the edge,
    flattened or swollen), the part is clipped instead, keeping the area as drawn inside the image.
    """
    snapped = _repair_part_once(exterior, holes, width, height, box, snap=True)
    if "snapped" not in snapped[1]:
        return snapped
    clipped = _repair_part_once(exterior, holes, width, height, box, snap=False)
    area_snapped, area_clipped = _parts_area(snapped[0]), _parts_area(clipped[0])
    if (area_clipped > 0 and not snapped[0]) or abs(area_snapped - area_clipped) > snap_area_slack(area_clipped):
        return clipped
    return snapped


def snap_area_slack(area: float) -> float:
    """How much snapping onto the edge may change an area before the part is clipped instead."""
    return max(1.0, 0.01 * area)


def _parts_area(parts: list[Part]) -> float:
    return float(sum(Polygon(p["exterior"], p["holes"]).area for p in parts))


def _repair_part_once(
    exterior: np.ndarray, holes: list[np.ndarray], width: int, height: int, box: Any, *, snap: bool
) -> tuple[list[Part], set[str], bool]:
    exterior, changes = _tidy_ring(exterior, width, height) if snap else _without_repeats(exterior)
    if not _distinct(exterior) or _collinear(exterior):
        return [], changes | {"dropped_parts"}, False
    tidy_holes: list[np.ndarray] = []
    for hole in holes:
        hole, more = _tidy_ring(hole, width, height) if snap else _without_repeats(hole)
        changes |= more
        if _distinct(hole) and not _collinear(hole):
            tidy_holes.append(hole)
        else:
            changes.add("dropped_holes")
    shape = Polygon(exterior, tidy_holes)
    if not shape.is_valid:
        outer, untangled = _valid_area(exterior)
        if untangled:
            changes.add("untangled")
        shape = outer
        if tidy_holes:
            hole_shapes = []
            for hole in tidy_holes:
                hole_shape, hole_untangled = _valid_area(hole)
                if hole_untangled:
                    changes.add("untangled")
                hole_shapes.append(hole_shape)
            cut = shapely.union_all(hole_shapes)
            if not outer.covers(cut) or len(hole_shapes) > 1 and cut.area < sum(h.area for h in hole_shapes) - _MIN_AREA:
                changes.add("holes_fixed")
            shape = outer.difference(cut)
    xmin, ymin, xmax, ymax = shape.bounds
    if xmin < 0 or ymin < 0 or xmax > width or ymax > height:
        clipped = shape.intersection(box)
        if clipped.is_empty or clipped.area <= _MIN_AREA:
            return [], changes, True
        changes.add("clipped")
        shape = clipped
    pieces = _polygonal_pieces(shape)
    if not pieces:
        return [], changes | {"dropped_parts"}, False
    if len(pieces) == 1 and not changes and shape is not None and shape.geom_type == "Polygon":
        return [{"exterior": exterior.tolist(), "holes": [h.tolist() for h in tidy_holes]}], changes, False
    return [_clamped_part(orient(piece), width, height) for piece in pieces], changes, False


def _clamped_part(polygon: Polygon, width: int, height: int) -> Part:
    """A shapely part as our rings, kept inside the image against floating-point fuzz at the edge."""
    hi = np.array([float(width), float(height)])

    def ring(coords: Any) -> list[Point]:
        arr = np.clip(np.asarray(coords, dtype=np.float64)[:-1, :2], 0.0, hi)
        keep = np.any(arr != np.roll(arr, 1, axis=0), axis=1)
        return arr[keep].tolist()

    return {"exterior": ring(polygon.exterior.coords), "holes": [ring(r.coords) for r in polygon.interiors]}


# --------------------------------------------------------------------------------------------
# RLE
# --------------------------------------------------------------------------------------------


def _decode_counts(counts: str) -> np.ndarray:
    """The run lengths of a pycocotools compressed counts string (the rleFrString format).

    Decoded here rather than trusting pycocotools: its area/toBbox/merge do not check that the
    runs add up to the mask size, so untrusted input must be checked before it reaches them.
    """
    try:
        raw = np.frombuffer(counts.encode("ascii"), dtype=np.uint8).astype(np.int64) - 48
    except UnicodeEncodeError:
        raise GeometryError("RLE counts string has invalid characters") from None
    if raw.size == 0:
        return np.zeros(0, dtype=np.int64)
    if raw.min() < 0 or raw.max() > 63:
        raise GeometryError("RLE counts string has invalid characters")
    more = (raw & 0x20) != 0
    if more[-1]:
        raise GeometryError("RLE counts string is truncated")
    ends = np.flatnonzero(~more)
    starts = np.concatenate(([0], ends[:-1] + 1))
    digit = np.arange(raw.size) - np.repeat(starts, ends - starts + 1)
    if digit.max() > 11:
        raise GeometryError("RLE counts string holds a number that is too large")
    values = np.add.reduceat((raw & 0x1F) << (5 * digit), starts)
    negative = (raw[ends] & 0x10) != 0
    values[negative] |= np.left_shift(-1, 5 * (digit[ends][negative] + 1))
    # counts after the second are stored as differences to the count two places back
    runs = values.copy()
    runs[1::2] = np.cumsum(values[1::2])
    runs[2::2] = np.cumsum(values[2::2])
    return runs


def _validate_rle(
    rle: Any, *, width: int | None = None, height: int | None = None, allow_empty: bool = True
) -> Rle:
    """Check an RLE dict (compressed or uncompressed counts) and return it with string counts."""
    if not isinstance(rle, dict):
        raise GeometryError('mask must have an "rle" object with "size" and "counts"')
    _check_keys(rle, {"size", "counts"}, "rle")
    size = rle.get("size")
    if (
        not isinstance(size, (list, tuple))
        or len(size) != 2
        or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v > 0 for v in size)
    ):
        raise GeometryError("RLE size must be [height, width] with positive integers")
    h, w = int(size[0]), int(size[1])
    if width is not None and height is not None and (h, w) != (height, width):
        raise GeometryError(f"mask size {w}x{h} does not match the {width}x{height} image")
    counts = rle.get("counts")
    if isinstance(counts, bytes):
        counts = counts.decode("ascii", errors="replace")
    if isinstance(counts, str):
        runs = _decode_counts(counts)
        compressed = counts
    elif isinstance(counts, (list, tuple)):
        if not all(isinstance(c, (int, np.integer)) and not isinstance(c, bool) for c in counts):
            raise GeometryError("RLE counts must be integers")
        runs = np.asarray(counts, dtype=np.int64).reshape(-1)
        compressed = ""
    else:
        raise GeometryError("RLE counts must be a compressed string or a list of integers")
    if runs.size and runs.min() < 0:
        raise GeometryError("RLE counts must not be negative")
    if int(runs.sum()) != h * w:
        raise GeometryError("RLE counts do not add up to height*width")
    if not allow_empty and int(runs[1::2].sum()) == 0:
        raise GeometryError("mask is empty")
    if not compressed:
        encoded = mask_utils.frPyObjects({"size": [h, w], "counts": [int(c) for c in runs]}, h, w)
        compressed = encoded["counts"].decode("ascii")
    return {"size": [h, w], "counts": compressed}


def _coco_rle(rle: Rle) -> dict[str, Any]:
    """The bytes-counts form the pycocotools C functions take."""
    return {"size": list(rle["size"]), "counts": rle["counts"].encode("ascii")}


def rle_to_mask(rle: Any) -> np.ndarray:
    """Decode a COCO RLE (compressed or uncompressed counts) to a (height, width) bool array."""
    checked = _validate_rle(rle)
    return mask_utils.decode(_coco_rle(checked)).astype(bool)


def mask_to_rle(mask: np.ndarray, *, within: tuple[int, int, int, int] | None = None) -> Rle:
    """Encode a (height, width) binary array as COCO compressed RLE with ``counts`` as str.

    ``within`` = (x0, y0, x1, y1) says that every set pixel lies in those columns and rows (as a
    segmenter knows of the masks it pasted into its boxes): only that part is read, the rest is
    taken as 0. A model's masks cover a small part of the image, so this is several times faster
    than encoding the whole (bench/preannotate_overhead.py).
    """
    arr = np.asarray(mask)
    if arr.ndim != 2 or 0 in arr.shape:
        raise GeometryError(f"mask must be a non-empty 2-D array, got shape {arr.shape}")
    if within is not None:
        return _rle_within(arr, within)
    # A bool mask is encoded through a uint8 view of its bytes: no copy at all when the mask is
    # column-major already (as the segmenter's are), since COCO RLE runs down the columns.
    binary = arr.view(np.uint8) if arr.dtype == bool else (arr != 0).view(np.uint8)
    encoded = mask_utils.encode(np.asfortranarray(binary))
    return {"size": [int(v) for v in encoded["size"]], "counts": encoded["counts"].decode("ascii")}


def _rle_within(arr: np.ndarray, within: tuple[int, int, int, int]) -> Rle:
    height, width = arr.shape
    x0, y0 = max(0, int(within[0])), max(0, int(within[1]))
    x1, y1 = min(width, int(within[2])), min(height, int(within[3]))
    if x1 <= x0 or y1 <= y0:
        counts = np.array([height * width])
    else:
        # The part, a zero row above and below it, read down its columns: a run never spans two
        # columns, and each change of value is a run boundary, placed back in the whole image.
        rows = y1 - y0 + 2
        part = np.zeros((rows, x1 - x0), np.uint8, order="F")
        part[1:-1] = arr[y0:y1, x0:x1] != 0
        flat = part.ravel(order="F")
        changes = np.flatnonzero(flat[1:] != flat[:-1]) + 1
        column, row = np.divmod(changes, rows)
        edges = (x0 + column) * height + (y0 + row - 1)
        # A run that ends at the bottom of a full-height column and one that starts at the top of
        # the next are one run in the image: their shared boundary goes; so does one at the very end.
        shared = np.zeros(len(edges), bool)
        if len(edges) > 1:
            same = edges[1:] == edges[:-1]
            shared[1:] |= same
            shared[:-1] |= same
        edges = edges[~shared & (edges < height * width)]
        counts = np.diff(edges, prepend=0, append=height * width)
    encoded = mask_utils.frPyObjects({"counts": counts.tolist(), "size": [height, width]}, height, width)
    return {"size": [height, width], "counts": encoded["counts"].decode("ascii")}


def rle_bbox_area(rle: Rle) -> tuple[list[float], float]:
    """COCO ``[x, y, w, h]`` pixel box and pixel count of a compressed RLE (as mask_to_rle makes)."""
    coco = _coco_rle(rle)
    return [float(v) for v in mask_utils.toBbox(coco)], float(mask_utils.area(coco))


def rle_iou_matrix(a: Sequence[Rle], b: Sequence[Rle]) -> np.ndarray:
    """Pixel IoU of every RLE in ``a`` with every RLE in ``b`` (all of one image size), as a float array."""
    if not a or not b:
        return np.zeros((len(a), len(b)), dtype=np.float64)
    ious = mask_utils.iou([_coco_rle(r) for r in a], [_coco_rle(r) for r in b], [0] * len(b))
    return np.asarray(ious, dtype=np.float64).reshape(len(a), len(b))


def rle_vote(rles: Sequence[Rle], minimum: int) -> Rle:
    """The pixels covered by at least ``minimum`` of ``rles`` (all of one size), as compressed RLE.

    ``minimum=1`` is the union, ``len(rles)`` the intersection, ``len(rles) // 2 + 1`` a strict
    majority.  Counted on the runs (a sweep over their boundaries), never on a full-size array,
    so the cost follows the outlines' lengths, not the image's area.
    """
    if not rles:
        raise GeometryError("rle_vote needs at least one mask")
    size = [int(v) for v in rles[0]["size"]]
    if any([int(v) for v in r["size"]] != size for r in rles):
        raise GeometryError("masks of different sizes cannot be combined")
    return _runs_to_rle(_vote_runs([_decode_counts(r["counts"]) for r in rles], minimum, size[0] * size[1]), size)


def _vote_runs(runs_list: Sequence[np.ndarray], minimum: int, total: int) -> np.ndarray:
    """Run lengths (zeros first) of the pixels inside at least ``minimum`` of the run-length masks."""
    starts, ends = [], []
    for runs in runs_list:
        bounds = np.concatenate(([0], np.cumsum(runs)))
        ones = len(runs) // 2  # runs 1, 3, 5, ... are the set pixels
        starts.append(bounds[1 : 2 * ones : 2])
        ends.append(bounds[2 : 2 * ones + 1 : 2])
    positions = np.concatenate(starts + ends)
    change = np.concatenate([np.ones(sum(len(s) for s in starts)), -np.ones(sum(len(e) for e in ends))])
    edges, where = np.unique(positions, return_inverse=True)
    covered = np.cumsum(np.bincount(where, weights=change, minlength=len(edges))) >= max(minimum, 1)
    # on from an edge to the next: a boundary wherever "covered" flips
    flips = edges[np.flatnonzero(np.diff(np.concatenate(([False], covered)).astype(np.int8)))]
    runs = np.diff(np.concatenate(([0], flips, [total])))
    # set to the last pixel: no empty run after it (pycocotools' own encoding has none)
    return runs[:-1] if len(runs) > 1 and runs[-1] == 0 else runs


def _runs_to_rle(runs: np.ndarray, size: list[int]) -> Rle:
    encoded = mask_utils.frPyObjects({"size": size, "counts": [int(c) for c in runs]}, size[0], size[1])
    return {"size": size, "counts": encoded["counts"].decode("ascii")}


def _complement_runs(runs: np.ndarray) -> np.ndarray:
    """The run lengths of the inverted mask (runs start with the unset pixels)."""
    if runs.size and runs[0] == 0:
        return runs[1:]
    return np.concatenate(([0], runs))


# --------------------------------------------------------------------------------------------
# Polygons → pixels
# --------------------------------------------------------------------------------------------


def _flat(ring: Sequence[Sequence[float]]) -> list[float]:
    return np.asarray(ring, dtype=np.float64).reshape(-1).tolist()


def _poly_rle(rings: list[list[float]], width: int, height: int) -> dict[str, Any]:
    """Union of flat rings as a pycocotools RLE (bytes counts)."""
    return mask_utils.merge(mask_utils.frPyObjects(rings, height, width))


def polygons_to_mask(polygons: Sequence[PartLike], *, width: int, height: int) -> np.ndarray:
    """Rasterise parts (holes subtracted per part, parts united) to a (height, width) bool mask.

    A pixel is set when its centre lies inside (pycocotools' polygon rasteriser).
    """
    return mask_utils.decode(_coco_rle(polygons_to_rle(polygons, width=width, height=height))).astype(bool)


def polygons_to_rle(polygons: Sequence[PartLike], *, width: int, height: int) -> Rle:
    """Rasterise parts (see polygons_to_mask) straight to compressed RLE, never a full-size array."""
    _check_image_size(width, height)
    total = width * height
    if not polygons:
        return _runs_to_rle(np.asarray([total]), [height, width])
    pieces: list[dict[str, Any]] = []
    simple = [_flat(p["exterior"]) for p in polygons if not p.get("holes")]
    if simple:
        pieces.append(_poly_rle(simple, width, height))
    for part in polygons:
        holes = part.get("holes")
        if holes:
            # pycocotools has no difference: outside the holes (their complement) and in the exterior
            outer = _decode_counts(_poly_rle([_flat(part["exterior"])], width, height)["counts"].decode("ascii"))
            inner = _decode_counts(_poly_rle([_flat(r) for r in holes], width, height)["counts"].decode("ascii"))
            pieces.append(_coco_rle(_runs_to_rle(_vote_runs([outer, _complement_runs(inner)], 2, total), [height, width])))
    rle = pieces[0] if len(pieces) == 1 else mask_utils.merge(pieces)
    return {"size": [height, width], "counts": rle["counts"].decode("ascii")}


# --------------------------------------------------------------------------------------------
# Pixels → polygons
# --------------------------------------------------------------------------------------------


def mask_to_polygons(mask: np.ndarray, *, tolerance: float = 0.0) -> list[Part]:
    """Outline a binary mask as parts with holes, exactly along pixel edges.

    Rule: the outline follows the *corners* of the pixel squares (integer coordinates), so each
    set pixel's centre is inside and each unset pixel's centre is outside.  Rasterising the result
    with polygons_to_mask therefore gives back exactly the same pixels (IoU 1.0) for any mask,
    including single pixels and 1-pixel-wide lines.  Pixels that touch only diagonally become
    separate parts (or holes) meeting at a corner, which keeps every polygon valid.

    How: OpenCV traces pixel *centres*, so the mask is first upsampled 2x (nearest).  Every
    feature is then at least 2 pixels thick, and the centre of an upsampled boundary pixel ``u``
    sits a quarter pixel inside the original edge; ``(u + 1) // 2`` maps it onto the corner.
    RETR_CCOMP gives outer boundaries and their holes (islands inside holes are new outers).

    ``tolerance`` > 0 (pixels) trades exactness for far fewer vertices: corners are cut by half a
    pixel, then the outline is simplified (Douglas-Peucker, topology preserving).  Measured on
    smooth blobs: 0.5 keeps IoU >= 0.99 from a radius of ~25 px with about a third of the
    vertices; 1.0 keeps IoU >= 0.99 from ~50 px with a tenth.  An empty mask gives [].
    """
    arr = np.asarray(mask)
    if arr.ndim != 2:
        raise GeometryError(f"mask must be a 2-D array, got shape {arr.shape}")
    arr = arr.astype(bool, copy=False)
    rows = np.flatnonzero(arr.any(axis=1))
    if rows.size == 0:
        return []
    cols = np.flatnonzero(arr.any(axis=0))
    r0, r1, c0, c1 = int(rows[0]), int(rows[-1]), int(cols[0]), int(cols[-1])
    # crop to the object (speed) and pad by one pixel so contours never touch the array border
    crop = np.pad(arr[r0 : r1 + 1, c0 : c1 + 1], 1).astype(np.uint8)
    import cv2  # here: OpenCV costs every process 15 MB that is never tracing a mask

    up = cv2.resize(crop, (crop.shape[1] * 2, crop.shape[0] * 2), interpolation=cv2.INTER_NEAREST)
    contours, hierarchy = cv2.findContours(up, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    if hierarchy is None:
        return []
    offset = np.array([c0 - 1, r0 - 1], dtype=np.int64)

    def ring(index: int) -> np.ndarray:
        pts = (contours[index].reshape(-1, 2).astype(np.int64) + 1) // 2 + offset
        return _clean_ring(pts)

    tree = hierarchy[0]
    parts: list[Polygon] = []
    for i in range(len(contours)):
        if tree[i][3] != -1:
            continue
        shell = ring(i)
        holes = []
        child = tree[i][2]
        while child != -1:
            hole = ring(child)
            if len(hole) >= 3:
                holes.append(hole)
            child = tree[child][0]
        if len(shell) < 3:
            continue
        polygon = Polygon(shell, holes)
        if polygon.is_valid:
            parts.append(polygon)
        else:
            # rings that pinch at a corner (diagonal pixels): split into valid pieces
            parts.extend(_polygonal_pieces(shapely.make_valid(polygon)))
    if tolerance > 0:
        # Douglas-Peucker straight on a staircase keeps its corners and drifts to one side;
        # cutting every corner by half a pixel first turns 45-degree stairs into straight lines
        # (and moves no pixel centre across the outline), so far fewer vertices are needed.
        cut = [
            {
                "exterior": _cut_corners(p.exterior.coords),
                "holes": [_cut_corners(r.coords) for r in p.interiors],
            }
            for p in parts
        ]
        return simplify_polygons(cut, tolerance)
    return [_part_from_shapely(orient(p)) for p in parts if p.area > 0]


def _cut_corners(coords: Any) -> np.ndarray:
    """A pixel-edge ring with each corner cut by (at most) half a pixel along both edges."""
    ring = np.asarray(coords, dtype=np.float64)[:-1, :2]
    ring = ring[np.any(ring != np.roll(ring, -1, axis=0), axis=1)]
    nxt = np.roll(ring, -1, axis=0)
    delta = nxt - ring
    length = np.hypot(delta[:, 0], delta[:, 1])
    step = (np.minimum(0.5, length / 2) / length)[:, None] * delta
    out = np.empty((2 * len(ring), 2))
    out[0::2] = ring + step
    out[1::2] = nxt - step
    return out[np.any(out != np.roll(out, 1, axis=0), axis=1)]  # unit edges give one midpoint


def _clean_ring(pts: np.ndarray) -> np.ndarray:
    """Drop repeated points and middle points of straight runs (integer coordinates, exact)."""
    if len(pts) == 0:
        return pts
    keep = np.any(pts != np.roll(pts, 1, axis=0), axis=1)
    pts = pts[keep] if keep.any() else pts[:1]
    if len(pts) < 3:
        return pts
    prev = np.roll(pts, 1, axis=0)
    nxt = np.roll(pts, -1, axis=0)
    d1, d2 = pts - prev, nxt - pts
    cross = d1[:, 0] * d2[:, 1] - d1[:, 1] * d2[:, 0]
    dot = (d1 * d2).sum(axis=1)
    # same direction in and out: a redundant point; reversals (spikes) are left to make_valid
    straight = (cross == 0) & (dot > 0)
    return pts[~straight].astype(np.float64)


def _polygonal_pieces(geom: Any) -> list[Polygon]:
    """The non-empty polygons inside any shapely geometry (GeometryCollection included)."""
    if geom is None or geom.is_empty:
        return []
    if geom.geom_type == "Polygon":
        return [geom] if geom.area > _MIN_AREA else []
    if geom.geom_type in ("MultiPolygon", "GeometryCollection"):
        pieces: list[Polygon] = []
        for sub in geom.geoms:
            pieces.extend(_polygonal_pieces(sub))
        return pieces
    return []


def _part_from_shapely(polygon: Polygon) -> Part:
    return {
        "exterior": np.asarray(polygon.exterior.coords)[:-1, :2].tolist(),
        "holes": [np.asarray(r.coords)[:-1, :2].tolist() for r in polygon.interiors],
    }


def _to_shapely(part: PartLike) -> Polygon:
    return Polygon(part["exterior"], part.get("holes") or [])


# --------------------------------------------------------------------------------------------
# Polygon clean-up
# --------------------------------------------------------------------------------------------


def simplify_polygons(polygons: Sequence[PartLike], tolerance: float) -> list[Part]:
    """Douglas–Peucker with topology preserved (GEOS); every returned part is valid.

    Holes are kept (GEOS never lets a ring collapse or cross another).  Parts are simplified one
    by one, so parts that touched may end up overlapping slightly, which the contract allows.
    """
    if tolerance < 0:
        raise ValueError("tolerance must be >= 0")
    out: list[Part] = []
    shapes = [_to_shapely(p) for p in polygons]
    for shape in shapely.simplify(np.array(shapes, dtype=object), tolerance, preserve_topology=True):
        pieces = [shape] if shape.is_valid else _polygonal_pieces(shapely.make_valid(shape))
        out.extend(_part_from_shapely(orient(p)) for p in pieces if p.area > _MIN_AREA)
    return out


# --------------------------------------------------------------------------------------------
# Whole geometries
# --------------------------------------------------------------------------------------------


def bbox_and_area(geometry: Geometry, *, width: int, height: int) -> tuple[list[float], float]:
    """COCO ``[x, y, w, h]`` and area of a (validated) geometry.

    Polygons: bbox of the vertices and the exact area (exteriors minus holes, overlapping parts
    counted once).  Masks: pixel bbox and pixel count, from pycocotools.
    """
    if geometry["type"] == "mask":
        rle = _coco_rle(_validate_rle(geometry["rle"], width=width, height=height))
        x, y, w, h = (float(v) for v in mask_utils.toBbox(rle))
        return [x, y, w, h], float(mask_utils.area(rle))
    parts = geometry["polygons"]
    exteriors = [np.asarray(p["exterior"], dtype=np.float64) for p in parts]
    coords = np.concatenate(exteriors) if len(exteriors) > 1 else exteriors[0]
    x0, y0 = coords.min(axis=0)
    x1, y1 = coords.max(axis=0)
    if len(parts) == 1:
        # the common case, on every save: the shoelace formula is exact for a valid polygon and
        # much cheaper than building a shapely object
        holes = parts[0].get("holes") or []
        area = _shoelace(exteriors[0]) - sum(_shoelace(np.asarray(h, dtype=np.float64)) for h in holes)
    else:
        area = shapely.union_all([_to_shapely(p) for p in parts]).area
    return [float(x0), float(y0), float(x1 - x0), float(y1 - y0)], float(area)


def _shoelace(ring: np.ndarray) -> float:
    x, y = ring[:, 0], ring[:, 1]
    twice = np.dot(x[:-1], y[1:]) - np.dot(y[:-1], x[1:]) + x[-1] * y[0] - y[-1] * x[0]
    return abs(float(twice)) / 2.0


def geometry_to_mask(geometry: Geometry, *, width: int, height: int) -> np.ndarray:
    """Rasterise any geometry to a (height, width) bool mask."""
    if geometry["type"] == "mask":
        rle = _validate_rle(geometry["rle"], width=width, height=height)
        return mask_utils.decode(_coco_rle(rle)).astype(bool)
    return polygons_to_mask(geometry["polygons"], width=width, height=height)


def geometry_to_rle(geometry: Geometry, *, width: int, height: int) -> Rle:
    """Any geometry as compressed RLE (str counts)."""
    if geometry["type"] == "mask":
        return _validate_rle(geometry["rle"], width=width, height=height)
    return polygons_to_rle(geometry["polygons"], width=width, height=height)


def convert(
    geometry: Any,
    *,
    to: Literal["polygons", "mask"],
    width: int,
    height: int,
    tolerance: float = 0.0,
) -> Geometry:
    """Normalise ``geometry`` and return it as ``to``; ``tolerance`` simplifies outlines (pixels).

    polygons → mask keeps every pixel whose centre is covered; mask → polygons is exact at
    tolerance 0 (see mask_to_polygons).  Raises GeometryError when the result would be empty.
    """
    if to not in ("polygons", "mask"):
        raise GeometryError('conversion target must be "polygons" or "mask"')
    clean, _ = normalize_geometry(geometry, width=width, height=height)
    if to == "mask":
        if clean["type"] == "mask":
            return clean
        rle = polygons_to_rle(clean["polygons"], width=width, height=height)
        if mask_utils.area(_coco_rle(rle)) == 0:
            raise GeometryError("the polygons cover no pixel centre, so the mask would be empty")
        return {"type": "mask", "rle": rle}
    if clean["type"] == "polygons":
        parts = clean["polygons"]
        if tolerance > 0:
            parts = simplify_polygons(parts, tolerance)
        return {"type": "polygons", "polygons": parts}
    parts = mask_to_polygons(geometry_to_mask(clean, width=width, height=height), tolerance=tolerance)
    if not parts:
        raise GeometryError("mask is empty")
    return {"type": "polygons", "polygons": parts}


# --------------------------------------------------------------------------------------------
# IoU
# --------------------------------------------------------------------------------------------


def _as_coco_rle(obj: Any) -> dict[str, Any]:
    if isinstance(obj, dict):
        return _coco_rle(_validate_rle(obj))
    return _coco_rle(mask_to_rle(obj))


def mask_iou(a: np.ndarray | Rle, b: np.ndarray | Rle) -> float:
    """IoU of two masks (bool arrays or RLE dicts of the same size); 0.0 when both are empty."""
    ra, rb = _as_coco_rle(a), _as_coco_rle(b)
    if list(ra["size"]) != list(rb["size"]):
        raise GeometryError(f"mask sizes differ: {ra['size']} and {rb['size']}")
    return float(mask_utils.iou([ra], [rb], [0])[0][0])


def geometry_iou(g1: Geometry, g2: Geometry, *, width: int, height: int) -> float:
    """Pixel IoU of two geometries on a ``width`` x ``height`` image."""
    r1 = _coco_rle(geometry_to_rle(g1, width=width, height=height))
    r2 = _coco_rle(geometry_to_rle(g2, width=width, height=height))
    return float(mask_utils.iou([r1], [r2], [0])[0][0])


# --------------------------------------------------------------------------------------------
# COCO segmentation
# --------------------------------------------------------------------------------------------


def to_coco_segmentation(
    geometry: Geometry, *, width: int, height: int, iscrowd: bool = False
) -> tuple[list[list[float]] | Rle, int]:
    """``(segmentation, iscrowd)`` for a COCO annotation of a validated geometry.

    Polygons without holes become COCO polygons (one flat ``[x1, y1, x2, y2, ...]`` list per
    part).  COCO polygons cannot express holes, so polygons with holes and masks become
    compressed RLE (``counts`` as str) — with iscrowd 0: detectron2 and mmdetection skip
    iscrowd=1 annotations when training, so an ordinary object must never be marked crowd just
    because it is stored as RLE.  Only when the instance itself is a crowd region
    (``iscrowd=True``) is it written as RLE with iscrowd 1, as in the COCO dataset.
    """
    crowd = 1 if iscrowd else 0
    if geometry["type"] == "polygons":
        parts = geometry["polygons"]
        if not iscrowd and not any(p.get("holes") for p in parts):
            return [_flat(p["exterior"]) for p in parts], 0
        return polygons_to_rle(parts, width=width, height=height), crowd
    return _validate_rle(geometry["rle"], width=width, height=height), crowd


def coco_geometry(segmentation: Any) -> Geometry:
    """Our geometry, not yet normalised, from a COCO ``segmentation`` (polygon list or RLE).

    Polygon lists become one part each (COCO unites them).  A bbox-only annotation
    (``segmentation: []``) and malformed lists raise GeometryError; parts with fewer than 3
    points are left for normalisation to drop.
    """
    if isinstance(segmentation, dict):
        return {"type": "mask", "rle": segmentation}
    if not isinstance(segmentation, list):
        raise GeometryError("segmentation must be a list of polygons or an RLE object")
    if not segmentation:
        raise GeometryError("segmentation is empty (the annotation has only a bbox)")
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in segmentation):
        segmentation = [segmentation]  # some tools write a single polygon without nesting
    parts: list[Any] = []
    for p, flat in enumerate(segmentation):
        if not isinstance(flat, list) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in flat
        ):
            raise GeometryError(f"part {p} must be a flat list of numbers [x1, y1, x2, y2, ...]", part=p)
        if len(flat) % 2:
            raise GeometryError(f"part {p} has an odd number of coordinates", part=p)
        parts.append({"exterior": np.asarray(flat, dtype=np.float64).reshape(-1, 2).tolist(), "holes": []})
    return {"type": "polygons", "polygons": parts}


def from_coco_segmentation(segmentation: Any, *, width: int, height: int) -> Geometry:
    """coco_geometry, normalised for a ``width`` x ``height`` image (see normalize_geometries).

    Readers that report repairs call normalize_geometry on coco_geometry themselves.
    """
    return normalize_geometry(coco_geometry(segmentation), width=width, height=height)[0]
