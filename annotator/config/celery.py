"""Celery settings: Redis when REDIS_URL is set, otherwise kombu's filesystem transport under the data dir.

The filesystem broker lets `make run` start a real, separate worker process on a machine without
Redis: web and worker exchange messages through files in a shared folder.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any


def celery_settings(*, redis_url: str | None, data_dir: Path, queue_prefix: str) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "CELERY_TASK_ACKS_LATE": True,
        # A pool process killed mid-task (OOM, kill -9) puts the message back instead of losing it.
        "CELERY_TASK_REJECT_ON_WORKER_LOST": True,
        "CELERY_WORKER_PREFETCH_MULTIPLIER": 1,
        "CELERY_TASK_IGNORE_RESULT": True,
        "CELERY_TASK_DEFAULT_QUEUE": f"{queue_prefix}default",
        "CELERY_TASK_SERIALIZER": "json",
        "CELERY_ACCEPT_CONTENT": ["json"],
        "CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP": True,
        "CELERY_WORKER_HIJACK_ROOT_LOGGER": False,
        "CELERY_BEAT_SCHEDULE": {
            "reap-stale-jobs": {"task": "jobs.reap_stale", "schedule": 60.0},
            # Files and temporary folders that a killed import left behind (older than a day).
            "sweep-orphans": {"task": "core.sweep_orphans", "schedule": 3600.0},
            # The image counts' appended +1/-1 rows, folded back to one per status and person.
            "compact-image-counts": {"task": "images.compact_counts", "schedule": 60.0},
            # Scheduled project backups that are due (each schedule says how often and how many to keep).
            "scheduled-backups": {"task": "backups.start_due", "schedule": 300.0},
        },
    }
    if redis_url:
        settings["CELERY_BROKER_URL"] = redis_url
        # Unacknowledged messages of a worker that died are redelivered after this long.
        # A broker that does not answer fails a publish in seconds (a 503), not after the OS's timeout.
        settings["CELERY_BROKER_TRANSPORT_OPTIONS"] = {"visibility_timeout": 3600, "socket_connect_timeout": 5}
    else:
        folder = data_dir / "broker"
        for sub in ("queue", "processed", "control"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        settings["CELERY_BROKER_URL"] = "filesystem://"
        settings["CELERY_BROKER_TRANSPORT_OPTIONS"] = {
            "data_folder_in": str(folder / "queue"),
            "data_folder_out": str(folder / "queue"),
            "processed_folder": str(folder / "processed"),
            "store_processed": False,
            "control_folder": str(folder / "control"),
        }
    return settings
