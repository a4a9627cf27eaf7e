"""Import formats: each turns a source path into images (and annotations) of a project.

An importer is a function `(project, path, options, ctx) -> result dict`; the import job looks it
up by format name, so adding a format is adding an entry to IMPORTERS. ``options`` may carry
``user`` (who started the import) next to the user's choices (see services.ImportOptions).
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from annotator.core.errors import DomainError
from annotator.images.services import images_add, sources_from_folder, sources_from_zip
from annotator.jobs.services import JobContext
from annotator.projects.models import Project

from .services import ImportOptions, dataset_import

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


def _annotated(fmt: str) -> Importer:
    """COCO / VOC / LabelMe: all or nothing, through services.dataset_import."""

    def run(project: Project, path: Path, options: dict[str, Any], ctx: JobContext | None) -> dict[str, Any]:
        progress = (lambda done, total, message: ctx.progress(done, total, message)) if ctx else None
        return dataset_import(
            project=project, fmt=fmt, path=path, options=ImportOptions.from_dict(options),
            user=options.get("user"), progress=progress,
        )

    run.__doc__ = f"{fmt} dataset (file, folder or zip) with its annotations."
    return run


IMPORTERS: dict[str, Importer] = {
    "images": import_images,
    "coco": _annotated("coco"),
    "voc": _annotated("voc"),
    "labelme": _annotated("labelme"),
}


def importer_for(fmt: str) -> Importer:
    try:
        return IMPORTERS[fmt]
    except KeyError:
        raise DomainError(f"Unknown import format {fmt!r}; known formats: {', '.join(sorted(IMPORTERS))}") from None
