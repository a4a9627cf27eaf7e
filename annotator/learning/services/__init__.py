"""Writes for model-assisted annotation, one module per concern.

* ``versions`` — model versions (COCO, checkpoint files, trained), activation, loading, class → label mapping
* ``preannotation`` — the pre-annotation job: decode, predict, suppress duplicates, store proposals
* ``training`` — training and evaluation jobs, and the box assists measured after each round
* ``assists`` — the editor's interactive assists (box → mask engines, scissors, SAM)
* ``shapes`` — the project's own learned shape for the box tool: when to learn it, and the job that does (no torch)

The heavy functions run inside Celery jobs (see job_handlers.py); the ``*_start`` functions check
a request in the web process and enqueue the job. Their parameters are the dataclasses of
learning.params. The names below are the app's service API.
"""
from __future__ import annotations

from .assists import (
    BOX_ENGINES,
    AssistNotConfigured,
    assist_box_to_mask,
    assist_sam,
    assist_scissors,
    box_engines,
    measure_assists,
)
from .preannotation import image_uncertainty, preannotate, preannotate_start, predictions_replace
from .shapes import project_shape_learn, shape_learn_if_grown, shape_learn_on_accept, shape_learn_start
from .training import evaluate_start, model_evaluate, model_train, train_defaults, train_start
from .versions import (
    label_mapping_resolve,
    model_load,
    model_version_activate,
    model_version_coco,
    model_version_from_checkpoint,
    model_version_resolve,
)

__all__ = [
    "BOX_ENGINES",
    "AssistNotConfigured",
    "assist_box_to_mask",
    "assist_sam",
    "assist_scissors",
    "box_engines",
    "evaluate_start",
    "image_uncertainty",
    "label_mapping_resolve",
    "measure_assists",
    "model_evaluate",
    "model_load",
    "model_train",
    "model_version_activate",
    "model_version_coco",
    "model_version_from_checkpoint",
    "model_version_resolve",
    "preannotate",
    "preannotate_start",
    "predictions_replace",
    "project_shape_learn",
    "shape_learn_if_grown",
    "shape_learn_on_accept",
    "shape_learn_start",
    "train_defaults",
    "train_start",
]
