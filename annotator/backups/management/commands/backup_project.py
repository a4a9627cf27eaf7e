"""`manage.py backup_project`: write a project's full archive (rows, image files, optionally model weights) to a file."""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotator.backups.models import ProjectBackup
from annotator.backups.services import BackupOptions, backup_start
from annotator.core.errors import DomainError
from annotator.jobs.cli import run_job_here, wait_for_job
from annotator.jobs.models import JobState
from annotator.projects.models import Project


class Command(BaseCommand):
    help = "Back up a whole project into one archive (kept in storage as a backup, and copied to --out)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--project", required=True, help="Project name")
        parser.add_argument("--out", required=True, help="Where to write the archive (.zip)")
        parser.add_argument("--no-images", action="store_true", help="Leave the image files out (restores only where they are stored)")
        parser.add_argument("--with-models", action="store_true", help="Put the model weights in the archive too")
        parser.add_argument("--with-datasets", action="store_true", help="Put the zips of the dataset versions in the archive too")
        parser.add_argument("--on-worker", action="store_true", help="Run the job on a worker (and wait for it) instead of in this process")

    def handle(self, *args: Any, **options: Any) -> None:
        project = Project.objects.filter(name=options["project"]).first()
        if project is None:
            raise CommandError(f"No project named {options['project']!r}")
        out = Path(options["out"]).expanduser()
        if out.suffix.lower() != ".zip":
            raise CommandError("--out must name a .zip file")
        backup_options = BackupOptions(images=not options["no_images"], models=options["with_models"], datasets=options["with_datasets"])
        try:
            job = backup_start(project=project, options=backup_options, user=None, enqueue=options["on_worker"])
        except DomainError as exc:
            raise CommandError(exc.detail) from None
        job = wait_for_job(job, stream=self.stdout) if options["on_worker"] else run_job_here(job, stream=self.stdout)
        if job.state != JobState.SUCCEEDED:
            raise CommandError(f"Backup failed: {job.error or job.state}")
        backup = ProjectBackup.objects.get(pk=job.result["backup"])
        out.parent.mkdir(parents=True, exist_ok=True)
        with backup.file.open("rb") as src, open(out, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        counts = backup.counts
        self.stdout.write(self.style.SUCCESS(
            f"Backed up {project.name!r}: {counts.get('images', 0)} images, {counts.get('annotations', 0)} annotations, "
            f"{counts.get('revisions', 0)} revisions to {out} ({backup.size:,} bytes, sha256 {backup.sha256})"
        ))
        for line in backup.warnings:
            self.stdout.write(self.style.WARNING(f"  warning: {line}"))
