"""Import formats: each turns a source path into images (and annotations) of a project.

An importer is a function `(project, path, options, ctx) -> result dict`; the import job looks it
up by format name, so adding a format is adding an entry to IMPORTERS.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from annotator.core.errors import DomainError
from annotator.images.services import images_add, sources_from_folder, sources_from_zip
from annotator.jobs.services import JobContext
from annotator.projects.models import Project

Importer = Callable[[Project, Path, dict[str, Any], JobContext | None], dict[str, Any]]


def import_images(project: Project, path: Path, options: dict[str, Any], ctx: JobContext | None) -> dict[str, Any]:
    """Bare images from a folder (recursively) or a zip; duplicates already in the project are skipped."""
    if path.is_file() and path.suffix.lower() == ".zip":
        with path.open("rb") as handle:
            return _add(project, sources_from_zip(handle, name=path.name), ctx)
    return _add(project, sources_from_folder(path), ctx)


def _add(project: Project, sources: list, ctx: JobContext | None) -> dict[str, Any]:  # type: ignore[type-arg]
    progress = (lambda done, total: ctx.progress(done, total, "Checking and storing images")) if ctx else None
    return images_add(project=project, sources=sources, progress=progress).as_dict()


IMPORTERS: dict[str, Importer] = {"images": import_images}


def importer_for(fmt: str) -> Importer:
    try:
        return IMPORTERS[fmt]
    except KeyError:
        raise DomainError(f"Unknown import format {fmt!r}; known formats: {', '.join(sorted(IMPORTERS))}") from None
