"""`manage.py import_dataset`: import a dataset from a folder, file or zip into a (new) project."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotator.core.errors import DomainError
from annotator.datasets.importers import IMPORTERS
from annotator.datasets.services import dataset_import_start
from annotator.jobs.cli import run_job_here
from annotator.projects.models import Project
from annotator.projects.services import project_create


class Command(BaseCommand):
    help = "Import a dataset (bare images, or annotated formats) into a project, creating it if needed."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", help="A folder, an annotation file or a zip archive")
        parser.add_argument("--project", required=True, help="Project name (created when it does not exist)")
        parser.add_argument("--format", default="images", choices=sorted(IMPORTERS), help="Dataset format")
        parser.add_argument("--images", default=None, help="Folder with the image files, when not beside the annotations")
        parser.add_argument("--status", default="new", choices=["new", "accepted"], help="Status of imported annotated images")

    def handle(self, *args: Any, **options: Any) -> None:
        path = Path(options["path"]).expanduser().resolve()
        if not path.exists():
            raise CommandError(f"{path}: no such file or folder")
        project = Project.objects.filter(name=options["project"]).first()
        if project is None:
            project = project_create(name=options["project"], creator=None)
            self.stdout.write(f"Created project {project.name!r}")
        try:
            job = dataset_import_start(
                project=project, fmt=options["format"], user=None, path=path,
                options={"images_dir": options["images"], "status": options["status"]}, enqueue=False,
            )
            job = run_job_here(job, stream=self.stdout)
        except DomainError as exc:
            raise CommandError(exc.detail) from None
        if job.state != "succeeded":
            raise CommandError(f"Import failed: {job.error or job.state}")
        result = job.result
        self.stdout.write(self.style.SUCCESS(
            f"Imported into {project.name!r}: {result.get('created_count', 0)} images"
            + (f", {result['annotation_count']} annotations" if "annotation_count" in result else "")
            + (f", {len(result.get('duplicates', []))} duplicates skipped" if result.get("duplicates") else "")
            + (f", {result['repaired_count']} objects repaired" if result.get("repaired_count") else "")
        ))
        repairs = result.get("repairs") or []
        for line in repairs:
            self.stdout.write(f"  repaired: {line}")
        if result.get("repaired_count", 0) > len(repairs):
            self.stdout.write(f"  … and {result['repaired_count'] - len(repairs)} more repairs")
        for line in result.get("warnings") or []:
            self.stdout.write(self.style.WARNING(f"  warning: {line}"))
