"""`manage.py restore_project`: restore a project archive as a new project (on this or another server)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotator.backups.services import RestoreOptions, parse_user_map, restore_start
from annotator.core.errors import DomainError
from annotator.jobs.cli import run_job_here, wait_for_job
from annotator.jobs.models import JobState


class Command(BaseCommand):
    help = "Restore a project archive as a new project: everything is checked first; a failure creates nothing."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="The archive (.zip) written by backup_project or downloaded from the Backups page")
        parser.add_argument("--name", default="", help="Name of the new project (default: the archived project's name)")
        parser.add_argument("--map-users", default="", help="Archive users onto users of this server: old=new,old2=new2")
        parser.add_argument("--create-users", action="store_true", help="Create the archive's unknown users, inactive (no password)")
        parser.add_argument("--on-worker", action="store_true",
                            help="Run the job on a worker (and wait); the file must be readable there at the same path")

    def handle(self, *args: Any, **options: Any) -> None:
        path = Path(options["file"]).expanduser().resolve()
        if not path.is_file():
            raise CommandError(f"{path}: no such file")
        try:
            restore_options = RestoreOptions(
                name=options["name"].strip() or None, map_users=parse_user_map(options["map_users"]),
                create_users=options["create_users"],
            )
            job = restore_start(options=restore_options, user=None, path=str(path), filename=path.name,
                                enqueue=options["on_worker"])
        except DomainError as exc:
            raise CommandError(exc.detail) from None
        job = wait_for_job(job, stream=self.stdout) if options["on_worker"] else run_job_here(job, stream=self.stdout)
        if job.state != JobState.SUCCEEDED:
            raise CommandError(f"Restore failed: {job.error or job.state}")
        result = job.result
        counts = result.get("counts", {})
        self.stdout.write(self.style.SUCCESS(
            f"Restored {result['name']!r} (project {result['project']}): {counts.get('images', 0)} images, "
            f"{counts.get('annotations', 0)} annotations, {counts.get('revisions', 0)} revisions"
        ))
        if result.get("users_created"):
            self.stdout.write(f"  users created (inactive): {', '.join(result['users_created'])}")
        for old, new in (result.get("users_mapped") or {}).items():
            self.stdout.write(f"  user {old} → {new}")
        for line in result.get("warnings") or []:
            self.stdout.write(self.style.WARNING(f"  warning: {line}"))
