"""The small model interface shared by every segmentation model (predict / fit, label-studio-ml-backend style).

Celery tasks only talk to this interface: a model turns RGB images into per-image lists of
:class:`Instance` and can be fine-tuned on :class:`TrainingSample` records built from accepted
annotations. Conversion of masks to our JSON geometry happens in adapters, not here.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

#: The Mask R-CNN architectures (ml.models.maskrcnn); here so that a web process can check a name without torch.
ARCHS: tuple[str, ...] = ("maskrcnn_resnet50_fpn", "maskrcnn_resnet50_fpn_v2", "small")

#: progress(done, total, info) — ``info`` carries at least ``epoch`` and ``loss`` during training.
ProgressCallback = Callable[[int, int, dict[str, Any]], None]
#: should_stop() is polled between iterations; returning True cancels the job.
StopCallback = Callable[[], bool]


class ModelError(Exception):
    """Base error for everything a model cannot do (bad checkpoint, missing weights, bad input)."""


class CheckpointError(ModelError):
    """A checkpoint file is missing, unreadable or does not match the requested architecture."""


class WeightsUnavailable(ModelError):
    """Pretrained weights cannot be obtained (e.g. no network); a local checkpoint is needed."""


class TrainingCancelled(ModelError):
    """Training was stopped by ``should_stop``; no checkpoint was written."""

    def __init__(self, message: str, *, iterations_done: int) -> None:
        super().__init__(message)
        self.iterations_done = iterations_done


@dataclass
class Instance:
    """One predicted object: class name, confidence and a full-image boolean mask (H, W).

    ``bounds`` (x0, y0, x1, y1), where the model knows it, holds every set pixel of the mask
    (geometry.mask_to_rle(within=...) then reads only that part).
    """

    label: str
    score: float
    mask: np.ndarray
    bounds: tuple[int, int, int, int] | None = None

    @property
    def area(self) -> int:
        return int(self.mask.sum())


#: All instances predicted for one image.
Prediction = list[Instance]


@dataclass
class TrainingSample:
    """One training image (RGB uint8, H x W x 3) with its objects as (label, boolean mask) pairs."""

    image: np.ndarray
    objects: list[tuple[str, np.ndarray]] = field(default_factory=list)
    #: Free-form id (e.g. the database image id) so results can be traced back.
    key: str | int | None = None

    def __post_init__(self) -> None:
        if self.image.ndim != 3 or self.image.shape[2] != 3 or self.image.dtype != np.uint8:
            raise ValueError(f"image must be an RGB uint8 array (H, W, 3), got {self.image.shape} {self.image.dtype}")
        height, width = self.image.shape[:2]
        for label, mask in self.objects:
            if mask.shape != (height, width):
                raise ValueError(f"mask for {label!r} has shape {mask.shape}, image is {(height, width)}")


@dataclass
class FitResult:
    """What a training run produced: where the new model version is, and how good it is."""

    checkpoint_path: Path
    #: Held-out evaluation (ml.metrics.segmentation_metrics): ``mask_AP``, ``mask_AP50``, ``box_AP``,
    #: ``per_class`` (mask AP by class), ``pr_curve``, plus counts (``train_images``, ``held_out_images``).
    metrics: dict[str, Any]
    #: One entry per epoch: ``{"epoch": int, "loss": float, "seconds": float, ...}``.
    curve: list[dict[str, Any]]


class SegmentationModel(abc.ABC):
    """An instance-segmentation model: load once per worker process, then predict many times."""

    @property
    @abc.abstractmethod
    def class_names(self) -> list[str]:
        """Names of the classes the model predicts (no background entry)."""

    @abc.abstractmethod
    def predict(self, images: Sequence[np.ndarray], *, threshold: float = 0.5) -> list[Prediction]:
        """Predict instances for each RGB uint8 image; only instances scoring >= threshold are kept."""

    @abc.abstractmethod
    def fit(
        self,
        dataset: Sequence[TrainingSample],
        *,
        config: Any,
        progress: ProgressCallback | None = None,
        should_stop: StopCallback | None = None,
    ) -> FitResult:
        """Train a new model version on ``dataset`` and evaluate it on a held-out part of it."""
