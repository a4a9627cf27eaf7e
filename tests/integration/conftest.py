"""A real Celery worker process for integration tests, sharing the test database and data dir."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]


def _database_url() -> str:
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


class WorkerProcess:
    """A `celery worker` subprocess; its log lines are kept for assertions and failure reports."""

    def __init__(self, *, broker: str, extra_env: dict[str, str] | None = None):
        env = {**os.environ, "DATABASE_URL": _database_url(), "PYTHONUNBUFFERED": "1",
               "ANNOTATOR_JOB_STALE_SECONDS": "20", **(extra_env or {})}
        if broker == "filesystem":
            env.pop("REDIS_URL", None)
        prefix = settings.ANNOTATOR_QUEUE_PREFIX
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "annotator", "worker", "--pool", "prefork", "--concurrency", "1",
             "-Q", f"{prefix}default,{prefix}ml", "--loglevel", "INFO", "--hostname", f"test-{broker}@%h",
             "--without-gossip", "--without-mingle", "--without-heartbeat"],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip())

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(" ready." in line for line in self.lines):
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.2)
        raise RuntimeError("worker did not start:\n" + "\n".join(self.lines[-40:]))

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def log(self) -> str:
        return "\n".join(self.lines[-60:])


def _brokers() -> list[str]:
    # The filesystem broker is what `make run` uses without Redis; Redis is what production (and CI) uses.
    return ["redis", "filesystem"] if os.environ.get("REDIS_URL") else ["filesystem"]


@pytest.fixture(params=_brokers())
def worker(request, transactional_db) -> Iterator[WorkerProcess]:
    process = WorkerProcess(broker=request.param)
    if request.param == "filesystem":
        # The test process must publish through the same broker as the worker.
        from annotator.celery import app

        previous = (app.conf.broker_url, app.conf.broker_transport_options)
        folder = Path(settings.DATA_DIR) / "broker"
        app.conf.broker_url = "filesystem://"
        app.conf.broker_transport_options = {
            "data_folder_in": str(folder / "queue"), "data_folder_out": str(folder / "queue"),
            "processed_folder": str(folder / "processed"), "store_processed": False,
            "control_folder": str(folder / "control"),
        }
        _reset_pool(app)
    try:
        process.wait_ready()
        yield process
    finally:
        process.stop()
        if request.param == "filesystem":
            app.conf.broker_url, app.conf.broker_transport_options = previous
            _reset_pool(app)


def _reset_pool(app) -> None:  # type: ignore[no-untyped-def]
    """Forget cached broker connections so the next publish uses the current broker settings."""
    app._pool = None
    app.amqp._producer_pool = None


def wait_for(job, until, timeout: float, worker: WorkerProcess):  # type: ignore[no-untyped-def]
    """Poll a Job row until `until(job)` holds; fail with the job's state and the worker's log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job.refresh_from_db()
        if until(job):
            return job
        time.sleep(0.1)
    raise AssertionError(
        f"job stuck: state={job.state} {job.progress_done}/{job.progress_total} {job.message} {job.error}\n{worker.log()}"
    )
