"""Import formats: each turns a source path into images (and annotations) of a project.

An importer is a function `(project, path, options, ctx) -> result dict`; the import job looks it
up by format name, so adding a format is adding an entry to IMPORTERS. ``options`` may carry
``user`` (who started the import) next to the user's choices (see services.ImportOptions).
"""
from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.core.files.storage import default_storage

from annotator.core.errors import DomainError
from annotator.core.files import domain_error, zip_open
from annotator.images.imaging import image_size_check
from annotator.images.services import files_delete, images_add, sources_from_folder, sources_from_zip
from annotator.jobs.models import FINISHED_STATES, Job, JobKind, JobState
from annotator.jobs.registry import Handler, handler_for
from annotator.jobs.services import BrokerUnavailable, JobContext, job_enqueue, job_execute, job_start
from annotator.projects.models import Project
from ml.formats import FormatError

from .imports import ChunkImage, ImageReader, chunks_run_here, import_chunk
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
        upload = ctx.job.params.get("upload") if ctx else None
        return dataset_import(
            project=project, fmt=fmt, path=path, options=ImportOptions.from_dict(options),
            user=options.get("user"), progress=progress,
            run_chunks=ChunksOnWorkers(ctx, upload=upload) if ctx and upload else chunks_run_here,
        )

    run.__doc__ = f"{fmt} dataset (file, folder or zip) with its annotations."
    return run


class ChunksOnWorkers:
    """Runs an import's chunks as jobs (IMPORT_CHUNK) that any free worker process takes, while
    this one works through them too: with one worker process it runs them all itself, with more
    they share them. Only for an upload (in storage, which every worker reads); the chunks write
    no rows, so the import stays all or nothing (see docs/imports.md).

    A chunk this process runs itself is claimed like any job (so that no other worker runs it
    too) but runs on what this process holds: the extracted files, the chunk's spec, its result
    kept in memory. Only chunks that other workers ran travel back through the job table.
    """

    POLL_SECONDS = 0.2

    def __init__(self, ctx: JobContext, *, upload: str) -> None:
        self.ctx, self.upload = ctx, upload

    def __call__(self, project: Project, specs: list[dict[str, Any]], read: ImageReader,
                 progress: Callable[[int], None]) -> list[ChunkImage]:
        if len(specs) < 2 or any(image["member"] is None for spec in specs for image in spec["images"]):
            return chunks_run_here(project, specs, read, progress)  # one chunk, or pixels only this process has
        parent = self.ctx.job
        jobs = [job_start(kind=JobKind.IMPORT_CHUNK, project=None, user=parent.created_by, enqueue=False,
                          params={"import_job": parent.pk, "project": project.pk, "upload": self.upload,
                                  "filename": parent.params.get("filename") or "upload.zip", "spec": spec})
                for spec in specs]
        ids = [job.pk for job in jobs]
        queue = handler_for(JobKind.IMPORT_CHUNK).queue
        for job in jobs:
            try:
                job_enqueue(job=job, queue=queue)
            except BrokerUnavailable:
                pass  # this process runs what nobody else takes
        here: dict[int, list[ChunkImage]] = {}  # the chunks this process ran, by job
        others: dict[int, list[ChunkImage]] = {}
        try:
            failed = self._wait(project, dict(zip(ids, specs)), read, here, progress)
            ran_elsewhere = [pk for pk in ids if pk not in here]
            for job in Job.objects.filter(pk__in=ran_elsewhere, state=JobState.SUCCEEDED).only("pk", "result"):
                others[job.pk] = [ChunkImage.from_json(image) for image in job.result["images"]]
            if failed is not None:
                raise DomainError(failed.error or "An import chunk was cancelled.")
            return [image for pk in ids for image in (here[pk] if pk in here else others[pk])]
        except BaseException:
            files_delete([name for done in (*here.values(), *others.values()) for image in done for name in image.written])
            raise
        finally:
            Job.objects.filter(pk__in=ids).update(cancel_requested=True)
            # Only the ids: deleting loads the rows (other tables' links are set to null), not their JSON.
            Job.objects.filter(pk__in=ids).only("pk").delete()

    def _wait(self, project: Project, specs: dict[int, dict[str, Any]], read: ImageReader,
              here: dict[int, list[ChunkImage]], progress: Callable[[int], None]) -> Job | None:
        """Run the chunks nobody has taken (or whose worker died) here, wait for the others; the
        first chunk that failed, once none is running any more (its files are its own to remove).
        What the chunks run here made goes into ``here``."""
        failed: Job | None = None
        ids = list(specs)
        while True:
            for pk in ids:
                if failed is None and pk not in here:
                    # Skips the finished, and those another worker runs.
                    job_execute(job_id=pk, handler=self._here(project, specs[pk], read, here))
                self.ctx.check_cancelled()
            # Not their parameters and results (megabytes of geometry each), only where they stand.
            jobs = list(Job.objects.filter(pk__in=ids).order_by("pk").only("pk", "state", "progress_done", "error"))
            failed = failed or next((job for job in jobs if job.state in (JobState.FAILED, JobState.CANCELLED)), None)
            if failed is not None:
                Job.objects.filter(pk__in=ids, state__in=[JobState.QUEUED, JobState.RUNNING]).update(cancel_requested=True)
                Job.objects.filter(pk__in=ids, state=JobState.QUEUED).update(state=JobState.CANCELLED)
            progress(sum(job.progress_done for job in jobs))
            if all(job.state in FINISHED_STATES for job in jobs):
                return failed
            time.sleep(self.POLL_SECONDS)

    @staticmethod
    def _here(project: Project, spec: dict[str, Any], read: ImageReader, here: dict[int, list[ChunkImage]]) -> Handler:
        """The chunk job's work in this process, on the extracted files; its images kept in ``here``."""

        def run(job: Job, ctx: JobContext) -> dict[str, Any]:
            total = len(spec["images"])
            here[job.pk] = import_chunk(project=project, spec=spec, read=read,
                                        progress=lambda done: ctx.progress(done, total, "Checking and storing images"))
            return {"summary": f"{total} images, kept by the import job"}

        return run


def import_chunk_run(job: Job, ctx: JobContext) -> dict[str, Any]:
    """An IMPORT_CHUNK job: its images read from the upload's zip in storage (never extracted)."""
    params = job.params
    project = Project.objects.get(pk=params["project"])
    spec = params["spec"]
    members_of = {image["position"]: (image["name"], image["member"]) for image in spec["images"]}
    total = len(spec["images"])
    with default_storage.open(params["upload"], "rb") as handle:
        archive = zip_open(handle, name=params["filename"])
        members = {member.path.as_posix(): member for member in archive.members}

        def read(position: int) -> bytes | None:
            name, path = members_of[position]
            member = members.get(path)
            if member is None:
                return None
            image_size_check(name, member.size)
            try:
                return archive.read(member)
            except FormatError as exc:
                raise domain_error(exc) from None

        images = import_chunk(project=project, spec=spec, read=read,
                              progress=lambda done: ctx.progress(done, total, "Checking and storing images"))
    return {"images": [image.as_json() for image in images]}


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
