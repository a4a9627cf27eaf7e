"""Job handlers of the datasets app: imports (and, later, exports)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from annotator.core.errors import DomainError
from annotator.jobs.models import Job, JobKind
from annotator.jobs.registry import job_handler
from annotator.jobs.services import JobContext

from .importers import importer_for


@job_handler(JobKind.IMPORT)
def run_import(job: Job, ctx: JobContext) -> dict[str, Any]:
    params = job.params
    path = Path(params["path"])
    if not path.exists():
        raise DomainError(f"{path}: no such file or folder (on the worker's machine)")
    if job.project is None:
        raise DomainError("An import needs a target project.")
    return importer_for(params.get("format", "images"))(job.project, path, params.get("options", {}), ctx)
