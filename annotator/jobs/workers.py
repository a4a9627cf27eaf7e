"""Worker heartbeats: each running Celery worker keeps a row fresh, so /readyz can tell whether any is alive.

A thread in the worker's main process (not its pool processes, which come and go) refreshes the
row every ANNOTATOR_WORKER_HEARTBEAT_SECONDS; a clean shutdown deletes it, a killed worker's row
just goes stale.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
from datetime import datetime, timedelta

from django.conf import settings
from django.db import close_old_connections, connection
from django.utils import timezone

from .models import WorkerHeartbeat

log = logging.getLogger(__name__)

_stop = threading.Event()


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def worker_beat(*, name: str, queues: str = "", started_at: datetime | None = None) -> None:
    now = timezone.now()
    WorkerHeartbeat.objects.update_or_create(
        name=name, defaults={"seen_at": now, "queues": queues[:500]}, create_defaults={
            "seen_at": now, "queues": queues[:500], "started_at": started_at or now,
        },
    )


def workers_alive(*, now: datetime | None = None) -> list[WorkerHeartbeat]:
    """Workers seen within three heartbeat periods; rows older than a day are dropped on the way."""
    now = now or timezone.now()
    WorkerHeartbeat.objects.filter(seen_at__lt=now - timedelta(days=1)).delete()
    cutoff = now - timedelta(seconds=3 * settings.ANNOTATOR_WORKER_HEARTBEAT_SECONDS)
    return list(WorkerHeartbeat.objects.filter(seen_at__gte=cutoff).order_by("-seen_at"))


def start_heartbeat(*, queues: str) -> None:
    """Called when the worker is ready (celery's worker_ready signal)."""
    name, started = worker_name(), timezone.now()
    _stop.clear()

    def run() -> None:
        try:
            while True:
                try:
                    close_old_connections()
                    worker_beat(name=name, queues=queues, started_at=started)
                except Exception:  # noqa: BLE001 - a database hiccup must not stop the beats
                    log.warning("worker heartbeat failed", exc_info=True)
                if _stop.wait(settings.ANNOTATOR_WORKER_HEARTBEAT_SECONDS):
                    break
        finally:
            connection.close()

    threading.Thread(target=run, daemon=True, name="worker-heartbeat").start()


def stop_heartbeat() -> None:
    """Called when the worker shuts down (celery's worker_shutdown signal)."""
    _stop.set()
    try:
        WorkerHeartbeat.objects.filter(name=worker_name()).delete()
    except Exception:  # noqa: BLE001 - shutting down anyway; the row goes stale
        log.warning("could not remove the worker heartbeat", exc_info=True)
