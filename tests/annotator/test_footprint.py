"""torch (500-600 MB a process) is loaded only where a model runs, and OpenCV (15 MB) where an assist or a
mask tracing does: never by starting the app or a worker."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from annotator.core.cpu import available_cores

ROOT = Path(__file__).resolve().parents[2]

_START_EVERYTHING = """
import os, sys
import django
django.setup()
from django.urls import get_resolver
get_resolver().url_patterns  # every view module, as the first request loads them
import annotator.wsgi
from annotator.celery import app, _share_cores_between_pool_processes
app.loader.import_default_modules()  # the tasks and job handlers a worker registers
_share_cores_between_pool_processes()  # what each pool process runs when it starts
from annotator.jobs.registry import handler_for
handler_for("preannotate")
print(os.environ["OMP_NUM_THREADS"])
print(sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "torchvision", "cv2")))
"""


def test_starting_the_web_app_or_a_worker_process_does_not_import_torch_or_opencv():
    env = {"PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "annotator.settings", "WORKER_CONCURRENCY": "2",
           "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-c", _START_EVERYTHING], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)

    assert result.returncode == 0, result.stderr
    threads, modules = result.stdout.strip().splitlines()[-2:]
    assert modules == "[]"
    # Each pool process still gets its share of the cores once torch is loaded.
    assert int(threads) == max(1, available_cores() // 2)


def test_pool_processes_share_the_cores_the_command_line_gives_them(monkeypatch):
    """`celery worker --concurrency N` (the Procfile's) is what the pool processes divide the cores by."""
    import os

    from annotator import celery

    monkeypatch.delenv("WORKER_CONCURRENCY", raising=False)
    monkeypatch.setattr("annotator.core.cpu.available_cores", lambda: 16)
    celery._remember_concurrency(options={"concurrency": 4, "loglevel": "INFO"})
    assert os.environ["WORKER_CONCURRENCY"] == "4" and celery.pool_process_threads() == 4
    monkeypatch.setenv("WORKER_CONCURRENCY", "8")  # the operator's own setting wins
    celery._remember_concurrency(options={"concurrency": 2})
    assert celery.pool_process_threads() == 2
    assert celery.pool_process_threads(32) == 1
