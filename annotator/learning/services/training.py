"""Training on a project's accepted images, and evaluation of model versions on images they did not train on.

Both run inside a Celery job on the ML queue (see job_handlers.py); the ``*_start`` functions
check the request in the web process and enqueue the job, so a bad parameter is a 400 at once
instead of a failed job later. Evaluation is ml.metrics.evaluate_model in both, so a version's
numbers mean the same whichever job wrote them. After a training round each box assist (GrabCut,
the new model's mask head, SAM when configured) is measured on the same held-out images, so the
box tool can offer the one that works best for this project (see services.assists).
"""
from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from annotator.core.errors import DomainError
from annotator.images.models import Image
from annotator.jobs.models import Job, JobKind
from annotator.jobs.services import JobContext, job_start
from annotator.projects.models import Project
from ml.metrics import evaluate_model
from ml.shape_prior import ShapePrior, ShapePriorError

from ..models import ModelKind, ModelVersion
from ..params import EvaluateParams, TrainParams
from ..pixels import ImageUnreadable, readable_images
from ..samples import AcceptedSamples
from ..selectors import accepted_images, active_model_of
from .assists import measure_assists, shape_prior_path
from .versions import COCO_ARCH, label_mapping_resolve, model_dir, model_load, model_version_activate

if TYPE_CHECKING:
    from ml.models.maskrcnn import MaskRCNNSegmenter

#: Detections down to this score take part in evaluation: AP integrates over all scores.
EVAL_THRESHOLD = 0.05


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _coco_init() -> str | None:
    """Where fine-tuning can start from COCO weights on this machine, if anywhere."""
    if settings.ANNOTATOR_COCO_CHECKPOINT and Path(settings.ANNOTATOR_COCO_CHECKPOINT).is_file():
        return settings.ANNOTATOR_COCO_CHECKPOINT
    import torch
    from torchvision.models.detection import MaskRCNN_ResNet50_FPN_Weights

    cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(MaskRCNN_ResNet50_FPN_Weights.DEFAULT.url).name
    return "coco" if cached.is_file() else None


def train_defaults(*, cuda: bool) -> dict[str, Any]:
    """The small CPU configuration (from scratch, small inputs) or the full GPU one (ResNet-50, COCO init)."""
    if cuda:
        return {"arch": COCO_ARCH, "epochs": 20, "batch_size": 4, "model_kwargs": {}}
    return {"arch": "small", "epochs": 12, "batch_size": 2, "model_kwargs": {"min_size": 256, "max_size": 384}}




def train_start(*, project: Project, user: AbstractBaseUser | None, params: TrainParams, enqueue: bool = True) -> Job:
    """Check that there is something to learn from and start a training job on the ML queue."""
    count = accepted_images(project).count()
    if count < 2:
        raise DomainError(f"Training needs at least 2 accepted images with annotations; this project has {count}.")
    if not project.labels.exists():
        raise DomainError("The project has no labels to learn.")
    return job_start(kind=JobKind.TRAIN, project=project, params=params.as_dict(), user=user, enqueue=enqueue)


def model_train(*, job: Job, ctx: JobContext) -> dict[str, Any]:
    """Train a model version on the project's accepted images and evaluate it on a held-out share of them."""
    from ml.models import ModelError
    from ml.models.maskrcnn import MaskRCNNSegmenter, TrainConfig, split_held_out, train

    project = job.project
    if project is None:
        raise DomainError("A training job needs a project.")
    params = TrainParams.from_dict(job.params)
    cuda = _cuda()
    defaults = train_defaults(cuda=cuda)
    arch = params.arch or defaults["arch"]
    epochs = params.epochs or defaults["epochs"]
    batch_size = params.batch_size or defaults["batch_size"]
    class_names = list(project.labels.order_by("order", "id").values_list("name", flat=True))

    images = list(accepted_images(project))
    # Estimated until the unreadable images are known; every image is read once here, so that a
    # broken file is reported and left out before training starts.
    train_idx, held_idx = split_held_out(len(images), params.held_out, params.seed)
    total = len(images) + math.ceil(len(train_idx) / batch_size) * epochs + 2 * len(held_idx)
    readable, errors = readable_images(
        images, lambda done: ctx.progress(done, total, f"Checking accepted images ({done}/{len(images)})")
    )
    if len(readable) < 2:
        raise DomainError(f"Only {len(readable)} accepted images could be read; training needs at least 2.")
    train_idx, held_idx = split_held_out(len(readable), params.held_out, params.seed)
    iterations = math.ceil(len(train_idx) / batch_size) * epochs
    total = len(images) + iterations + 2 * len(held_idx)
    base = len(images)
    model_kwargs = dict(defaults["model_kwargs"]) if arch == defaults["arch"] else {}
    if params.min_size:
        # torchvision's own ratio of longest to shortest side (800 / 1333).
        model_kwargs.update(min_size=params.min_size, max_size=round(params.min_size * 5 / 3))
    warm = _warm_start_checkpoint(project, arch, class_names) if params.warm_start else None
    # The COCO file fits only the architecture it was trained for.
    init_from = warm or (_coco_init() if arch == COCO_ARCH else None)
    config = TrainConfig(
        arch=arch, class_names=class_names, epochs=epochs, batch_size=batch_size, held_out=0.0, seed=params.seed,
        init_from=init_from, model_kwargs=model_kwargs,
    )
    path = model_dir() / f"project-{project.pk}" / f"train-job-{job.pk}.pt"

    def on_iteration(done: int, _total: int, info: dict[str, Any]) -> None:
        ctx.progress(base + done, total, f"Training: epoch {info['epoch']}/{epochs}, loss {info['loss']:.3f}")

    try:
        fit = train(AcceptedSamples([readable[i] for i in train_idx]), config=config, output_path=path, progress=on_iteration)
    except ModelError as exc:
        raise DomainError(f"Training failed: {exc}") from None
    except ImageUnreadable as exc:
        raise DomainError(f"Training failed: an accepted image became unreadable ({exc})") from None

    metrics: dict[str, Any] = {"train_images": len(train_idx), "held_out_images": len(held_idx)}
    shape = _shape_prior_learn(AcceptedSamples([readable[i] for i in train_idx]), fit.checkpoint_path)
    if held_idx:
        segmenter = MaskRCNNSegmenter.from_checkpoint(fit.checkpoint_path)
        held = AcceptedSamples([readable[i] for i in held_idx])
        metrics.update(evaluate_model(
            segmenter, held, categories=class_names, threshold=EVAL_THRESHOLD, batch_size=batch_size,
            progress=lambda done, _n: ctx.progress(base + iterations + done, total, "Evaluating on held-out images"),
        ))
        metrics["evaluated_on"] = "held-out accepted images"
        ctx.progress(base + iterations + len(held_idx), total, "Measuring the box assists on held-out images", force=True)
        metrics["assists"] = measure_assists(held, segmenter=segmenter, shape=shape)
        ctx.progress(total, total, "Measured the box assists", force=True)
    ids = [image.pk for image in readable]
    version = _trained_version_save(
        job=job, project=project, arch=arch, path=fit.checkpoint_path, class_names=class_names, metrics=metrics,
        curve=fit.curve,
        params={
            "job": job.pk, "epochs": epochs, "batch_size": batch_size, "held_out": params.held_out,
            "device": "cuda" if cuda else "cpu", "init_from": init_from, "model_kwargs": config.model_kwargs,
            "train_images": [ids[i] for i in train_idx], "held_out_images": [ids[i] for i in held_idx],
        },
    )
    return {"model_version": version.pk, "metrics": {k: v for k, v in metrics.items() if k != "pr_curve"}, "errors": errors,
            "activated": version.is_active}


def _shape_prior_learn(samples: AcceptedSamples, checkpoint: str | Path) -> ShapePrior | None:
    """The box tool's learned shape (ml.shape_prior) from the training images, stored beside the
    checkpoint; None when they are too few (the box tool then offers GrabCut and the model)."""
    try:
        shape = ShapePrior.fit(samples)
    except ShapePriorError:
        return None
    shape.save(shape_prior_path(checkpoint))
    return shape


def _warm_start_checkpoint(project: Project, arch: str, class_names: list[str]) -> str | None:
    active = active_model_of(project)
    if (
        active is not None and active.kind == ModelKind.TRAINED and active.arch == arch
        and list(active.class_names) == class_names and Path(active.checkpoint).is_file()
    ):
        return active.checkpoint
    return None


@transaction.atomic
def _trained_version_save(
    *, job: Job, project: Project, arch: str, path: Path, class_names: list[str], metrics: dict[str, Any],
    curve: list[dict[str, Any]], params: dict[str, Any],
) -> ModelVersion:
    # A retried job rewrites the same checkpoint path: update its version instead of adding another.
    version = ModelVersion.objects.filter(project=project, kind=ModelKind.TRAINED, checkpoint=str(path)).first()
    number = ModelVersion.objects.filter(project=project, kind=ModelKind.TRAINED).count() + (0 if version else 1)
    fields = {
        "name": f"v{number} · {metrics['train_images']} images · {timezone.now():%Y-%m-%d %H:%M}",
        "arch": arch, "class_names": class_names, "metrics": metrics, "curve": curve, "params": params,
    }
    if version is None:
        version = ModelVersion.objects.create(
            project=project, kind=ModelKind.TRAINED, checkpoint=str(path), created_by=job.created_by, **fields
        )
    else:
        ModelVersion.objects.filter(pk=version.pk).update(**fields)
        version.refresh_from_db()
    if active_model_of(project) is None:
        # The first trained model is what anyone would pre-annotate with next; later ones wait for a manager.
        model_version_activate(version=version)
    return version



def evaluate_start(*, version: ModelVersion, user: AbstractBaseUser | None, params: EvaluateParams, enqueue: bool = True) -> Job:
    project = version.project
    mapping = label_mapping_resolve(project=project, class_names=version.class_names, label_map=params.label_map)
    if not _evaluation_images(version).exists():
        raise DomainError("There are no accepted images with annotations that this version did not train on.")
    resolved = replace(params, model_version=version.pk, mapping=mapping)
    return job_start(kind=JobKind.EVALUATE, project=project, params=resolved.as_dict(), user=user, enqueue=enqueue)


def _evaluation_images(version: ModelVersion) -> QuerySet[Image]:
    trained_on = (version.params or {}).get("train_images") or []
    return accepted_images(version.project).exclude(pk__in=trained_on)


def model_evaluate(*, job: Job, ctx: JobContext) -> dict[str, Any]:
    """Run a version over accepted images it did not train on and store mask AP, per-class AP and PR curve."""
    params = EvaluateParams.from_dict(job.params)
    version = ModelVersion.objects.select_related("project").filter(pk=params.model_version).first()
    if version is None or params.mapping is None:
        raise DomainError("The model version of this job was deleted.")
    project = version.project
    label_names = dict(project.labels.values_list("pk", "name"))
    names = {cls: label_names[label_id] for cls, label_id in params.mapping.items() if label_id in label_names}
    images = list(_evaluation_images(version))
    total = 2 * len(images)
    ctx.progress(0, total, f"Loading {version.name}", force=True)
    segmenter: MaskRCNNSegmenter = model_load(version)
    readable, errors = readable_images(images, lambda done: ctx.progress(done, total, f"Checking images ({done}/{len(images)})"))
    if not readable:
        raise DomainError("None of the evaluation images could be read.")
    try:
        metrics = evaluate_model(
            segmenter, AcceptedSamples(readable), categories=list(label_names.values()), class_to_category=names,
            threshold=EVAL_THRESHOLD, progress=lambda done, n: ctx.progress(len(images) + done, total, f"Evaluating ({done}/{n})"),
        )
    except ImageUnreadable as exc:
        raise DomainError(f"Evaluation failed: an accepted image became unreadable ({exc})") from None
    metrics["evaluated_on"] = "accepted images not used for training"
    metrics["job"] = job.pk
    stored = {**(version.metrics or {}), **metrics}
    if "train_images" not in stored:
        stored["train_images"] = 0
    ModelVersion.objects.filter(pk=version.pk).update(metrics=stored)
    return {"model_version": version.pk, "metrics": {k: v for k, v in metrics.items() if k != "pr_curve"}, "errors": errors}
