"""Job handlers of the learning app: pre-annotation, training and evaluation, all on the ML queue."""
from __future__ import annotations

from typing import Any

from annotator.jobs.models import Job, JobKind
from annotator.jobs.registry import ML_QUEUE, job_handler
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
