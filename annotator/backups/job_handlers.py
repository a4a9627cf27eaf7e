"""Job handlers of the backups app: backup, restore, duplicate (thin: load, call a service, report)."""
from __future__ import annotations

from typing import Any

from annotator.core.errors import DomainError
from annotator.jobs.models import Job, JobKind
from annotator.jobs.registry import job_handler
from annotator.jobs.services import JobContext

from .services import BackupOptions, backup_create, backups_prune, project_duplicate, restore_run


@job_handler(JobKind.BACKUP)
def run_backup(job: Job, ctx: JobContext) -> dict[str, Any]:
    """params: options (images, models, datasets), scheduled."""
    if job.project is None:
        raise DomainError("A backup needs a project.")
    scheduled = bool(job.params.get("scheduled"))
    backup = backup_create(
        project=job.project, options=BackupOptions.from_dict(job.params.get("options") or {}), user=job.created_by, job=job,
        scheduled=scheduled, progress=ctx.progress,
    )
    pruned = backups_prune(project=job.project) if scheduled else []
    return {"backup": backup.pk, "sha256": backup.sha256, "size": backup.size, "counts": backup.counts,
            "warnings": backup.warnings, "pruned": pruned}


@job_handler(JobKind.RESTORE)
def run_restore(job: Job, ctx: JobContext) -> dict[str, Any]:
    """params: options (name, map_users, create_users) and one of upload (stored), backup (id), path (worker's disk)."""
    return restore_run(job=job, progress=ctx.progress)


@job_handler(JobKind.DUPLICATE)
def run_duplicate(job: Job, ctx: JobContext) -> dict[str, Any]:
    """params: name of the copy."""
    if job.project is None:
        raise DomainError("A duplication needs a project.")
    result = project_duplicate(project=job.project, name=job.params["name"], user=job.created_by, job=job, progress=ctx.progress)
    return result.as_dict()
