"""Broker down: starting a job is a 503 JSON and the job is failed; lost messages are sent again.

Reproduces the report: with the broker stopped, POST /api/projects/1/exports/ answered an HTML
500 (kombu's OperationalError), the committed job stayed "Waiting for a worker" for ever, and
/healthz kept answering ok. The tests run their own redis-server on a spare port; the shared
one is never touched.
"""
from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
import redis
from django.conf import settings
from django.utils import timezone

from annotator.jobs.models import Job, JobKind, JobState, WorkerHeartbeat
from annotator.jobs.registry import queue_name
from annotator.jobs.services import job_start, jobs_reap_stale
from annotator.jobs.workers import worker_beat

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs the redis-server binary"),
]


def _spare_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PrivateRedis:
    """A redis-server of this test's own, without persistence: a restart loses its queues."""

    def __init__(self) -> None:
        self.port = _spare_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                redis.Redis.from_url(self.url).ping()
                return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None

    def queued_messages(self, queue: str = "default") -> int:
        return redis.Redis.from_url(self.url).llen(queue_name(queue))


@pytest.fixture
def broker() -> Iterator[PrivateRedis]:
    """Point the app's publishing at a private Redis (started by the test when it wants it up)."""
    from annotator.celery import app
    from tests.integration.conftest import _reset_pool

    server = PrivateRedis()
    previous = (app.conf.broker_url, app.conf.broker_transport_options)
    app.conf.broker_url = server.url
    app.conf.broker_transport_options = {"socket_connect_timeout": 2}
    _reset_pool(app)
    try:
        yield server
    finally:
        server.stop()
        app.conf.broker_url, app.conf.broker_transport_options = previous
        _reset_pool(app)


def test_starting_a_job_with_the_broker_down_is_a_503_and_the_job_is_failed(world, broker) -> None:
    started = time.monotonic()
    response = world.client("manager").post(f"/api/projects/{world.project.pk}/exports/", {"format": "coco"}, format="json")
    elapsed = time.monotonic() - started

    assert response.status_code == 503
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert "job queue is unavailable" in body["detail"]
    assert body["reason"]
    job = Job.objects.get(pk=body["job"])
    assert job.state == JobState.FAILED
    assert "could not be reached" in job.error
    assert elapsed < 30  # a refused connection fails fast, not after the OS's timeout


def test_job_started_with_the_broker_up_is_queued_on_it(world, broker) -> None:
    broker.start()
    response = world.client("manager").post(f"/api/projects/{world.project.pk}/exports/", {"format": "coco"}, format="json")
    assert response.status_code == 202
    assert Job.objects.get(pk=response.json()["id"]).state == JobState.QUEUED
    assert broker.queued_messages() == 1


def test_reaper_sends_again_a_queued_job_whose_message_was_lost(world, broker, settings) -> None:
    settings.ANNOTATOR_JOB_RESEND_SECONDS = 60
    broker.start()
    job = job_start(kind=JobKind.EXPORT, project=world.project, params={"format": "coco"}, user=None)
    assert broker.queued_messages() == 1
    # The broker restarts without its data: the message is gone, the job row still says queued.
    broker.stop()
    broker.start()
    assert broker.queued_messages() == 0

    jobs_reap_stale()  # too early: the message may still be waiting behind others
    assert broker.queued_messages() == 0

    Job.objects.filter(pk=job.pk).update(sent_at=timezone.now() - timedelta(seconds=61))
    jobs_reap_stale()
    assert broker.queued_messages() == 1
    job.refresh_from_db()
    assert job.state == JobState.QUEUED and job.sent_at > timezone.now() - timedelta(seconds=10)


def test_reaper_with_the_broker_still_down_keeps_the_job_for_the_next_cycle(world, broker, settings) -> None:
    settings.ANNOTATOR_JOB_RESEND_SECONDS = 60
    job = Job.objects.create(
        kind=JobKind.EXPORT, project=world.project, params={"format": "coco"},
        sent_at=timezone.now() - timedelta(seconds=120),
    )

    jobs_reap_stale()  # broker down: nothing sent, nothing raised
    job.refresh_from_db()
    assert job.state == JobState.QUEUED

    broker.start()
    jobs_reap_stale()
    assert broker.queued_messages() == 1


# --- Liveness and readiness ---------------------------------------------------------------------


def test_liveness_answers_while_the_broker_is_down(client, broker) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readiness_reports_each_dependency_on_its_own(client, broker) -> None:
    down = client.get("/readyz").json()
    assert down["status"] == "degraded"
    assert down["database"]["ok"] and down["storage"]["ok"]
    assert not down["broker"]["ok"] and down["broker"]["error"]
    assert not down["workers"]["ok"] and down["workers"]["alive"] == 0

    broker.start()
    worker_beat(name="worker-host:123", queues="default")
    response = client.get("/readyz")
    assert response.status_code == 200
    up = response.json()
    assert up["status"] == "ok", up
    assert up["broker"]["ok"]
    assert up["workers"] == {"ok": True, "alive": 1, "last_seen_seconds": up["workers"]["last_seen_seconds"],
                             "names": ["worker-host:123"]}


def test_readiness_counts_a_silent_worker_as_gone(client) -> None:
    worker_beat(name="worker-host:9")
    WorkerHeartbeat.objects.update(seen_at=timezone.now() - timedelta(seconds=4 * settings.ANNOTATOR_WORKER_HEARTBEAT_SECONDS))
    workers = client.get("/readyz").json()["workers"]
    assert workers["alive"] == 0 and "no worker heartbeat" in workers["error"]


def test_readiness_is_503_when_the_storage_is_not_writable(client, settings, tmp_path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("a file where the media folder should be")
    settings.STORAGES = {**settings.STORAGES, "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(blocked / "media")},
    }}
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["status"] == "error" and not response.json()["storage"]["ok"]
