"""`manage.py preannotate`: run a model over a project's images (those without annotations by default)."""
from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotator.core.errors import DomainError
from annotator.learning.params import PreannotateParams
from annotator.learning.services import preannotate_start
from ml.nms import DEFAULT_NMS_IOU

from ._jobs import follow, project_named


class Command(BaseCommand):
    help = "Pre-annotate a project's images with a model (a job on the ML queue)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--project", required=True, help="Project name")
        parser.add_argument("--model", default="active", help='"active" (default), "coco", a model version id, or a checkpoint path')
        parser.add_argument("--threshold", type=float, default=0.5, help="Keep proposals scoring at least this (default 0.5)")
        parser.add_argument("--all", action="store_true", help="All images, not only those without annotations")
        parser.add_argument("--label-map", default=None, help='JSON {"model class": "project label"}')
        parser.add_argument("--batch-size", type=int, default=4)
        parser.add_argument("--nms-iou", type=float, default=DEFAULT_NMS_IOU,
                            help=f"Proposals of one label overlapping more than this (mask IoU) are one object (default {DEFAULT_NMS_IOU}; 1 keeps all)")
        parser.add_argument("--wait", action="store_true", help="Block until the job ends, showing progress; exit 1 if it failed")
        parser.add_argument("--here", action="store_true", help="Run the job in this process instead of on a worker (implies --wait)")

    def handle(self, *args: Any, **options: Any) -> None:
        project = project_named(options["project"])
        try:
            label_map = json.loads(options["label_map"]) if options["label_map"] else None
        except json.JSONDecodeError as exc:
            raise CommandError(f"--label-map is not valid JSON: {exc}") from None
        try:
            params = PreannotateParams(
                model=options["model"], threshold=options["threshold"], scope="all" if options["all"] else "unannotated",
                label_map=label_map, batch_size=options["batch_size"], nms_iou=options["nms_iou"],
            )
            job = preannotate_start(project=project, user=None, params=params, allow_any_path=True, enqueue=not options["here"])
        except DomainError as exc:
            raise CommandError(exc.detail) from None
        if not (options["wait"] or options["here"]):
            self.stdout.write(f"Started pre-annotation job #{job.pk} (follow it with --wait, on the project's Models page, or GET /api/jobs/{job.pk}/)")
            return
        job = follow(job, here=options["here"], stream=self.stdout)
        result = job.result
        self.stdout.write(self.style.SUCCESS(
            f"{result['predictions']} proposals on {result['predicted_images']} of {result['images']} images"
            + (f" ({result['suppressed']} duplicates suppressed)" if result.get("suppressed") else "")
        ))
        for error in result.get("errors", []):
            self.stderr.write(f"  {error['file']}: {error['reason']}")
