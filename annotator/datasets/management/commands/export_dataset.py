"""`manage.py export_dataset`: export a project as a COCO, Pascal VOC or LabelMe zip (kept as a dataset version)."""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotator.core.errors import DomainError
from annotator.datasets.models import DatasetVersion, ExportFormat
from annotator.datasets.services import dataset_export_start
from annotator.jobs.cli import run_job_here
from annotator.projects.models import Project


class Command(BaseCommand):
    help = "Export a project's annotations as a COCO, Pascal VOC or LabelMe zip, also kept as a dataset version."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--project", required=True, help="Project name")
        parser.add_argument("--format", required=True, choices=ExportFormat.values, help="Dataset format")
        parser.add_argument("--out", required=True, help="Where to write the zip")
        parser.add_argument("--status", default="accepted", choices=["accepted", "all"], help="Which images (accepted by default)")
        parser.add_argument("--predictions", action="store_true", help="Add the latest model's predictions (COCO results format)")
        parser.add_argument("--images", action="store_true", help="Put the image files in the zip too")
        parser.add_argument("--labels", default="", help="Comma-separated label names (default: all)")
        parser.add_argument("--name", default="", help="Name of the dataset version (default: project-format-timestamp)")

    def handle(self, *args: Any, **options: Any) -> None:
        project = Project.objects.filter(name=options["project"]).first()
        if project is None:
            raise CommandError(f"No project named {options['project']!r}")
        out = Path(options["out"]).expanduser()
        if out.suffix.lower() != ".zip":
            raise CommandError("--out must name a .zip file")
        params = {
            "format": options["format"], "status": options["status"], "predictions": options["predictions"],
            "include_images": options["images"], "name": options["name"],
            "labels": [n.strip() for n in options["labels"].split(",") if n.strip()] or None,
        }
        try:
            job = dataset_export_start(project=project, params=params, user=None, enqueue=False)
            job = run_job_here(job, stream=self.stdout)
        except DomainError as exc:
            raise CommandError(exc.detail) from None
        if job.state != "succeeded":
            raise CommandError(f"Export failed: {job.error or job.state}")
        version = DatasetVersion.objects.get(pk=job.result["dataset_version"])
        out.parent.mkdir(parents=True, exist_ok=True)
        with version.file.open("rb") as src, open(out, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        counts = version.manifest.get("counts", {})
        self.stdout.write(self.style.SUCCESS(
            f"Exported {counts.get('images', 0)} images, {counts.get('annotations', 0)} annotations"
            + (f", {counts['predictions']} predictions" if "predictions" in counts else "")
            + f" to {out} (dataset version {version.name!r}, sha256 {version.sha256[:12]}…)"
        ))
