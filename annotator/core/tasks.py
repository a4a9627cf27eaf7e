"""Celery tasks of the core app: periodic housekeeping (thin: call a service, report counts)."""
from __future__ import annotations

from celery import shared_task

from .sweep import orphans_sweep


@shared_task(name="core.sweep_orphans", ignore_result=True)
def sweep_orphans() -> dict[str, object]:
    return orphans_sweep().as_dict()
