"""Writes of the datasets app: starting import and export jobs, uploads, dataset versions.

The import machinery lives in ``imports.py`` and the export machinery in ``exports.py``; this
module is the app's service API (what views, commands and tests call), so both are re-exported.
"""
from __future__ import annotations

import hashlib
import shutil
from pathlib import Path, PurePosixPath
from typing import IO, Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from annotator.core.errors import DomainError, Forbidden
from annotator.jobs.models import Job, JobKind
from annotator.jobs.services import job_start
from annotator.projects.models import Project

from .exports import (  # noqa: F401 - the app's service API
    EXPORT_CHUNK,
    ExportOptions,
    _suffix,
    dataset_export,
    dataset_version_delete,
    export_write,
)
from .imports import (  # noqa: F401 - the app's service API
    IMPORT_FORMATS,
    IMPORT_STATUSES,
    REPORT_LIMIT,
    ImportOptions,
    dataset_import,
    dataset_read,
)
from .models import DatasetVersion


def upload_store(file: IO[bytes], *, name: str) -> str:
    """Keep an uploaded dataset in storage until the import job (maybe on another machine) reads it."""
    suffix = _suffix(name) if _suffix(name) in (".zip", ".json") else ".zip"
    return default_storage.save(f"imports/{timezone.now():%Y%m%d}/{hashlib.sha256(name.encode()).hexdigest()[:8]}{suffix}", File(file))


def upload_fetch(storage_name: str, dest_dir: Path) -> Path:
    """Copy a stored upload to a local file (storage may be remote) and return its path."""
    target = dest_dir / PurePosixPath(storage_name).name
    with default_storage.open(storage_name, "rb") as src, open(target, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
    return target



# --------------------------------------------------------------------------------------------
# Starting the jobs (one path for the API, the pages and the commands)
# --------------------------------------------------------------------------------------------


def _refuse_read_only(project: Project) -> None:
    from annotator.core.access import ARCHIVED_REASON, DELETING_REASON

    if project.delete_requested_at is not None:
        raise Forbidden(DELETING_REASON)
    if project.archived_at is not None:
        raise Forbidden(ARCHIVED_REASON)


def dataset_import_start(
    *,
    project: Project,
    fmt: str,
    user: AbstractBaseUser | None,
    options: dict[str, Any],
    path: Path | None = None,
    upload: str | None = None,
    filename: str = "",
    enqueue: bool = True,
) -> Job:
    """Check the options and start an import job: of a file or folder on the worker's machine
    (commands), or of an upload kept in storage (API, pages), which is removed if the job cannot start."""
    from .importers import IMPORTERS

    try:
        if fmt not in IMPORTERS:
            raise DomainError(f"Unknown dataset format {fmt!r}; use one of {', '.join(sorted(IMPORTERS))}")
        _refuse_read_only(project)
        ImportOptions.from_dict(options)  # refuse bad options now, not in the worker
        params: dict[str, Any] = {"format": fmt, "options": options}
        if upload is not None:
            params.update(upload=upload, filename=filename)
        elif path is not None:
            params["path"] = str(path)
        else:
            raise DomainError("Nothing to import: give a file, a folder or an upload.")
        with transaction.atomic():
            return job_start(kind=JobKind.IMPORT, project=project, params=params, user=user, enqueue=enqueue)
    except BaseException:
        if upload is not None:
            default_storage.delete(upload)
        raise


def dataset_export_start(*, project: Project, params: dict[str, Any], user: AbstractBaseUser | None, enqueue: bool = True) -> Job:
    """Check an export's options (ExportOptions fields and an optional version name) and start its job.

    An archived project can be exported: an export changes nothing in it.
    """
    from annotator.core.access import DELETING_REASON

    if project.delete_requested_at is not None:
        raise Forbidden(DELETING_REASON)
    ExportOptions.from_dict(params)
    name = (params.get("name") or "").strip()
    if name and DatasetVersion.objects.filter(project=project, name=name).exists():
        raise DomainError(f"A dataset version named {name!r} already exists in this project.")
    with transaction.atomic():
        return job_start(kind=JobKind.EXPORT, project=project, params={**params, "name": name}, user=user, enqueue=enqueue)
