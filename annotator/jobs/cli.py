"""Helpers for management commands: run a job in this process, or wait for one with a progress bar."""
from __future__ import annotations

import threading
import time
from typing import TextIO

from .models import Job
from .services import job_execute


def _bar(job: Job) -> str:
    width = 30
    filled = int(width * job.percent / 100)
    counts = f" {job.progress_done}/{job.progress_total}" if job.progress_total else ""
    return f"\r[{'#' * filled}{'.' * (width - filled)}] {job.percent:3d}%{counts} {job.state:<9} {job.message[:50]:<50}"


def run_job_here(job: Job, *, stream: TextIO) -> Job:
    """Execute a job in this process (no broker needed) while showing its progress."""
    done = threading.Event()
    watcher = threading.Thread(target=_watch, args=(job.pk, stream, done), daemon=True)
    watcher.start()
    try:
        job_execute(job_id=job.pk)
    finally:
        done.set()
        watcher.join()
    job.refresh_from_db()
    stream.write(_bar(job) + "\n")
    return job


def _watch(job_id: int, stream: TextIO, done: threading.Event) -> None:
    from django.db import connection

    try:
        while not done.wait(0.5):
            job = Job.objects.get(pk=job_id)
            stream.write(_bar(job))
            stream.flush()
    finally:
        connection.close()


def wait_for_job(job: Job, *, stream: TextIO, poll: float = 1.0) -> Job:
    """Block until a job queued for the workers finishes, drawing its progress."""
    while True:
        job.refresh_from_db()
        stream.write(_bar(job))
        stream.flush()
        if job.is_finished:
            stream.write("\n")
            return job
        time.sleep(poll)
