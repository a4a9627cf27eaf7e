"""Job handlers of the datasets app: imports and exports (thin: load, call a service, report)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.files.storage import default_storage

from annotator.core.errors import DomainError
from annotator.core.files import temp_folder
from annotator.jobs.models import Job, JobKind
from annotator.jobs.registry import job_handler
from annotator.jobs.services import JobContext

from .importers import import_chunk_run, importer_for
from .services import ExportOptions, dataset_export, upload_fetch


@job_handler(JobKind.IMPORT)
def run_import(job: Job, ctx: JobContext) -> dict[str, Any]:
    """params: format, and either path (a file or folder on the worker) or upload (a stored file)."""
    params = job.params
    if job.project is None:
        raise DomainError("An import needs a target project.")
    importer = importer_for(params.get("format", "images"))
    options = {**params.get("options", {}), "user": job.created_by}
    upload = params.get("upload")
    if upload:
        # Uploaded through the API: the file lives in storage, which may be on another machine.
        # Names of folders on the worker's machine are for the command line, never for an upload.
        options.pop("images_dir", None)
        try:
            with temp_folder("upload") as folder:
                path = upload_fetch(upload, folder)
                return importer(job.project, path, options, ctx)
        finally:
            default_storage.delete(upload)
    path = Path(params["path"])
    if not path.exists():
        raise DomainError(f"{path}: no such file or folder (on the worker's machine)")
    return importer(job.project, path, options, ctx)


@job_handler(JobKind.IMPORT_CHUNK)
def run_import_chunk(job: Job, ctx: JobContext) -> dict[str, Any]:
    """params: import_job, project, upload, filename and spec (the images of one chunk of an import)."""
    return import_chunk_run(job, ctx)


@job_handler(JobKind.EXPORT)
def run_export(job: Job, ctx: JobContext) -> dict[str, Any]:
    """params: the ExportOptions fields and an optional name of the dataset version."""
    if job.project is None:
        raise DomainError("An export needs a project.")
    options = ExportOptions.from_dict(job.params)
    version = dataset_export(
        project=job.project, options=options, name=job.params.get("name"), user=job.created_by, job=job,
        progress=lambda done, total, message: ctx.progress(done, total, message),
    )
    # The job's download and the dataset version are the same stored zip.
    job.result_file.name = version.file.name
    return {
        "dataset_version": version.pk,
        "name": version.name,
        "sha256": version.sha256,
        "size": version.size,
        **version.manifest.get("counts", {}),
    }
