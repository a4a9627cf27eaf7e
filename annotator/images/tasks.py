"""Celery tasks of the images app: periodic housekeeping (thin: call a service)."""
from __future__ import annotations

from celery import shared_task

from .services import image_counts_compact


@shared_task(name="images.compact_counts", ignore_result=True)
def compact_counts() -> int:
    return image_counts_compact()
