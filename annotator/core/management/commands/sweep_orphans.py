"""`manage.py sweep_orphans`: remove stored files no row references and stale temporary folders."""
from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from annotator.core.sweep import orphans_sweep


class Command(BaseCommand):
    help = "Remove media files that no row references and temporary folders left by killed processes."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--older-than-hours", type=float, default=float(settings.ANNOTATOR_SWEEP_AFTER_HOURS),
            help="Leave younger files alone: they may belong to an import still running (default: %(default)s)",
        )
        parser.add_argument("--dry-run", action="store_true", help="List what would go, remove nothing")

    def handle(self, *args: Any, **options: Any) -> None:
        report = orphans_sweep(older_than=timedelta(hours=options["older_than_hours"]), dry_run=options["dry_run"])
        for name in report.files:
            self.stdout.write(f"file   {name}")
        for name in report.folders:
            self.stdout.write(f"tmp    {name}")
        verb = "Would remove" if options["dry_run"] else "Removed"
        self.stdout.write(self.style.SUCCESS(
            f"{verb} {len(report.files)} orphaned files ({report.bytes:,} bytes) and {len(report.folders)} temporary entries"
        ))
