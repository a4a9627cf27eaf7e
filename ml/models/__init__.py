"""Segmentation models behind one small interface (predict / fit); torchvision Mask R-CNN is the implementation."""

from __future__ import annotations

from ml.models.base import (
    ARCHS,
    CheckpointError,
    FitResult,
    Instance,
    ModelError,
    Prediction,
    SegmentationModel,
    TrainingCancelled,
    TrainingSample,
    WeightsUnavailable,
)

__all__ = [
    "ARCHS",
    "CheckpointError",
    "FitResult",
    "Instance",
    "ModelError",
    "Prediction",
    "SegmentationModel",
    "TrainingCancelled",
    "TrainingSample",
    "WeightsUnavailable",
]
