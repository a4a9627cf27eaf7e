"""The project's own learned shape for the box tool: fitted on its accepted masks by a job on the default queue.

A project that never trains (training needs a GPU to be useful) still gets the box tool's learned
shape (ml.shape_prior, numpy and OpenCV only, so the default worker runs it and never imports
torch). A LEARN_SHAPE job is queued on purpose (``shape_learn_start``: "Learn shape now" on the
models page, POST /api/projects/<id>/learn-shape/) or after accepts and imports of accepted images
(``shape_learn_on_accept``: first at SHAPE_FIRST_OBJECTS accepted objects, again when they grew by
SHAPE_GROWTH since the last job, and at once when the stored shape is of an older format).
``project_shape_learn`` measures the shape and GrabCut on images it did not learn from (SHAPE_FOLDS folds by image, with the measuring code training uses: measure_assists), fits it on
every readable accepted image, stores the file (assists.project_shape_path) and its figures
(ProjectShape). The box tool then uses the newer of this shape and the active version's.
"""
from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from annotator.core.errors import DomainError
from annotator.images.models import Image, ImageStatus
from annotator.images.selectors import image_status_counts
from annotator.jobs.models import Job, JobKind, JobState
from annotator.jobs.services import JobContext, job_start
from annotator.projects.models import Project
from ml.shape_prior import FORMAT_VERSION, ShapePrior, ShapePriorError

from ..models import ProjectShape
from ..pixels import readable_images
from ..samples import AcceptedSamples
from ..selectors import accepted_images, accepted_object_count
from .assists import MEASURED_OBJECTS, measure_assists, project_shape_path

log = logging.getLogger(__name__)

#: A shape learned on purpose needs this many accepted objects (on at least SHAPE_MIN_IMAGES images).
SHAPE_MIN_OBJECTS = 5
#: ml.shape_prior fits its combination weights on folds by image: it needs two images with masks.
SHAPE_MIN_IMAGES = 2
#: Accepts queue the first fit at this many accepted objects...
SHAPE_FIRST_OBJECTS = 20
#: ...and the next one when the accepted objects grew by this factor since the last job.
SHAPE_GROWTH = 1.25
#: Folds by image for measuring the shape on images it did not learn from.
SHAPE_FOLDS = 5

_PENDING = (JobState.QUEUED, JobState.RUNNING)


def _pending_job(project: Project) -> Job | None:
    return Job.objects.filter(project=project, kind=JobKind.LEARN_SHAPE, state__in=_PENDING).order_by("-id").first()


def shape_learn_start(*, project: Project, user: AbstractBaseUser | None, enqueue: bool = True) -> Job:
    """Queue a fit of the project's learned shape now; 400 with the counts when there is too little to learn from."""
    objects = accepted_object_count(project)
    images = accepted_images(project).count()
    if objects < SHAPE_MIN_OBJECTS or images < SHAPE_MIN_IMAGES:
        raise DomainError(
            f"Learning a shape needs at least {SHAPE_MIN_OBJECTS} accepted objects on {SHAPE_MIN_IMAGES} or more accepted "
            f"images; this project has {objects} on {images}.",
            extra={"accepted_objects": objects, "accepted_images": images},
        )
    with transaction.atomic():
        _lock(project)
        pending = _pending_job(project)
        if pending is not None:
            raise DomainError(f"The shape is being learned already (job #{pending.pk}).", status=409, extra={"job": pending.pk})
        return job_start(kind=JobKind.LEARN_SHAPE, project=project, params={"accepted_objects": objects, "trigger": "manual"},
                         user=user, enqueue=enqueue)


def _lock(project: Project) -> None:
    # One request at a time decides whether to queue (two reviewers accepting at once queue one job).
    # NO KEY: rows that refer to the project (the job itself) can still be inserted meanwhile.
    list(Project.objects.select_for_update(no_key=True).filter(pk=project.pk).values_list("pk", flat=True))


def shape_learn_if_grown(*, project: Project) -> Job | None:
    """Queue a fit when the accepted objects reached SHAPE_FIRST_OBJECTS, or grew by SHAPE_GROWTH since the last job,
    or when the project's shape is of an older format than ml.shape_prior reads (an upgrade) and has not been fitted since.

    The last job's count is the basis whatever became of it (a failed fit is not retried on every
    accept), and nothing is queued while one is queued or running: a burst of accepts queues one.
    This runs after every accept, so the objects (a count over the accepted images' annotations)
    are counted only when the accepted images (the trigger-kept counts, a few rows) grew enough
    for the objects to have grown: by SHAPE_GROWTH since the last job, and by CHECK_STEP since
    this process last counted in vain.
    """
    images = image_status_counts(project)[ImageStatus.ACCEPTED]
    if images < SHAPE_MIN_IMAGES:
        return None
    last = Job.objects.filter(project=project, kind=JobKind.LEARN_SHAPE).order_by("-id").only("state", "params", "created_at").first()
    if last is not None and last.state in _PENDING:
        return None
    if _stale(project, last):
        return _queue_again(project, images=images)
    basis_images = _count((last.params or {}).get("accepted_images")) if last is not None else 0
    if images < max(math.ceil(basis_images * SHAPE_GROWTH), math.ceil(_counted_in_vain.get(_key(project), 0) * CHECK_STEP)):
        return None
    objects = accepted_object_count(project)
    job = _queue_if_grown(project, objects=objects, images=images)
    if job is None:
        _counted_in_vain[_key(project)] = images
    else:
        _counted_in_vain.pop(_key(project), None)
    return job


def _stale(project: Project, last: Job | None) -> bool:
    """Whether the project's shape is of another format than this code's and no fit was tried since it was made.

    Such a shape is left out by the box tool (ShapePrior.load refuses it), so it is learned again at
    once, whatever the growth; a fit tried since (even one that failed) falls back to the growth rule.
    """
    shape = ProjectShape.objects.filter(project=project).exclude(format_version=FORMAT_VERSION).only("fitted_at").first()
    return shape is not None and (last is None or last.created_at <= shape.fitted_at)


def _queue_again(project: Project, *, images: int) -> Job | None:
    objects = accepted_object_count(project)
    if objects < SHAPE_MIN_OBJECTS:
        return None
    with transaction.atomic():
        _lock(project)
        if _pending_job(project) is not None:
            return None
        return job_start(kind=JobKind.LEARN_SHAPE, project=project, user=None,
                         params={"accepted_objects": objects, "accepted_images": images, "trigger": "format"})


#: After counting the objects without queueing, this process counts again once the accepted images grew by this factor.
CHECK_STEP = 1.05
#: Project -> accepted images when this process last counted the objects and queued nothing. A project
#: is its id and creation time: an id can come back (SQLite reuses the ids of rolled-back rows).
_counted_in_vain: dict[tuple[int, Any], int] = {}


def _key(project: Project) -> tuple[int, Any]:
    return project.pk, project.created_at


def _queue_if_grown(project: Project, *, objects: int, images: int) -> Job | None:
    if objects < SHAPE_FIRST_OBJECTS:
        return None
    with transaction.atomic():
        _lock(project)
        last = Job.objects.filter(project=project, kind=JobKind.LEARN_SHAPE).order_by("-id").first()
        if last is not None and last.state in _PENDING:
            return None
        basis = max(_count((last.params or {}).get("accepted_objects")) if last is not None else 0,
                    ProjectShape.objects.filter(project=project).values_list("object_count", flat=True).first() or 0)
        if basis and objects < math.ceil(basis * SHAPE_GROWTH):
            return None
        if accepted_images(project).count() < SHAPE_MIN_IMAGES:
            return None
        return job_start(kind=JobKind.LEARN_SHAPE, project=project, user=None,
                         params={"accepted_objects": objects, "accepted_images": images, "trigger": "accepted"})


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def shape_learn_on_accept(*, project: Project) -> None:
    """After the surrounding accept (or import of accepted images) commits, queue a fit if the accepted
    set grew enough (shape_learn_if_grown).

    Never fails the accept: a broker that cannot be reached is the job's failure, logged here.
    """
    def check() -> None:
        try:
            shape_learn_if_grown(project=project)
        except Exception:  # noqa: BLE001 - the accept is committed; the shape waits for the next growth
            log.warning("project %s: could not queue learning its shape", project.pk, exc_info=True)

    transaction.on_commit(check)


# --------------------------------------------------------------------------------------------
# The job


def _held_out_folds(images: Sequence[Image], objects: dict[int, int], seed: int) -> list[list[int]]:
    """Indices of the images each fold holds out: about MEASURED_OBJECTS objects in all, spread over
    SHAPE_FOLDS folds where they are most of the project (k-fold), one split where they are a small
    share of it. Every fold leaves at least SHAPE_MIN_IMAGES images to learn from."""
    order = np.random.default_rng(seed).permutation(len(images))
    pool: list[int] = []
    total = 0
    for index in order:
        if total >= MEASURED_OBJECTS:
            break
        pool.append(int(index))
        total += objects.get(images[index].pk, 0)
    count = min(SHAPE_FOLDS, len(pool), math.ceil(SHAPE_FOLDS * len(pool) / max(1, len(images))))
    folds = [pool[k::count] for k in range(count)] if count else []
    return [fold for fold in folds if len(images) - len(fold) >= SHAPE_MIN_IMAGES]


def _pooled(parts: Sequence[dict[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """measure_assists' figures of several folds as one: means weighted by the objects each fold measured."""
    names = sorted({name for part in parts for name in part})
    pooled: dict[str, dict[str, Any]] = {}
    for name in names:
        rows = [part[name] for part in parts if name in part and part[name]["objects"]]
        measured = sum(row["objects"] for row in rows)
        pooled[name] = {"mean_iou": sum(row["mean_iou"] * row["objects"] for row in rows) / measured if measured else None,
                        "objects": measured}
        if any("failed" in row for row in rows):
            pooled[name]["failed"] = sum(row.get("failed", 0) for row in rows)
    return pooled


def project_shape_learn(*, job: Job, ctx: JobContext) -> dict[str, Any]:
    """Fit the project's learned shape on its accepted images, measure it held out, store its file and figures."""
    project = job.project
    if project is None:
        raise DomainError("A shape learning job needs a project.")
    images = list(accepted_images(project))
    objects = dict(accepted_images(project).annotate(n=Count("annotations")).values_list("pk", "n"))
    # Estimated until the unreadable images are known: reading each once, a fit per fold, the final fit.
    total = len(images) + SHAPE_FOLDS + 1
    readable, errors = readable_images(images, lambda done: ctx.progress(done, total, f"Checking accepted images ({done}/{len(images)})"))
    if len(readable) < SHAPE_MIN_IMAGES:
        raise DomainError(f"Only {len(readable)} accepted images could be read; learning a shape needs at least {SHAPE_MIN_IMAGES}.")
    folds = _held_out_folds(readable, objects, seed=0)
    total = len(images) + len(folds) + 1
    parts: list[dict[str, dict[str, Any]]] = []
    measured = 0
    for number, fold in enumerate(folds, start=1):
        if measured >= MEASURED_OBJECTS:
            break
        ctx.progress(len(images) + number - 1, total, f"Measuring on images it did not learn from (fold {number}/{len(folds)})", force=True)
        held = set(fold)
        try:
            shape = ShapePrior.fit(AcceptedSamples([image for i, image in enumerate(readable) if i not in held]))
        except ShapePriorError:
            continue  # the other images of this fold have no masks to learn from
        part = measure_assists(AcceptedSamples([readable[i] for i in fold]), shape=shape, max_objects=MEASURED_OBJECTS - measured)
        measured += part["box"]["objects"]
        parts.append(part)
    ctx.progress(len(images) + len(folds), total, f"Learning the shape from {len(readable)} images", force=True)
    try:
        shape = ShapePrior.fit(AcceptedSamples(readable))
    except ShapePriorError as exc:
        raise DomainError(f"The shape cannot be learned: {exc}.") from None
    path = project_shape_path(project.pk)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".shape-job-{job.pk}.npz.part")
    shape.save(partial)
    # In one step: a box request reading the file meanwhile reads the old shape or the new one, whole.
    os.replace(partial, path)
    assists = _pooled(parts)
    metrics = {
        "assists": assists, "folds": len(parts), "held_out_images": sum(len(f) for f in folds),
        "evaluated_on": "accepted images it did not learn from (folds by image)" if parts else None,
    }
    ProjectShape.objects.update_or_create(project=project, defaults={
        "images": len(readable), "object_count": shape.objects, "metrics": metrics, "job": job, "fitted_at": timezone.now(),
        "format_version": FORMAT_VERSION,
    })
    ctx.progress(total, total, "Learned the shape", force=True)
    return {"images": len(readable), "objects": shape.objects, "assists": assists, "errors": errors}
