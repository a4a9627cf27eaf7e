"""Job handlers of the projects app: deleting a project (thin: call the service, report)."""
from __future__ import annotations

from typing import Any

from annotator.jobs.models import Job, JobKind
from annotator.jobs.registry import job_handler
from annotator.jobs.services import JobContext

from .services import project_delete


@job_handler(JobKind.DELETE_PROJECT)
def run_project_delete(job: Job, ctx: JobContext) -> dict[str, Any]:
    """params: project (id) and name. Not cancellable half-way: a started delete is finished by its retries."""

    def progress(done: int, total: int, message: str) -> None:
        try:
            ctx.progress(done, total, message)
        except Exception:  # noqa: BLE001 - JobCancelled included: a half-deleted project is no use to anyone
            pass

    return project_delete(project_id=int(job.params["project"]), job_id=job.pk, progress=progress)
