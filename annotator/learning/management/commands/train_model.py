"""`manage.py train_model`: train a model version on a project's accepted images."""
from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotator.core.errors import DomainError
from annotator.learning.params import TrainParams
from annotator.learning.services import train_start

from ._jobs import follow, project_named


class Command(BaseCommand):
    help = "Train a model on a project's accepted images (a job on the ML queue)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--project", required=True, help="Project name")
        parser.add_argument("--epochs", type=int, default=None, help="Default: 12 on a CPU worker, 20 on a GPU worker")
        parser.add_argument("--held-out", type=float, default=0.2, help="Share of the accepted images kept for evaluation")
        parser.add_argument("--arch", default=None, help="small (CPU default), maskrcnn_resnet50_fpn (GPU default) or maskrcnn_resnet50_fpn_v2")
        parser.add_argument("--wait", action="store_true", help="Block until the job ends, showing progress; exit 1 if it failed")
        parser.add_argument("--here", action="store_true", help="Run the job in this process instead of on a worker (implies --wait)")

    def handle(self, *args: Any, **options: Any) -> None:
        project = project_named(options["project"])
        try:
            params = TrainParams(epochs=options["epochs"], held_out=options["held_out"], arch=options["arch"])
            job = train_start(project=project, user=None, params=params, enqueue=not options["here"])
        except DomainError as exc:
            raise CommandError(exc.detail) from None
        if not (options["wait"] or options["here"]):
            self.stdout.write(f"Started training job #{job.pk} (follow it with --wait, on the project's Models page, or GET /api/jobs/{job.pk}/)")
            return
        job = follow(job, here=options["here"], stream=self.stdout)
        metrics = job.result.get("metrics", {})
        ap = metrics.get("mask_AP")
        self.stdout.write(self.style.SUCCESS(
            f"Model version #{job.result['model_version']} trained on {metrics.get('train_images')} images; "
            + (f"mask AP {ap:.3f} on {metrics.get('held_out_images')} held-out images" if ap is not None else "no held-out evaluation")
            + (" (now the active model)" if job.result.get("activated") else "")
        ))
