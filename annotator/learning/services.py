"""Writes for model-assisted annotation: pre-annotation, training, evaluation, activation, interactive assists.

The heavy functions (`preannotate`, `model_train`, `model_evaluate`) run inside a Celery job (see
job_handlers.py); the `*_start` functions validate the request in the web process and enqueue
the job, so a bad parameter is a 400 at once instead of a failed job later.

Uncertainty (drives the "least sure first" queue): for each image, the mean over the model's
detections scoring at least min(threshold, 0.3) of ``1 - |2 * score - 1|`` — 1 for a coin-flip
score of 0.5, 0 for a score of 0 or 1. An image where the model finds nothing at all gets 1.0: the
model offers no help there, so a person has the most to do.
"""
from __future__ import annotations

import math
import os
import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pycocotools.mask as mask_utils
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.db.models import Case, FloatField, Value, When
from django.utils import timezone

from annotator.annotations.models import Prediction
from annotator.core.errors import DomainError
from annotator.images.models import Image
from annotator.jobs.models import Job, JobKind
from annotator.jobs.services import JobContext, job_start
from annotator.projects.models import Project
from ml.assist import AssistError, AssistUnavailable, box_to_mask, sam_predict, scissors_path
from ml.geometry import GeometryError, mask_to_rle, normalize_geometry

from .models import ModelKind, ModelVersion
from .pixels import ImageUnreadable, read_rgb_array, rgb_cache
from .selectors import accepted_images, active_model_of, annotation_instances, images_without_annotations

if TYPE_CHECKING:
    from ml.models.maskrcnn import MaskRCNNSegmenter, ModelSpec

COCO_VERSION_NAME = "COCO Mask R-CNN (torchvision)"
COCO_ARCH = "maskrcnn_resnet50_fpn"
UNCERTAIN_FLOOR = 0.3
#: Detections down to this score take part in evaluation: AP integrates over all scores.
EVAL_THRESHOLD = 0.05
MAX_BATCH = 64


class AssistNotConfigured(DomainError):
    """An optional assist (SAM) has no model on this server."""

    status = 501


# --------------------------------------------------------------------------------------------
# Model versions


def _model_dir() -> Path:
    return Path(settings.ANNOTATOR_MODEL_DIR)


def model_version_coco(*, project: Project, user: AbstractBaseUser | None) -> ModelVersion:
    """The project's record of torchvision's COCO model (created the first time it is used)."""
    from ml.models.maskrcnn import coco_class_names

    version = ModelVersion.objects.filter(project=project, kind=ModelKind.COCO).order_by("id").first()
    if version is None:
        version = ModelVersion.objects.create(
            project=project, name=COCO_VERSION_NAME, kind=ModelKind.COCO, arch=COCO_ARCH,
            checkpoint=settings.ANNOTATOR_COCO_CHECKPOINT or "", class_names=coco_class_names(COCO_ARCH),
            params={"source": "torchvision weights enum" if not settings.ANNOTATOR_COCO_CHECKPOINT else "ANNOTATOR_COCO_CHECKPOINT"},
            created_by=user,
        )
    return version


def model_version_from_checkpoint(
    *, project: Project, path: str, user: AbstractBaseUser | None, allow_any_path: bool = False
) -> ModelVersion:
    """Register a checkpoint file as a model version of the project (once per path)."""
    from ml.models import CheckpointError
    from ml.models.maskrcnn import load_checkpoint

    try:
        resolved = Path(path).expanduser().resolve()
    except (OSError, ValueError, RuntimeError) as exc:
        raise DomainError(f"model: {path!r} is not a usable path ({exc})") from None
    if not allow_any_path and not resolved.is_relative_to(_model_dir().resolve()):
        # A web user must not make the server open arbitrary files; commands run by the admin may.
        raise DomainError(f"model: a checkpoint path must lie under the model folder ({_model_dir()})")
    existing = ModelVersion.objects.filter(project=project, kind=ModelKind.CHECKPOINT, checkpoint=str(resolved)).first()
    if existing is not None:
        return existing
    try:
        loaded = load_checkpoint(resolved)
    except CheckpointError as exc:
        raise DomainError(f"model: {exc}") from None
    return ModelVersion.objects.create(
        project=project, name=resolved.name, kind=ModelKind.CHECKPOINT, arch=loaded.arch, checkpoint=str(resolved),
        class_names=loaded.class_names, metrics=loaded.metrics, params={"source": "checkpoint file"}, created_by=user,
    )


def model_version_resolve(
    *, project: Project, model: str | int, user: AbstractBaseUser | None, allow_any_path: bool = False
) -> ModelVersion:
    """`model` is "active", "coco", a model version id of this project, or a checkpoint path."""
    if isinstance(model, int) or (isinstance(model, str) and model.isdigit()):
        version = ModelVersion.objects.filter(project=project, pk=int(model)).first()
        if version is None:
            raise DomainError(f"model: {model} is not a model version of this project")
        return version
    if not isinstance(model, str) or not model.strip():
        raise DomainError('model: give "active", "coco", a model version id or a checkpoint path')
    model = model.strip()
    if model == "active":
        version = active_model_of(project)
        if version is None:
            raise DomainError(
                'model: this project has no active model yet; train one, activate a version, or use model="coco"'
            )
        return version
    if model == "coco":
        return model_version_coco(project=project, user=user)
    return model_version_from_checkpoint(project=project, path=model, user=user, allow_any_path=allow_any_path)


@transaction.atomic
def model_version_activate(*, version: ModelVersion) -> ModelVersion:
    """Make `version` the project's active model (the one "active" pre-annotation uses)."""
    if version.kind != ModelKind.COCO and version.checkpoint and not Path(version.checkpoint).is_file():
        raise DomainError(f"The checkpoint of {version.name} is missing ({version.checkpoint}); it cannot be activated.")
    # Lock the project's versions so two managers activating at once end with exactly one active.
    list(ModelVersion.objects.select_for_update().filter(project=version.project_id).values_list("pk", flat=True))
    ModelVersion.objects.filter(project=version.project_id, is_active=True).exclude(pk=version.pk).update(is_active=False)
    ModelVersion.objects.filter(pk=version.pk).update(is_active=True)
    version.is_active = True
    return version


def model_spec(version: ModelVersion) -> ModelSpec:
    from ml.models.maskrcnn import ModelSpec

    if version.kind == ModelKind.COCO:
        checkpoint = version.checkpoint or settings.ANNOTATOR_COCO_CHECKPOINT or None
        return ModelSpec(checkpoint=checkpoint, arch=version.arch)
    return ModelSpec(checkpoint=version.checkpoint)


def model_load(version: ModelVersion) -> MaskRCNNSegmenter:
    """The version's model, loaded once per worker process (ml.models.maskrcnn.get_model caches it)."""
    from ml.models import ModelError, WeightsUnavailable
    from ml.models.maskrcnn import get_model

    try:
        return get_model(model_spec(version))
    except WeightsUnavailable as exc:
        raise DomainError(
            f"{exc} On this server: run `python manage.py download_weights`, or copy the weights file here "
            "and set ANNOTATOR_COCO_CHECKPOINT to its path."
        ) from None
    except ModelError as exc:
        raise DomainError(f"Cannot load model {version.name}: {exc}") from None


def label_mapping_resolve(
    *, project: Project, class_names: Sequence[str], label_map: dict[str, Any] | None
) -> dict[str, int]:
    """Model class name → project label id.

    By default a class maps to the project label of the same name (case-insensitive); `label_map`
    entries ({class: label name or id, or null to drop}) override that. Classes left without a label
    are dropped from the predictions.
    """
    labels = list(project.labels.all())
    by_name = {label.name.lower(): label.pk for label in labels}
    ids = {label.pk for label in labels}
    mapping = {name: by_name[name.lower()] for name in class_names if name.lower() in by_name}
    if label_map is not None and not isinstance(label_map, dict):
        raise DomainError("label_map must be an object {model class: project label}")
    known = set(class_names)
    for cls, target in (label_map or {}).items():
        if cls not in known:
            sample = ", ".join(sorted(n for n in known if n != "N/A")[:12])
            raise DomainError(f"label_map: the model has no class {cls!r} (it knows: {sample}…)")
        if target is None or target == "":
            mapping.pop(cls, None)
            continue
        if isinstance(target, int) and not isinstance(target, bool):
            if target not in ids:
                raise DomainError(f"label_map: {target} is not a label id of this project")
            mapping[cls] = target
        elif isinstance(target, str) and target.lower() in by_name:
            mapping[cls] = by_name[target.lower()]
        else:
            raise DomainError(f"label_map: {target!r} is not a label of this project")
    if not mapping:
        raise DomainError(
            "None of the model's classes matches a project label; give a label_map such as "
            '{"' + (class_names[0] if class_names else "class") + '": "<project label>"}'
        )
    return mapping


# --------------------------------------------------------------------------------------------
# Decoding, batched, one batch ahead of the model

#: Niceness of the decode and save threads of a pre-annotation job (see `_yield_to_the_model`).
PIPELINE_THREAD_NICENESS = 10


def _yield_to_the_model() -> None:
    """Run the calling pipeline thread at a lower scheduling priority than the model's threads.

    When torch's intra-op threads take every core, a parallel operator waits for its slowest
    thread, so a decode or save that preempts one of them stalls the whole model; at normal
    priority that made the job 20-40% slower than the model alone on 2 cores. At a lower
    priority those threads take the moments the model leaves (measured: bench/preannotate_overhead.py).
    Linux schedules threads as tasks, so their own id can be reniced; elsewhere this does nothing.
    """
    if not hasattr(os, "setpriority"):
        return
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), PIPELINE_THREAD_NICENESS)
    except OSError:
        pass  # not allowed here (a restricted container): run at normal priority


def _decode_batch(images: list[Image]) -> tuple[list[tuple[Image, np.ndarray]], list[dict[str, Any]]]:
    ok: list[tuple[Image, np.ndarray]] = []
    errors: list[dict[str, Any]] = []
    for image in images:
        try:
            ok.append((image, read_rgb_array(image)))
        except ImageUnreadable as exc:
            errors.append({"image": image.pk, "file": image.original_name, "reason": str(exc)})
    return ok, errors


def decoded_batches(
    images: Sequence[Image], batch_size: int
) -> Iterator[tuple[list[tuple[Image, np.ndarray]], list[dict[str, Any]]]]:
    """Yield (decoded, errors) per batch; the next batch is decoded in a thread while the caller runs the model.

    OpenCV's decoder and torch both release the GIL, so the two really overlap.
    """
    batches = [list(images[i : i + batch_size]) for i in range(0, len(images), batch_size)]
    if not batches:
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="decode", initializer=_yield_to_the_model) as pool:
        pending = pool.submit(_decode_batch, batches[0])
        for index in range(len(batches)):
            current = pending.result()
            if index + 1 < len(batches):
                pending = pool.submit(_decode_batch, batches[index + 1])
            yield current


def _predict(segmenter: MaskRCNNSegmenter, decoded: list[tuple[Image, np.ndarray]], threshold: float) -> tuple[list[tuple[Image, list[Any]]], list[dict[str, Any]]]:
    """Predict one batch; if the batch fails, retry image by image so one bad image fails alone."""
    from ml.models import ModelError

    arrays = [array for _, array in decoded]
    try:
        results = segmenter.predict(arrays, threshold=threshold, batch_size=max(1, len(arrays)))
        return list(zip([image for image, _ in decoded], results)), []
    except (ModelError, RuntimeError, ValueError) as exc:
        if len(decoded) == 1:
            image = decoded[0][0]
            return [], [{"image": image.pk, "file": image.original_name, "reason": f"model failed: {exc}"}]
    done: list[tuple[Image, list[Any]]] = []
    errors: list[dict[str, Any]] = []
    for item in decoded:
        ok, failed = _predict(segmenter, [item], threshold)
        done += ok
        errors += failed
    return done, errors


def image_uncertainty(scores: Sequence[float]) -> float:
    """Mean of 1 - |2s - 1| over the given detection scores; 1.0 when there are none (see module doc)."""
    if not scores:
        return 1.0
    values = np.asarray(scores, dtype=np.float64)
    return float(np.mean(1.0 - np.abs(2.0 * values - 1.0)))


def _prediction_rows(
    image: Image, instances: list[Any], *, version: ModelVersion, job: Job | None, mapping: dict[str, int], threshold: float
) -> tuple[list[Prediction], list[float], Counter[str]]:
    rows: list[Prediction] = []
    scores: list[float] = []
    dropped: Counter[str] = Counter()
    for inst in sorted(instances, key=lambda i: -i.score):
        label_id = mapping.get(inst.label)
        if label_id is None:
            dropped[inst.label] += 1
            continue
        scores.append(inst.score)
        if inst.score < threshold:
            continue  # below the threshold: counts for uncertainty only
        # The hot loop of a job: encode straight from the boolean mask (a uint8 view; the
        # segmenter's masks are column-major already, so no copy at all) instead of
        # ml.geometry.mask_to_rle's extra conversion; the RLE is the same.
        coco = mask_utils.encode(np.asfortranarray(np.asarray(inst.mask, dtype=bool).view(np.uint8)))
        rle = {"size": [int(v) for v in coco["size"]], "counts": coco["counts"].decode("ascii")}
        bbox = [float(v) for v in mask_utils.toBbox(coco)]
        rows.append(Prediction(
            image=image, job=job, model_version=version, rank=len(rows), label_id=label_id, class_name=inst.label[:100],
            score=float(inst.score), rle=rle, bbox=bbox, area=float(mask_utils.area(coco)),
        ))
    return rows, scores, dropped


@transaction.atomic
def predictions_replace(*, version: ModelVersion, items: list[tuple[Image, list[Prediction], float]]) -> int:
    """Replace each image's predictions of `version` (delete + insert): a rerun never duplicates rows.

    One statement of each kind per batch of images rather than per image: the saving thread must
    keep up with the model.
    """
    if not items:
        return 0
    ids = [image.pk for image, _, _ in items]
    # The image row locks serialise two deliveries of the same work on the same images.
    list(Image.objects.select_for_update().filter(pk__in=ids).order_by("pk").values_list("pk", flat=True))
    Prediction.objects.filter(image_id__in=ids, model_version=version).delete()
    rows = [row for _, image_rows, _ in items for row in image_rows]
    Prediction.objects.bulk_create(rows)
    Image.objects.filter(pk__in=ids).update(
        uncertainty=Case(*[When(pk=image.pk, then=Value(value)) for image, _, value in items], output_field=FloatField())
    )
    return len(rows)


# --------------------------------------------------------------------------------------------
# Pre-annotation


def _int_list(value: Any, what: str) -> list[int]:
    if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise DomainError(f"{what} must be a list of ids")
    return value


def preannotate_start(
    *,
    project: Project,
    user: AbstractBaseUser | None,
    model: str | int = "active",
    threshold: float = 0.5,
    images: list[int] | None = None,
    scope: str = "unannotated",
    label_map: dict[str, Any] | None = None,
    batch_size: int = 4,
    allow_any_path: bool = False,
    enqueue: bool = True,
) -> Job:
    """Check the parameters and start a pre-annotation job on the ML queue."""
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 <= threshold <= 1:
        raise DomainError("threshold must be a number between 0 and 1")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or not 1 <= batch_size <= MAX_BATCH:
        raise DomainError(f"batch_size must be an integer between 1 and {MAX_BATCH}")
    if scope not in ("unannotated", "all"):
        raise DomainError('scope must be "unannotated" or "all"')
    if images is not None:
        images = sorted(set(_int_list(images, "images")))
        if not images:
            raise DomainError("images: the list is empty")
        found = set(Image.objects.filter(project=project, pk__in=images).values_list("pk", flat=True))
        missing = [pk for pk in images if pk not in found]
        if missing:
            raise DomainError(f"images: {missing[:10]} are not images of this project")
    elif not _default_images(project, scope).exists():
        raise DomainError("There are no images to pre-annotate" + (" (all have annotations)" if scope == "unannotated" else ""))
    version = model_version_resolve(project=project, model=model, user=user, allow_any_path=allow_any_path)
    mapping = label_mapping_resolve(project=project, class_names=version.class_names, label_map=label_map)
    params = {
        "model_version": version.pk, "model": str(model), "threshold": float(threshold), "images": images,
        "scope": scope, "label_map": label_map or {}, "mapping": mapping, "batch_size": batch_size,
    }
    return job_start(kind=JobKind.PREANNOTATE, project=project, params=params, user=user, enqueue=enqueue)


def _forget_unusable_coco(version: ModelVersion) -> None:
    """The COCO model's record is made when a pre-annotation first asks for it; if its weights cannot
    be loaded here, a record that never produced anything goes again, so that a failed run does not
    leave a model with Activate and Evaluate buttons behind (the job's error says what to install)."""
    if version.kind != ModelKind.COCO or version.is_active or version.metrics:
        return
    if Prediction.objects.filter(model_version=version).exists():
        return
    version.delete()


def _default_images(project: Project, scope: str) -> Any:
    return images_without_annotations(project) if scope == "unannotated" else Image.objects.filter(project=project).order_by("id")


def _save_batch(
    results: list[tuple[Image, list[Any]]], *, version: ModelVersion, job: Job, mapping: dict[str, int], threshold: float
) -> tuple[int, int, Counter[str]]:
    """Convert one batch's masks to rows and store them; returns (predictions, images, dropped classes)."""
    items = []
    dropped: Counter[str] = Counter()
    for image, instances in results:
        rows, scores, image_dropped = _prediction_rows(
            image, instances, version=version, job=job, mapping=mapping, threshold=threshold
        )
        dropped.update(image_dropped)
        items.append((image, rows, image_uncertainty(scores)))
    return predictions_replace(version=version, items=items), len(items), dropped


def _close_connection() -> None:
    connection.close()


def preannotate(*, job: Job, ctx: JobContext) -> dict[str, Any]:
    """Run a model over the job's images and store its proposals; one unreadable image is reported, not fatal.

    Three stages overlap: the next batch is decoded in one thread, the model runs in this one, and
    the previous batch's masks are converted and saved in a third (with its own database
    connection). When the caller holds a transaction open (tests, or a caller's atomic block), a
    second connection could not see its rows, so saving then stays on this thread.
    """
    params = job.params
    project = job.project
    if project is None:
        raise DomainError("A pre-annotation job needs a project.")
    version = ModelVersion.objects.filter(pk=params["model_version"], project=project).first()
    if version is None:
        raise DomainError("The model version of this job was deleted.")
    if params.get("images"):
        images = list(Image.objects.filter(project=project, pk__in=params["images"]).order_by("id"))
    else:
        images = list(_default_images(project, params.get("scope", "unannotated")))
    threshold = float(params.get("threshold", 0.5))
    mapping = {str(k): int(v) for k, v in params["mapping"].items()}
    batch_size = int(params.get("batch_size", 4))
    total = len(images)
    ctx.progress(0, total, f"Loading {version.name}", force=True)
    try:
        segmenter = model_load(version)
    except DomainError:
        _forget_unusable_coco(version)
        raise
    floor = min(threshold, UNCERTAIN_FLOOR)
    errors: list[dict[str, Any]] = []
    dropped: Counter[str] = Counter()
    counts = {"done": 0, "images": 0, "predictions": 0}
    writer = None if transaction.get_connection().in_atomic_block else ThreadPoolExecutor(1, thread_name_prefix="save", initializer=_yield_to_the_model)
    pending: tuple[Future[tuple[int, int, Counter[str]]], int] | None = None

    def collect(entry: tuple[Future[tuple[int, int, Counter[str]]], int]) -> None:
        future, finished = entry
        saved, image_count, batch_dropped = future.result()
        counts["predictions"] += saved
        counts["images"] += image_count
        counts["done"] += finished
        dropped.update(batch_dropped)
        ctx.progress(counts["done"], total, f"{counts['predictions']} proposals on {counts['images']} images"
                     + (f", {len(errors)} failed" if errors else ""))

    try:
        for decoded, decode_errors in decoded_batches(images, batch_size):
            errors += decode_errors
            results, predict_errors = _predict(segmenter, decoded, floor) if decoded else ([], [])
            errors += predict_errors
            save = partial(_save_batch, results, version=version, job=job, mapping=mapping, threshold=threshold)
            if writer is not None:
                future = writer.submit(save)
            else:
                future = Future()
                future.set_result(save())
            if pending is not None:
                collect(pending)  # the previous batch: saved while this one was being predicted
            pending = (future, len(decoded) + len(decode_errors))
        if pending is not None:
            collect(pending)
            pending = None
    finally:
        if writer is not None:
            writer.submit(_close_connection)
            writer.shutdown(wait=True)  # a cancelled job still finishes the batch being saved
    return {
        "model_version": version.pk,
        "images": total,
        "predicted_images": counts["images"],
        "predictions": counts["predictions"],
        "threshold": threshold,
        "dropped_classes": dict(dropped.most_common(20)),
        "errors": errors,
    }


# --------------------------------------------------------------------------------------------
# Training and evaluation


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


def train_start(
    *,
    project: Project,
    user: AbstractBaseUser | None,
    epochs: int | None = None,
    held_out: float = 0.2,
    arch: str | None = None,
    batch_size: int | None = None,
    min_size: int | None = None,
    warm_start: bool = True,
    enqueue: bool = True,
) -> Job:
    """Check that there is something to learn from and start a training job on the ML queue.

    `min_size` is the shorter image side the model works at (default: the configuration's own);
    with `warm_start` training continues from the active trained version when it has the same
    architecture and classes, so each round of the loop builds on the last one.
    """
    from ml.models.maskrcnn import ARCHS

    if epochs is not None and (isinstance(epochs, bool) or not isinstance(epochs, int) or not 1 <= epochs <= 500):
        raise DomainError("epochs must be an integer between 1 and 500")
    if isinstance(held_out, bool) or not isinstance(held_out, (int, float)) or not 0 <= held_out <= 0.5:
        raise DomainError("held_out must be a share between 0 and 0.5")
    if arch is not None and arch not in ARCHS:
        raise DomainError(f"arch must be one of {', '.join(ARCHS)}")
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int) or not 1 <= batch_size <= 32):
        raise DomainError("batch_size must be an integer between 1 and 32")
    if min_size is not None and (isinstance(min_size, bool) or not isinstance(min_size, int) or not 64 <= min_size <= 1333):
        raise DomainError("min_size must be an integer between 64 and 1333 (pixels)")
    count = accepted_images(project).count()
    if count < 2:
        raise DomainError(f"Training needs at least 2 accepted images with annotations; this project has {count}.")
    if not project.labels.exists():
        raise DomainError("The project has no labels to learn.")
    params = {"epochs": epochs, "held_out": float(held_out), "arch": arch, "batch_size": batch_size, "min_size": min_size,
              "warm_start": bool(warm_start)}
    return job_start(kind=JobKind.TRAIN, project=project, params=params, user=user, enqueue=enqueue)


def evaluation_metrics(
    truth: Sequence[dict[str, Any]], predictions: Sequence[dict[str, Any]], *, categories: Sequence[str]
) -> dict[str, Any]:
    """Mask/box COCO AP, per-class mask AP and the mask PR curve (IoU 0.5) as stored on a model version."""
    from ml.metrics import coco_evaluate, pr_curve

    result = coco_evaluate(truth, predictions, categories=categories)
    segm, bbox = result["segm"], result["bbox"]
    return {
        "mask_AP": segm["AP"], "mask_AP50": segm["AP50"], "mask_AP75": segm["AP75"],
        "box_AP": bbox["AP"], "box_AP50": bbox["AP50"],
        "per_class": segm["per_class"],
        "pr_curve": pr_curve(truth, predictions, categories=categories),
        "images": len(truth),
    }


def _predicted_instances(
    segmenter: MaskRCNNSegmenter, pairs: Sequence[tuple[Any, np.ndarray]], *, names: dict[str, str], batch_size: int,
) -> list[list[dict[str, Any]]]:
    out: list[list[dict[str, Any]]] = []
    for start in range(0, len(pairs), batch_size):
        chunk = [array for _, array in pairs[start : start + batch_size]]
        for instances in segmenter.predict(chunk, threshold=EVAL_THRESHOLD, batch_size=len(chunk)):
            # Only the RLE is kept: an evaluation set's full-size masks would not fit in memory.
            out.append([
                {"label": names[i.label], "score": i.score, "rle": mask_to_rle(i.mask)} for i in instances if i.label in names
            ])
    return out


def model_train(*, job: Job, ctx: JobContext) -> dict[str, Any]:
    """Train a model version on the project's accepted images and evaluate it on a held-out share of them."""
    from ml.models import ModelError
    from ml.models.maskrcnn import MaskRCNNSegmenter, TrainConfig, split_held_out, train

    from .samples import AcceptedSamples

    project = job.project
    if project is None:
        raise DomainError("A training job needs a project.")
    params = job.params
    cuda = _cuda()
    defaults = train_defaults(cuda=cuda)
    arch = params.get("arch") or defaults["arch"]
    epochs = int(params.get("epochs") or defaults["epochs"])
    batch_size = int(params.get("batch_size") or defaults["batch_size"])
    held_out = float(params.get("held_out", 0.2))
    seed = int(params.get("seed", 0))
    class_names = list(project.labels.order_by("order", "id").values_list("name", flat=True))

    images = list(accepted_images(project))
    train_idx, held_idx = split_held_out(len(images), held_out, seed)
    iterations = math.ceil(len(train_idx) / batch_size) * epochs
    total = len(images) + iterations + len(held_idx)
    readable: list[Image] = []
    errors: list[dict[str, Any]] = []
    for index, image in enumerate(images):
        # Decoded once here so that an unreadable file is reported and left out before training
        # starts; the pixels are read again batch by batch while training (AcceptedSamples).
        try:
            read_rgb_array(image)
            readable.append(image)
        except ImageUnreadable as exc:
            errors.append({"image": image.pk, "file": image.original_name, "reason": str(exc)})
        ctx.progress(index + 1, total, f"Checking accepted images ({index + 1}/{len(images)})")
    if len(readable) < 2:
        raise DomainError(f"Only {len(readable)} accepted images could be read; training needs at least 2.")
    if len(readable) != len(images):
        # Unreadable images were left out: split again so indexes refer to the images we have.
        train_idx, held_idx = split_held_out(len(readable), held_out, seed)
        iterations = math.ceil(len(train_idx) / batch_size) * epochs
        total = len(images) + iterations + len(held_idx)
    samples = AcceptedSamples(readable)
    base = len(images)
    model_kwargs = dict(defaults["model_kwargs"]) if arch == defaults["arch"] else {}
    if params.get("min_size"):
        # torchvision's own ratio of longest to shortest side (800 / 1333).
        model_kwargs.update(min_size=int(params["min_size"]), max_size=round(int(params["min_size"]) * 5 / 3))
    warm = _warm_start_checkpoint(project, arch, class_names) if params.get("warm_start", True) else None
    # The COCO file fits only the architecture it was trained for.
    init_from = warm or (_coco_init() if arch == COCO_ARCH else None)
    config = TrainConfig(
        arch=arch, class_names=class_names, epochs=epochs, batch_size=batch_size, held_out=0.0, seed=seed,
        init_from=init_from, model_kwargs=model_kwargs,
    )
    path = _model_dir() / f"project-{project.pk}" / f"train-job-{job.pk}.pt"

    def on_iteration(done: int, _total: int, info: dict[str, Any]) -> None:
        ctx.progress(base + done, total, f"Training: epoch {info['epoch']}/{epochs}, loss {info['loss']:.3f}")

    try:
        fit = train(AcceptedSamples([readable[i] for i in train_idx]), config=config, output_path=path, progress=on_iteration)
    except ModelError as exc:
        raise DomainError(f"Training failed: {exc}") from None
    except ImageUnreadable as exc:
        raise DomainError(f"Training failed: an accepted image became unreadable ({exc})") from None

    metrics: dict[str, Any] = {"train_images": len(train_idx), "held_out_images": len(held_idx)}
    if held_idx:
        segmenter = MaskRCNNSegmenter.from_checkpoint(fit.checkpoint_path)
        truth: list[dict[str, Any]] = []
        dts: list[dict[str, Any]] = []
        for start in range(0, len(held_idx), batch_size):
            held = [samples[i] for i in held_idx[start : start + batch_size]]
            predicted = _predicted_instances(segmenter, [(s, s.image) for s in held], names={n: n for n in class_names},
                                             batch_size=len(held))
            for sample, instances in zip(held, predicted):
                truth.append(_truth_from_sample(len(truth), sample))
                dts.append({"id": len(dts), "width": truth[-1]["width"], "height": truth[-1]["height"], "instances": instances})
            ctx.progress(base + iterations + len(truth), total, "Evaluating on held-out images")
        metrics.update(evaluation_metrics(truth, dts, categories=class_names))
        metrics["evaluated_on"] = "held-out accepted images"
    ids = [image.pk for image in readable]
    version = _trained_version_save(
        job=job, project=project, arch=arch, path=fit.checkpoint_path, class_names=class_names, metrics=metrics,
        curve=fit.curve,
        params={
            "job": job.pk, "epochs": epochs, "batch_size": batch_size, "held_out": held_out, "device": "cuda" if cuda else "cpu",
            "init_from": init_from, "model_kwargs": config.model_kwargs,
            "train_images": [ids[i] for i in train_idx], "held_out_images": [ids[i] for i in held_idx],
        },
    )
    return {"model_version": version.pk, "metrics": {k: v for k, v in metrics.items() if k != "pr_curve"}, "errors": errors,
            "activated": version.is_active}


def _warm_start_checkpoint(project: Project, arch: str, class_names: list[str]) -> str | None:
    active = active_model_of(project)
    if (
        active is not None and active.kind == ModelKind.TRAINED and active.arch == arch
        and list(active.class_names) == class_names and Path(active.checkpoint).is_file()
    ):
        return active.checkpoint
    return None


def _truth_from_sample(index: int, sample: Any) -> dict[str, Any]:
    height, width = sample.image.shape[:2]
    return {"id": index, "width": width, "height": height,
            "instances": [{"label": label, "rle": mask_to_rle(mask)} for label, mask in sample.objects if mask.any()]}


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


def evaluate_start(
    *, version: ModelVersion, user: AbstractBaseUser | None, label_map: dict[str, Any] | None = None, enqueue: bool = True
) -> Job:
    project = version.project
    mapping = label_mapping_resolve(project=project, class_names=version.class_names, label_map=label_map)
    if not _evaluation_images(version).exists():
        raise DomainError("There are no accepted images with annotations that this version did not train on.")
    params = {"model_version": version.pk, "mapping": mapping, "label_map": label_map or {}}
    return job_start(kind=JobKind.EVALUATE, project=project, params=params, user=user, enqueue=enqueue)


def _evaluation_images(version: ModelVersion) -> Any:
    trained_on = (version.params or {}).get("train_images") or []
    return accepted_images(version.project).exclude(pk__in=trained_on)


def model_evaluate(*, job: Job, ctx: JobContext) -> dict[str, Any]:
    """Run a version over accepted images it did not train on and store mask AP, per-class AP and PR curve."""
    version = ModelVersion.objects.select_related("project").filter(pk=job.params["model_version"]).first()
    if version is None:
        raise DomainError("The model version of this job was deleted.")
    project = version.project
    label_names = dict(project.labels.values_list("pk", "name"))
    names = {cls: label_names[label_id] for cls, label_id in job.params["mapping"].items() if label_id in label_names}
    images = list(_evaluation_images(version))
    total = len(images)
    ctx.progress(0, total, f"Loading {version.name}", force=True)
    segmenter = model_load(version)
    truth: list[dict[str, Any]] = []
    predicted: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    done = 0
    for decoded, decode_errors in decoded_batches(images, 4):
        errors += decode_errors
        outputs = _predicted_instances(segmenter, decoded, names=names, batch_size=len(decoded) or 1) if decoded else []
        for (image, _), instances in zip(decoded, outputs):
            index = len(truth)
            truth.append({"id": index, "width": image.width, "height": image.height, "instances": [
                {"label": a["label"], "geometry": a["geometry"]} for a in annotation_instances(image)
            ]})
            predicted.append({"id": index, "width": image.width, "height": image.height, "instances": instances})
        done += len(decoded) + len(decode_errors)
        ctx.progress(done, total, f"Evaluating ({done}/{total})")
    if not truth:
        raise DomainError("None of the evaluation images could be read.")
    metrics = evaluation_metrics(truth, predicted, categories=list(label_names.values()))
    metrics["evaluated_on"] = "accepted images not used for training"
    metrics["job"] = job.pk
    stored = {**(version.metrics or {}), **metrics}
    if "train_images" not in stored:
        stored["train_images"] = 0
    ModelVersion.objects.filter(pk=version.pk).update(metrics=stored)
    return {"model_version": version.pk, "metrics": {k: v for k, v in metrics.items() if k != "pr_curve"}, "errors": errors}


# --------------------------------------------------------------------------------------------
# Interactive assists (called in the web process; must answer within an interactive budget)


def _pixels(image: Image) -> np.ndarray:
    try:
        return rgb_cache.get(image)
    except ImageUnreadable as exc:
        raise DomainError(f"{image.original_name}: {exc}", status=422) from None


def assist_box_to_mask(
    *, image: Image, box: Sequence[float], foreground: Sequence[Sequence[float]] = (), background: Sequence[Sequence[float]] = ()
) -> dict[str, Any]:
    """GrabCut inside a box (refined by foreground/background clicks) → a mask geometry with bbox and area."""
    try:
        mask = box_to_mask(_pixels(image), box, foreground=foreground, background=background)
    except AssistError as exc:
        raise DomainError(str(exc)) from None
    return _mask_geometry(mask)


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

    The model type comes from the checkpoint's file name, as published (see ml.assist.sam_predict).
    """
    checkpoint = settings.ANNOTATOR_SAM_CHECKPOINT
    if not checkpoint:
        raise AssistNotConfigured(
            "SAM is not configured on this server: install the segment-anything package and set "
            "ANNOTATOR_SAM_CHECKPOINT to a sam_vit_*.pth file. Use box → mask instead."
        )
    try:
        mask = sam_predict(
            _pixels(image), checkpoint=checkpoint, box=box, points=points, labels=labels, image_key=(image.pk, image.checksum),
        )
    except AssistUnavailable as exc:
        raise AssistNotConfigured(str(exc)) from None
    except AssistError as exc:
        raise DomainError(str(exc)) from None
    return _mask_geometry(mask)


def _mask_geometry(mask: np.ndarray) -> dict[str, Any]:
    rle = mask_to_rle(mask)
    coco = {"size": rle["size"], "counts": rle["counts"].encode("ascii")}
    geometry: dict[str, Any] = {"type": "mask", "rle": rle}
    if mask.any():
        # The one normalisation every object goes through (an empty answer is the editor's to report).
        geometry, _ = normalize_geometry(geometry, width=mask.shape[1], height=mask.shape[0])
    return {
        "geometry": geometry,
        "bbox": [float(v) for v in mask_utils.toBbox(coco)],
        "area": float(mask_utils.area(coco)),
    }
