"""Interactive assists for the editor (called in the web process, within an interactive budget).

The box tool has several engines (BOX_ENGINES): GrabCut, which needs nothing; the shape learned
from the project's accepted masks (ml.shape_prior: mean shapes per label combined with the box's
colours), either the project's own (services.shapes, no training round needed) or the one learned
with the active version's training round (beside its checkpoint), whichever is newer; the
project's own active model, whose mask head segments the drawn box as if it were its own
proposal; and SAM when the server has it. They are measured on held-out accepted images
(``measure_assists``: mean IoU with the true mask, given the true box) after each training round
and each shape fit, and the box tool uses the best one for the project unless the person picks
another. torch is imported only when the model engine runs.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache, lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from django.conf import settings

from annotator.core.errors import DomainError
from annotator.images.models import Image
from annotator.projects.models import Project
from ml.assist import AssistError, AssistUnavailable, box_to_mask, measure_box_engines, scissors_path
from ml.geometry import GeometryError, mask_to_rle, normalize_geometry, rle_bbox_area
from ml.sam import SamAssist
from ml.shape_prior import ShapePrior, ShapePriorError

from ..models import ModelKind, ModelVersion, ProjectShape
from ..pixels import ImageUnreadable, rgb_cache
from ..selectors import active_model_of

if TYPE_CHECKING:
    from ml.models.maskrcnn import MaskRCNNSegmenter

#: The box tool's engines, in the order the toolbar lists them.
BOX_ENGINES = ("grabcut", "shape", "model", "sam")
ENGINE_NAMES = {"grabcut": "GrabCut", "shape": "Learned shape", "model": "Project model", "sam": "SAM"}
#: Objects measured per engine after a training round: bounds the time it adds to the job.
MEASURED_OBJECTS = 200


class AssistNotConfigured(DomainError):
    """An optional assist (SAM) has no model on this server."""

    status = 501


def _sam_configured() -> bool:
    return bool(settings.ANNOTATOR_SAM_CHECKPOINT)


@cache
def sam_assist() -> SamAssist:
    """This process's SAM models and image-embedding cache (ANNOTATOR_SAM_CACHE_MB), made on first use.

    Each web process holds its own, shared by its threads, in front of the embedding files that
    all processes share (ANNOTATOR_SAM_DISK_CACHE_MB, docs/sam.md): bench/sam_cache.py measured a
    second prompt at 0.2 s from the cache against 19 s through the encoder (sam2.1_hiera_tiny,
    one CPU thread).
    """
    return SamAssist(cache_bytes=settings.ANNOTATOR_SAM_CACHE_BYTES, disk_cache_dir=settings.ANNOTATOR_SAM_CACHE_DIR,
                     disk_cache_bytes=settings.ANNOTATOR_SAM_DISK_CACHE_BYTES)


def _model_usable(version: ModelVersion | None) -> bool:
    # Only a model trained on this project's labels knows what its classes mean here.
    return version is not None and bool(version.checkpoint) and version.kind != ModelKind.COCO


def shape_prior_path(checkpoint: str | Path) -> Path:
    """Where a version's learned shape (ml.shape_prior) lies: beside its checkpoint."""
    return Path(checkpoint).with_suffix(".shape.npz")


def project_shape_path(project_id: int) -> Path:
    """Where a project's own learned shape lies: in its model folder, a name made of its id only."""
    return Path(settings.ANNOTATOR_MODEL_DIR) / f"project-{int(project_id)}" / "shape.npz"


def _shape_usable(version: ModelVersion | None) -> bool:
    return version is not None and bool(version.checkpoint) and shape_prior_path(version.checkpoint).is_file()


@dataclass(frozen=True)
class ShapeSource:
    """The learned shape the box tool uses on a project, and the box engines measured with it."""

    kind: str  # "project" (services.shapes) or "version" (the active version's training round)
    path: Path
    name: str  # what messages call it
    measured: dict[str, Any]
    fitted_at: datetime


def shape_source(project: Project, active: ModelVersion | None) -> ShapeSource | None:
    """The newer of the project's own learned shape and the active version's, among those whose file
    can be read (one of an older format, or damaged, is left out: the box tool does without it
    until the next fit rather than answering every box with a 409)."""
    found: list[ShapeSource] = []
    learned = ProjectShape.objects.filter(project=project).first()
    if learned is not None and _shape_readable(project_shape_path(project.pk)):
        found.append(ShapeSource("project", project_shape_path(project.pk), "the project's learned shape",
                                 (learned.metrics or {}).get("assists") or {}, learned.fitted_at))
    if active is not None and _shape_usable(active) and _shape_readable(shape_prior_path(active.checkpoint)):
        found.append(ShapeSource("version", shape_prior_path(active.checkpoint), f"the learned shape of {active.name}",
                                 (active.metrics or {}).get("assists") or {}, active.created_at))
    return max(found, key=lambda source: source.fitted_at) if found else None


@lru_cache(maxsize=16)
def _shape_prior_loaded(path: Path, _mtime_ns: int) -> ShapePrior:
    return ShapePrior.load(path)


def _shape_readable(path: Path) -> bool:
    try:
        _shape_prior_loaded(path, path.stat().st_mtime_ns)
    except (OSError, ShapePriorError):
        return False
    return True


def shape_prior_read(source: ShapeSource) -> ShapePrior:
    """The learned shape, loaded once per process (again when its file changes); 409 when it cannot be read."""
    try:
        return _shape_prior_loaded(source.path, source.path.stat().st_mtime_ns)
    except (OSError, ShapePriorError) as exc:
        raise DomainError(f"{source.name[0].upper()}{source.name[1:]} cannot be read ({exc}); use GrabCut.", status=409) from None


def box_engines(project: Project, *, active: ModelVersion | None = None) -> dict[str, Any]:
    """The box tool's engines on this project: which are available, their measured scores, the default.

    ``scores`` are the mean IoUs measured after the active version's training round, or, where the
    project's own learned shape is the one in use (``shape_source``), after its fit (None when not
    measured); ``best`` is the available engine with the highest score (without any: SAM when
    configured, else GrabCut).
    """
    active = active if active is not None else active_model_of(project)
    measured = ((active.metrics or {}).get("assists") or {}) if active is not None else {}
    shape = shape_source(project, active)
    if shape is not None and shape.kind == "project":
        # Its fit is newer than the version's round: its figures (GrabCut's too) are the newer ones.
        measured = {**{k: v for k, v in measured.items() if k != "shape"}, **shape.measured}
    available = [
        "grabcut", *(["shape"] if shape is not None else []), *(["model"] if _model_usable(active) else []),
        *(["sam"] if _sam_configured() else []),
    ]
    scores = {name: (measured.get(name) or {}).get("mean_iou") for name in available}
    ranked = [name for name in available if scores[name] is not None]
    # Unmeasured (no training round yet): SAM where the server has it, as the box tool always did.
    best = max(ranked, key=lambda name: scores[name]) if ranked else ("sam" if "sam" in available else "grabcut")
    return {
        "available": available, "best": best, "scores": scores, "names": {n: ENGINE_NAMES[n] for n in available},
        "box": (measured.get("box") or {}).get("mean_iou"), "objects": (measured.get("box") or {}).get("objects"),
        "model_version": active.pk if active is not None and "model" in available else None,
        "shape_source": shape.kind if shape is not None else None,
    }


def _model_segmenter(version: ModelVersion) -> MaskRCNNSegmenter:
    from .versions import model_load

    return model_load(version)


def measure_assists(
    samples: Sequence[Any], *, segmenter: MaskRCNNSegmenter | None = None, shape: ShapePrior | None = None,
    max_objects: int = MEASURED_OBJECTS,
) -> dict[str, dict[str, Any]]:
    """Mean IoU of each box engine (and of the plain box) on ``samples`` (held-out accepted images).

    The model is measured when a ``segmenter`` is given, the learned shape when a ``shape`` is.
    """
    engines: dict[str, Any] = {"grabcut": lambda image, box, _label: box_to_mask(image, box)}
    if segmenter is not None:
        engines["model"] = lambda image, box, label: segmenter.segment_box(image, box, label=label)[0]
    if shape is not None:
        engines["shape"] = shape.segment
    checkpoint = settings.ANNOTATOR_SAM_CHECKPOINT
    if checkpoint and Path(checkpoint).is_file():
        # A box alone gets three candidates; the box tool shows the best first, so that is measured.
        engines["sam"] = lambda image, box, _label: sam_assist().segment(image, checkpoint=checkpoint, box=box)[0].mask
    return measure_box_engines(samples, engines, max_objects=max_objects)


def _pixels(image: Image) -> np.ndarray:
    try:
        return rgb_cache.get(image)
    except ImageUnreadable as exc:
        raise DomainError(f"{image.original_name}: {exc}", status=422) from None


def assist_box_to_mask(
    *, image: Image, box: Sequence[float], foreground: Sequence[Sequence[float]] = (),
    background: Sequence[Sequence[float]] = (), engine: str | None = None, label: int | None = None,
) -> dict[str, Any]:
    """A mask for the object in a box → geometry with bbox, area and the engine that answered.

    ``engine`` is one of BOX_ENGINES (default: the project's best, see box_engines); ``label`` is
    the project label being drawn, the class the project model segments. Foreground/background
    clicks are GrabCut's to use: the model and SAM-by-box take none, so a request with clicks is
    answered by GrabCut (and says so).
    """
    engines = box_engines(image.project)
    chosen = engine or engines["best"]
    if chosen not in BOX_ENGINES:
        raise DomainError(f"engine must be one of {', '.join(BOX_ENGINES)}")
    if chosen not in engines["available"]:
        if chosen == "shape" and ProjectShape.objects.filter(project=image.project).exists():
            raise DomainError("The project's learned shape cannot be read (its file is gone, damaged or of an older "
                              "version); learn it again on the models page, or use GrabCut.", status=409)
        raise DomainError(f"The {ENGINE_NAMES[chosen]} engine is not available on this project" + {
            "model": " (it has no active trained model)",
            "shape": " (no shape has been learned from its accepted masks yet: 'Learn shape now' on the models page)",
        }.get(chosen, " (not configured on this server)"))
    if foreground or background:
        chosen = "grabcut"
    if chosen == "sam":
        return {**assist_sam(image=image, box=box), "engine": "sam"}
    pixels = _pixels(image)
    try:
        if chosen == "model":
            mask = _model_box_mask(image, pixels, box, label)
            if not mask.any():
                # The model sees nothing there: GrabCut's answer is still better than none.
                mask, chosen = box_to_mask(pixels, box), "grabcut"
        elif chosen == "shape":
            mask = _shape_box_mask(image, pixels, box, label)
        else:
            mask = box_to_mask(pixels, box, foreground=foreground, background=background)
    except AssistError as exc:
        raise DomainError(str(exc)) from None
    return {**_mask_geometry(mask), "engine": chosen}


def _label_name(image: Image, label: int | None) -> str | None:
    """The name of the label being drawn (the class a learned engine segments); 400 for another project's."""
    if label is None:
        return None
    name = image.project.labels.filter(pk=label).values_list("name", flat=True).first()
    if name is None:
        raise DomainError(f"label: {label} is not a label of this project")
    return name


def _box_checked(image: Image, box: Sequence[float]) -> None:
    x, y, w, h = (float(v) for v in box)
    if not (w > 0 and h > 0):
        raise DomainError(f"box must have a positive width and height, got {w} x {h}")
    if x >= image.width or y >= image.height or x + w <= 0 or y + h <= 0:
        raise DomainError("box lies outside the image")


def _shape_box_mask(image: Image, pixels: np.ndarray, box: Sequence[float], label: int | None) -> np.ndarray:
    source = shape_source(image.project, active_model_of(image.project))
    if source is None:
        raise DomainError("The project has no learned shape any more (its file is gone); use GrabCut.", status=409)
    name = _label_name(image, label)
    _box_checked(image, box)
    return shape_prior_read(source).segment(pixels, box, name)


def _model_box_mask(image: Image, pixels: np.ndarray, box: Sequence[float], label: int | None) -> np.ndarray:
    from ml.models import ModelError

    version = active_model_of(image.project)
    if version is None:
        raise DomainError("The project has no active model any more; use GrabCut.", status=409)
    name = _label_name(image, label)
    _box_checked(image, box)
    try:
        mask, _ = _model_segmenter(version).segment_box(pixels, box, label=name)
    except ModelError as exc:
        raise DomainError(f"The project model cannot segment this box: {exc}") from None
    return mask


def assist_scissors(*, image: Image, points: Sequence[Sequence[float]], closed: bool = False) -> dict[str, Any]:
    """An intelligent-scissors path through the clicked points, following image edges.

    A closed path also comes as a normalised polygon ``geometry`` (edge-following outlines touch
    or cross themselves where the edge doubles back), with ``repaired`` saying what was changed.
    """
    try:
        path = scissors_path(_pixels(image), points, closed=closed)
    except AssistError as exc:
        raise DomainError(str(exc)) from None
    result: dict[str, Any] = {"path": path}
    if closed:
        try:
            geometry, repair = normalize_geometry(
                {"type": "polygons", "polygons": [{"exterior": path, "holes": []}]},
                width=image.width, height=image.height,
            )
        except GeometryError as exc:
            raise DomainError(f"The outline the scissors found has no area ({exc.reason}); click more points around the object.") from None
        result["geometry"] = geometry
        result["repaired"] = repair["message"] if repair else None
    return result


def assist_sam(
    *, image: Image, box: Sequence[float] | None = None, points: Sequence[Sequence[float]] | None = None,
    labels: Sequence[int] | None = None,
) -> dict[str, Any]:
    """Segment Anything from a box and/or clicks; 501 when SAM is not installed or configured.

    SAM 1 or SAM 2.1, as the checkpoint's weights say (ml.sam). The best mask is the answer's
    ``geometry``; ``candidates`` has every mask SAM proposed (three for a lone box or click), best
    first, each with its ``score``, for the editor to cycle through.
    """
    checkpoint = settings.ANNOTATOR_SAM_CHECKPOINT
    if not checkpoint:
        raise AssistNotConfigured(
            "SAM is not configured on this server: set ANNOTATOR_SAM_CHECKPOINT to a SAM checkpoint "
            "(sam_vit_*.pth or sam2.1_hiera_*.pt; manage.py download_weights --sam fetches one). Use box → mask instead."
        )
    try:
        candidates = sam_assist().segment(
            _pixels(image), checkpoint=checkpoint, box=box, points=points, labels=labels, image_key=(image.pk, image.checksum),
        )
    except AssistUnavailable as exc:
        raise AssistNotConfigured(str(exc)) from None
    except AssistError as exc:
        raise DomainError(str(exc)) from None
    answers = [{**_mask_geometry(c.mask), "score": c.score} for c in candidates]
    return {**answers[0], "candidates": answers}


def _mask_geometry(mask: np.ndarray) -> dict[str, Any]:
    rle = mask_to_rle(mask)
    geometry: dict[str, Any] = {"type": "mask", "rle": rle}
    if mask.any():
        # The one normalisation every object goes through (an empty answer is the editor's to report).
        geometry, _ = normalize_geometry(geometry, width=mask.shape[1], height=mask.shape[0])
    bbox, area = rle_bbox_area(rle)
    return {"geometry": geometry, "bbox": bbox, "area": area}
