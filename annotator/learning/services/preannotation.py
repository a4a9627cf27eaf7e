"""Pre-annotation: a model's proposals stored as predictions, in a pipeline that keeps the model busy.

Uncertainty (drives the "least sure first" queue): for each image, the mean over the model's
detections scoring at least min(threshold, 0.3) of ``1 - |2 * score - 1|`` — 1 for a coin-flip
score of 0.5, 0 for a score of 0 or 1. An image where the model finds nothing at all gets 1.0: the
model offers no help there, so a person has the most to do.

Duplicates (one object proposed several times) are suppressed before anything is stored:
class-aware mask NMS (ml.nms) at the job's ``nms_iou``; the job result counts what it removed.
"""
from __future__ import annotations

import os
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np
from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.db.models import Case, FloatField, QuerySet, Value, When

from annotator.annotations.models import Prediction
from annotator.core.cpu import available_cores
from annotator.core.db import rows_insert
from annotator.core.errors import DomainError
from annotator.images.models import Image
from annotator.jobs.models import Job, JobKind
from annotator.jobs.services import JobContext, job_start
from annotator.projects.models import Project
from ml.geometry import mask_to_rle, rle_bbox_area
from ml.nms import mask_nms

from ..models import ModelKind, ModelVersion
from ..params import PreannotateParams
from ..pixels import ImageUnreadable, read_rgb_array
from ..selectors import images_without_annotations
from .versions import label_mapping_resolve, model_load, model_version_resolve

if TYPE_CHECKING:
    from ml.models.maskrcnn import MaskRCNNSegmenter

UNCERTAIN_FLOOR = 0.3


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


def pipeline_overlaps(segmenter: MaskRCNNSegmenter) -> bool:
    """Whether decoding and saving run in threads beside the model, or between its batches on the job's thread.

    Beside it only where the model leaves CPU free: on a GPU, or with fewer torch threads than the
    process may use cores. Where torch's threads take every core, a third thread can only take
    time from them, and a parallel operator waits for the thread it preempted (even at a lower
    priority: bench/preannotate_overhead.py measured the job 15-20% slower than the model alone on 2
    cores with both stages in threads), so there the stages run in turn.
    """
    import torch

    if PIPELINE_OVERLAP is not None:
        return PIPELINE_OVERLAP
    if segmenter.device.type != "cpu":
        return True
    return torch.get_num_threads() < available_cores()


#: Force the stages beside the model (True) or in turn (False); None decides by pipeline_overlaps' rule.
PIPELINE_OVERLAP: bool | None = None


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
    images: Sequence[Image], batch_size: int, *, ahead: bool = True,
) -> Iterator[tuple[list[tuple[Image, np.ndarray]], list[dict[str, Any]]]]:
    """Yield (decoded, errors) per batch; with ``ahead`` the next batch is decoded in a thread while the caller runs the model.

    OpenCV's decoder and torch both release the GIL, so the two really overlap.
    """
    batches = [list(images[i : i + batch_size]) for i in range(0, len(images), batch_size)]
    if not ahead:
        yield from (_decode_batch(batch) for batch in batches)
        return
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




@dataclass
class _Rows:
    """One image's proposals ready to store, and what was left out on the way."""

    rows: list[Prediction]
    uncertainty: float
    dropped: Counter[str]
    suppressed: int


def _prediction_rows(
    image: Image, instances: list[Any], *, version: ModelVersion, job: Job | None, params: PreannotateParams,
) -> _Rows:
    mapping = params.mapping or {}
    dropped: Counter[str] = Counter()
    mapped = []
    for inst in instances:
        label_id = mapping.get(inst.label)
        if label_id is None:
            dropped[inst.label] += 1
        else:
            mapped.append((inst, label_id))
    # The hot loop of a job: each mask is encoded once, only the part of the image its box pasted
    # it on, and NMS, bbox and area all work on that RLE.
    rles = [mask_to_rle(inst.mask, within=inst.bounds) for inst, _ in mapped]
    keep = mask_nms(rles, [inst.score for inst, _ in mapped], [label_id for _, label_id in mapped], iou_threshold=params.nms_iou)
    kept = set(keep)
    suppressed = sum(1 for i, (inst, _) in enumerate(mapped) if i not in kept and inst.score >= params.threshold)
    scores: list[float] = []
    rows: list[Prediction] = []
    for index in keep:  # best score first
        inst, label_id = mapped[index]
        scores.append(inst.score)
        if inst.score < params.threshold:
            continue  # below the threshold: counts for uncertainty only
        bbox, area = rle_bbox_area(rles[index])
        rows.append(Prediction(
            image=image, job=job, model_version=version, rank=len(rows), label_id=label_id, class_name=inst.label[:100],
            score=float(inst.score), rle=rles[index], bbox=bbox, area=area,
        ))
    return _Rows(rows=rows, uncertainty=image_uncertainty(scores), dropped=dropped, suppressed=suppressed)


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
    rows_insert(Prediction, rows)  # COPY on PostgreSQL
    Image.objects.filter(pk__in=ids).update(
        uncertainty=Case(*[When(pk=image.pk, then=Value(value)) for image, _, value in items], output_field=FloatField())
    )
    return len(rows)



# --------------------------------------------------------------------------------------------
# Pre-annotation


def preannotate_start(
    *,
    project: Project,
    user: AbstractBaseUser | None,
    params: PreannotateParams,
    allow_any_path: bool = False,
    enqueue: bool = True,
) -> Job:
    """Check the parameters against the project and start a pre-annotation job on the ML queue."""
    if params.images is not None:
        found = set(Image.objects.filter(project=project, pk__in=params.images).values_list("pk", flat=True))
        missing = [pk for pk in params.images if pk not in found]
        if missing:
            raise DomainError(f"images: {missing[:10]} are not images of this project")
    elif not _default_images(project, params.scope).exists():
        raise DomainError("There are no images to pre-annotate" + (" (all have annotations)" if params.scope == "unannotated" else ""))
    version = model_version_resolve(project=project, model=params.model, user=user, allow_any_path=allow_any_path)
    mapping = label_mapping_resolve(project=project, class_names=version.class_names, label_map=params.label_map)
    resolved = replace(params, model_version=version.pk, mapping=mapping)
    return job_start(kind=JobKind.PREANNOTATE, project=project, params=resolved.as_dict(), user=user, enqueue=enqueue)


def _forget_unusable_coco(version: ModelVersion) -> None:
    """The COCO model's record is made when a pre-annotation first asks for it; if its weights cannot
    be loaded here, a record that never produced anything goes again, so that a failed run does not
    leave a model with Activate and Evaluate buttons behind (the job's error says what to install)."""
    if version.kind != ModelKind.COCO or version.is_active or version.metrics:
        return
    if Prediction.objects.filter(model_version=version).exists():
        return
    version.delete()


def _default_images(project: Project, scope: str) -> QuerySet[Image]:
    return images_without_annotations(project) if scope == "unannotated" else Image.objects.filter(project=project).order_by("id")



@dataclass
class _Saved:
    predictions: int
    images: int
    dropped: Counter[str]
    suppressed: int


def _save_batch(results: list[tuple[Image, list[Any]]], *, version: ModelVersion, job: Job, params: PreannotateParams) -> _Saved:
    """Convert one batch's masks to rows and store them."""
    items = []
    dropped: Counter[str] = Counter()
    suppressed = 0
    for image, instances in results:
        rows = _prediction_rows(image, instances, version=version, job=job, params=params)
        dropped.update(rows.dropped)
        suppressed += rows.suppressed
        items.append((image, rows.rows, rows.uncertainty))
    return _Saved(predictions_replace(version=version, items=items), len(items), dropped, suppressed)


def _close_connection() -> None:
    connection.close()


#: Proposals are stored a group of batches at a time: at least SAVE_IMAGES images, or what the model
#: did in SAVE_SECONDS (a slow model's every batch). Each store costs its statements and a commit
#: whatever its size (about 4 ms on SQLite); the proposals it stored show in the next progress write.
SAVE_IMAGES = 16
SAVE_SECONDS = 0.5


def preannotate(*, job: Job, ctx: JobContext) -> dict[str, Any]:
    """Run a model over the job's images and store its proposals; one unreadable image is reported, not fatal.

    Three stages: decoding a batch, the model on it, and converting and storing the masks of a group
    of batches (SAVE_IMAGES). Where the model leaves CPU free (pipeline_overlaps) they overlap: the
    next batch is decoded in one thread, the model runs in this one, and the previous group is
    stored in a third (with its own database connection); elsewhere they take turns on this
    thread. When the caller holds a transaction open (tests, or a caller's atomic block), a second
    connection could not see its rows, so storing then stays on this thread.
    """
    params = PreannotateParams.from_dict(job.params)
    project = job.project
    if project is None:
        raise DomainError("A pre-annotation job needs a project.")
    version = ModelVersion.objects.filter(pk=params.model_version, project=project).first()
    if version is None or params.mapping is None:
        raise DomainError("The model version of this job was deleted.")
    if params.images:
        images = list(Image.objects.filter(project=project, pk__in=params.images).order_by("id"))
    else:
        images = list(_default_images(project, params.scope))
    total = len(images)
    ctx.progress(0, total, f"Loading {version.name}", force=True)
    try:
        segmenter = model_load(version)
    except DomainError:
        _forget_unusable_coco(version)
        raise
    floor = min(params.threshold, UNCERTAIN_FLOOR)
    errors: list[dict[str, Any]] = []
    dropped: Counter[str] = Counter()
    counts = {"done": 0, "images": 0, "predictions": 0, "suppressed": 0}
    overlap = pipeline_overlaps(segmenter)
    in_transaction = transaction.get_connection().in_atomic_block
    writer = ThreadPoolExecutor(1, thread_name_prefix="save", initializer=_yield_to_the_model) if overlap and not in_transaction else None
    pending: tuple[Future[_Saved], int] | None = None

    def collect(entry: tuple[Future[_Saved], int]) -> None:
        future, finished = entry
        saved = future.result()
        counts["predictions"] += saved.predictions
        counts["images"] += saved.images
        counts["suppressed"] += saved.suppressed
        counts["done"] += finished
        dropped.update(saved.dropped)

    def report(seen: int) -> None:
        # After every batch, not only after a store: the write (at most every JobContext interval)
        # is also where a cancel is noticed. The proposals counted are the stored ones.
        ctx.progress(seen, total, f"{counts['predictions']} proposals on {counts['images']} images"
                     + (f", {counts['suppressed']} duplicates suppressed" if counts["suppressed"] else "")
                     + (f", {len(errors)} failed" if errors else ""))

    waiting: list[tuple[Image, list[Any]]] = []
    waiting_done, waiting_since = 0, 0.0

    def store() -> None:
        nonlocal pending, waiting, waiting_done
        save = partial(_save_batch, waiting, version=version, job=job, params=params)
        if writer is not None:
            future = writer.submit(save)
        else:
            future = Future()
            future.set_result(save())
        if pending is not None:
            collect(pending)  # the previous group: saved while this one was being predicted
        pending = (future, waiting_done)
        waiting, waiting_done = [], 0

    try:
        for decoded, decode_errors in decoded_batches(images, params.batch_size, ahead=overlap):
            errors += decode_errors
            results, predict_errors = _predict(segmenter, decoded, floor) if decoded else ([], [])
            errors += predict_errors
            if not waiting_done:
                waiting_since = time.monotonic()
            waiting += results
            waiting_done += len(decoded) + len(decode_errors)
            if waiting_done >= SAVE_IMAGES or time.monotonic() - waiting_since >= SAVE_SECONDS:
                store()
            report(counts["done"] + (pending[1] if pending is not None else 0) + waiting_done)
        if waiting_done:
            store()
        if pending is not None:
            collect(pending)
            pending = None
        report(counts["done"])
    finally:
        if writer is not None:
            writer.submit(_close_connection)
            writer.shutdown(wait=True)  # a cancelled job still finishes the batch being saved
    summary = f"{counts['predictions']} proposals on {counts['images']} of {total} images" + (
        f", {counts['suppressed']} duplicates suppressed (mask IoU > {params.nms_iou:g})" if counts["suppressed"] else ", no duplicates"
    ) + (f", {len(errors)} failed" if errors else "")
    return {
        "summary": summary,
        "model_version": version.pk,
        "images": total,
        "predicted_images": counts["images"],
        "predictions": counts["predictions"],
        "threshold": params.threshold,
        "nms_iou": params.nms_iou,
        "suppressed": counts["suppressed"],
        "dropped_classes": dict(dropped.most_common(20)),
        "errors": errors,
    }
