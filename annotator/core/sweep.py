"""The sweeper: removes stored files no row references and temporary folders nobody finished with.

A process killed in the middle of an import (``kill -9``, the OOM killer, a lost machine) has no
chance to clean up: the image files it stored before its transaction rolled back, and the folder
it unpacked the upload into, stay behind. ``manage.py sweep_orphans`` (and Celery beat, hourly)
removes them once they are older than ``ANNOTATOR_SWEEP_AFTER_HOURS``, so that nothing a running
import is still writing is touched.
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from django.apps import apps
from django.conf import settings
from django.core.files.storage import default_storage
from django.db import models
from django.utils import timezone

from annotator.core.files import tmp_root


@dataclass
class SweepReport:
    """What a sweep removed (or, with ``dry_run``, would remove)."""

    files: list[str] = field(default_factory=list)  # storage names
    folders: list[str] = field(default_factory=list)  # entries of the data dir's tmp/
    bytes: int = 0

    def as_dict(self) -> dict[str, object]:
        return {"files": len(self.files), "folders": len(self.folders), "bytes": self.bytes}


def _referenced_names() -> set[str]:
    """Every stored name a row points at: all file fields of all models, and pending uploads."""
    names: set[str] = set()
    for model in apps.get_models():
        for model_field in model._meta.concrete_fields:
            if isinstance(model_field, models.FileField):
                names.update(
                    name for name in model._default_manager.exclude(**{model_field.name: ""})
                    .values_list(model_field.name, flat=True).iterator(chunk_size=5000) if name
                )
    from annotator.jobs.models import FINISHED_STATES, Job

    # An uploaded dataset waits in storage under the name in its job's params until the job runs.
    for params in Job.objects.exclude(state__in=FINISHED_STATES).values_list("params", flat=True).iterator():
        if isinstance(params, dict) and isinstance(params.get("upload"), str):
            names.add(params["upload"])
    return names


def _stored_files(folder: str = "") -> list[str]:
    """Every file in the default storage under ``folder`` (recursively)."""
    if folder and not default_storage.exists(folder):
        return []
    subfolders, files = default_storage.listdir(folder)
    found = [f"{folder}/{name}" if folder else name for name in files]
    for sub in subfolders:
        found += _stored_files(f"{folder}/{sub}" if folder else sub)
    return found


def _newest_mtime(path: Path) -> float:
    """The newest modification time in a tree: a folder still being written is not stale."""
    newest = path.lstat().st_mtime
    if path.is_dir() and not path.is_symlink():
        for child in path.rglob("*"):
            try:
                newest = max(newest, child.lstat().st_mtime)
            except FileNotFoundError:
                continue
    return newest


def orphans_sweep(*, older_than: timedelta | None = None, dry_run: bool = False) -> SweepReport:
    """Remove stored files that no row references and temporary entries, both older than ``older_than``.

    ``older_than`` defaults to ``ANNOTATOR_SWEEP_AFTER_HOURS``. The references are read before
    the files are listed, so a file stored and committed meanwhile is too young to go.
    """
    age = older_than if older_than is not None else timedelta(hours=settings.ANNOTATOR_SWEEP_AFTER_HOURS)
    cutoff: datetime = timezone.now() - age
    report = SweepReport()
    referenced = _referenced_names()
    for name in _stored_files():
        if name in referenced:
            continue
        try:
            modified = default_storage.get_modified_time(name)
            size = default_storage.size(name)
        except (FileNotFoundError, OSError):
            continue  # removed meanwhile
        if timezone.is_naive(modified):
            modified = timezone.make_aware(modified)
        if modified > cutoff:
            continue
        report.files.append(name)
        report.bytes += size
        if not dry_run:
            default_storage.delete(name)

    for entry in sorted(tmp_root().iterdir()):
        try:
            if datetime.fromtimestamp(_newest_mtime(entry), tz=cutoff.tzinfo) > cutoff:
                continue
        except FileNotFoundError:
            continue
        report.folders.append(entry.name)
        if not dry_run:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
    return report
