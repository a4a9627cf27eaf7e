"""Celery tasks of the backups app: the beat entry that starts scheduled backups (thin: call the service)."""
from __future__ import annotations

from celery import shared_task

from .services import backups_start_due


@shared_task(name="backups.start_due", ignore_result=True)
def start_due() -> list[int]:
    return backups_start_due()
