"""Browser tests: the fixtures (browser, page, csp_violations) live in tests/browser.py; here the
stand-in for a worker that the pages' jobs (exports, backups) need."""
from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from django.db import connection

from annotator.jobs.models import Job, JobState
from annotator.jobs.services import job_execute


@pytest.fixture
def jobs_run_here() -> Iterator[None]:
    """A stand-in for the worker: runs every queued job in a thread of the test process."""
    stop = threading.Event()

    def loop() -> None:
        try:
            while not stop.is_set():
                for job_id in Job.objects.filter(state=JobState.QUEUED).values_list("pk", flat=True):
                    job_execute(job_id=job_id)
                time.sleep(0.2)
        finally:
            connection.close()

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    yield
    stop.set()
    thread.join(timeout=30)
