"""Health checks for load balancers and docker compose: liveness (/healthz) and readiness (/readyz).

/healthz answers as long as the process serves requests; it checks nothing else, so a database
or broker outage does not get healthy web processes restarted. /readyz reports each dependency
on its own: database, broker, storage and the workers' heartbeats. It answers 503 when the
database or the storage fails (nothing can be served); a broker that is down or no live worker
leave it at 200 with status "degraded": annotating still works, only background jobs do not
(and starting one is a 503 then, see jobs.services).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.files.storage import FileSystemStorage, default_storage
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.utils import timezone

# A broker that does not answer within this long counts as down.
BROKER_TIMEOUT_SECONDS = 3.0


def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def readyz(request: HttpRequest) -> JsonResponse:
    checks = {"database": _database(), "broker": _broker(), "storage": _storage(), "workers": _workers()}
    fatal = not (checks["database"]["ok"] and checks["storage"]["ok"])
    degraded = not all(check["ok"] for check in checks.values())
    status = "error" if fatal else "degraded" if degraded else "ok"
    return JsonResponse({"status": status, **checks}, status=503 if fatal else 200)


def _failed(exc: BaseException) -> dict[str, Any]:
    return {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:500]}


def _database() -> dict[str, Any]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:  # noqa: BLE001 - any failure is reported, not raised
        return _failed(exc)
    return {"ok": True, "vendor": connection.vendor}


def _broker() -> dict[str, Any]:
    from annotator.celery import app

    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, timeout=BROKER_TIMEOUT_SECONDS)
            transport = conn.transport_cls
    except Exception as exc:  # noqa: BLE001
        return _failed(exc)
    return {"ok": True, "transport": str(transport)}


def _storage() -> dict[str, Any]:
    try:
        if isinstance(default_storage, FileSystemStorage):
            # The folder is made on the first upload: until then its nearest existing parent counts.
            location = Path(default_storage.location)
            existing = next(folder for folder in (location, *location.parents) if folder.exists())
            if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
                return {"ok": False, "error": f"{location} is not a writable folder"}
        else:
            default_storage.exists(".readyz")  # one round trip to the bucket
    except Exception as exc:  # noqa: BLE001
        return _failed(exc)
    return {"ok": True, "backend": type(default_storage).__name__}


def _workers() -> dict[str, Any]:
    from annotator.jobs.workers import workers_alive

    try:
        alive = workers_alive()
    except Exception as exc:  # noqa: BLE001
        return _failed(exc)
    now = timezone.now()
    result: dict[str, Any] = {
        "ok": bool(alive),
        "alive": len(alive),
        "last_seen_seconds": round((now - alive[0].seen_at).total_seconds(), 1) if alive else None,
        "names": [worker.name for worker in alive[:20]],
    }
    if not alive:
        result["error"] = (
            f"no worker heartbeat in the last {3 * settings.ANNOTATOR_WORKER_HEARTBEAT_SECONDS} s: jobs wait until one starts"
        )
    return result
