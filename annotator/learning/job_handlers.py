"""Job handlers of the learning app: pre-annotation, training and evaluation on the ML queue; shape learning
(no torch) on the default queue."""
from __future__ import annotations

from typing import Any

from annotator.jobs.models import Job, JobKind
from annotator.jobs.registry import DEFAULT_QUEUE, ML_QUEUE, job_handler
from annotator.jobs.services import JobContext

from . import services


@job_handler(JobKind.PREANNOTATE, queue=ML_QUEUE)
def run_preannotate(job: Job, ctx: JobContext) -> dict[str, Any]:
    return services.preannotate(job=job, ctx=ctx)


@job_handler(JobKind.TRAIN, queue=ML_QUEUE)
def run_train(job: Job, ctx: JobContext) -> dict[str, Any]:
    return services.model_train(job=job, ctx=ctx)


@job_handler(JobKind.EVALUATE, queue=ML_QUEUE)
def run_evaluate(job: Job, ctx: JobContext) -> dict[str, Any]:
    return services.model_evaluate(job=job, ctx=ctx)


@job_handler(JobKind.LEARN_SHAPE, queue=DEFAULT_QUEUE)
def run_learn_shape(job: Job, ctx: JobContext) -> dict[str, Any]:
    return services.project_shape_learn(job=job, ctx=ctx)
