"""Starting, running, cancelling and reaping background jobs."""
from __future__ import annotations

import logging
import os
import socket
import threading
import time
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import close_old_connections, connection, transaction
from django.utils import timezone
from kombu.exceptions import OperationalError

from annotator.core.errors import DomainError, ServiceUnavailable
from annotator.projects.models import Project

from .models import FINISHED_STATES, Job, JobState
from .registry import Handler, handler_for, queue_name

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 5.0
# What publishing raises when the broker cannot be reached: kombu wraps the transport's
# connection errors (Redis refused, timed out) in OperationalError; the filesystem broker raises OSError.
BROKER_ERRORS: tuple[type[BaseException], ...] = (OperationalError, OSError)


class BrokerUnavailable(Exception):
    """The job's message could not be handed to the broker."""


class JobCancelled(Exception):
    """Raised inside a handler when someone asked to cancel the job."""


class JobContext:
    """What a handler uses to report progress; checks for cancellation on every report."""

    def __init__(self, job: Job, *, min_interval: float = 0.5):
        self.job = job
        self._min_interval = min_interval
        self._last_write = 0.0

    def progress(self, done: int, total: int | None = None, message: str | None = None, *, force: bool = False) -> None:
        job = self.job
        job.progress_done = done
        if total is not None:
            job.progress_total = total
        if job.progress_total and job.progress_done > job.progress_total:
            job.progress_total = job.progress_done
        if message is not None:
            job.message = message[:500]
        now = time.monotonic()
        if not force and now - self._last_write < self._min_interval and done != job.progress_total:
            return
        self._last_write = now
        Job.objects.filter(pk=job.pk).update(
            progress_done=job.progress_done,
            progress_total=job.progress_total,
            message=job.message,
            heartbeat_at=timezone.now(),
        )
        self.check_cancelled()

    def check_cancelled(self) -> None:
        if Job.objects.filter(pk=self.job.pk, cancel_requested=True).exists():
            raise JobCancelled()


def job_start(
    *, kind: str, project: Project | None, params: dict[str, Any], user: AbstractBaseUser | None, enqueue: bool = True
) -> Job:
    """Create a job and enqueue it once the surrounding transaction commits.

    `enqueue=False` is for command-line tools that run the job in their own process (jobs.cli).
    If the broker cannot be reached when the transaction commits, the job is marked failed and
    ServiceUnavailable (a 503 for API callers) is raised from the commit: the job row exists by
    then, and nothing would ever run it.
    """
    registered = handler_for(kind)
    job = Job.objects.create(
        kind=kind, project=project, params=params, created_by=user, message="Waiting for a worker",
        sent_at=timezone.now() if enqueue else None,
    )
    if enqueue:
        transaction.on_commit(lambda: _job_send_new(job=job, queue=registered.queue))
    return job


def _job_send_new(*, job: Job, queue: str) -> None:
    try:
        job_enqueue(job=job, queue=queue)
    except BrokerUnavailable as exc:
        reason = str(exc)
        Job.objects.filter(pk=job.pk, state=JobState.QUEUED).update(
            state=JobState.FAILED, finished_at=timezone.now(), message="Failed",
            error=f"The job queue could not be reached, so the job never started ({reason}). Start it again later.",
        )
        raise ServiceUnavailable(
            "The job queue is unavailable; the job was not started. Try again in a moment.",
            extra={"reason": reason, "job": job.pk},
        ) from exc


def job_enqueue(*, job: Job, queue: str) -> None:
    """Hand the job's message to the broker; BrokerUnavailable if it cannot be reached."""
    from .tasks import run_job

    try:
        run_job.apply_async(args=[job.pk], queue=queue_name(queue))
    except BROKER_ERRORS as exc:
        log.error("job %s: could not reach the broker: %s", job.pk, exc)
        raise BrokerUnavailable(f"{type(exc).__name__}: {exc}") from exc


@transaction.atomic
def job_cancel(*, job: Job) -> Job:
    job = Job.objects.select_for_update().get(pk=job.pk)
    if job.is_finished:
        raise DomainError(f"The job has already {job.state}.", status=409)
    if job.state == JobState.QUEUED:
        job.state = JobState.CANCELLED
        job.finished_at = timezone.now()
        job.message = "Cancelled before it started"
    job.cancel_requested = True
    job.save()
    return job


def _owner_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _owner_is_dead(owner: str) -> bool:
    """True when the owner ran on this host and its process is gone (a killed pool process)."""
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


class ClaimResult:
    RUN = "run"
    SKIP = "skip"
    LATER = "later"


#: What a claim writes (never the parameters or the result, which may be megabytes of JSON).
_CLAIM_FIELDS = ["state", "finished_at", "message", "error", "attempts", "worker", "started_at", "heartbeat_at"]


@transaction.atomic
def _job_claim(job_id: int, *, with_params: bool = True) -> tuple[str, Job | None]:
    # The result is not the handler's to read; the parameters only when its handler needs them.
    jobs = Job.objects.select_for_update().filter(pk=job_id).defer("result", *([] if with_params else ["params"]))
    job = jobs.first()
    if job is None or job.state in FINISHED_STATES:
        return ClaimResult.SKIP, job
    now = timezone.now()
    if job.state == JobState.RUNNING:
        stale = job.heartbeat_at is None or now - job.heartbeat_at > timedelta(seconds=settings.ANNOTATOR_JOB_STALE_SECONDS)
        if not stale and not _owner_is_dead(job.worker):
            # A duplicate delivery while another worker is on it: look again later.
            return ClaimResult.LATER, job
    if job.cancel_requested:
        job.state, job.finished_at, job.message = JobState.CANCELLED, now, "Cancelled"
        job.save(update_fields=_CLAIM_FIELDS)
        return ClaimResult.SKIP, job
    if job.attempts >= settings.ANNOTATOR_JOB_MAX_ATTEMPTS:
        job.state, job.finished_at = JobState.FAILED, now
        job.error = f"Gave up after {job.attempts} attempts: the worker running it stopped (crash or kill)."
        job.save(update_fields=_CLAIM_FIELDS)
        return ClaimResult.SKIP, job
    if job.attempts:
        log.warning("job %s: attempt %s after the previous worker (%s) was lost", job.pk, job.attempts + 1, job.worker)
    job.state = JobState.RUNNING
    job.attempts += 1
    job.worker = _owner_id()
    job.started_at = job.started_at or now
    job.heartbeat_at = now
    job.message = "Running" if job.attempts == 1 else f"Running (attempt {job.attempts})"
    job.save(update_fields=_CLAIM_FIELDS)
    return ClaimResult.RUN, job


def job_execute(*, job_id: int, handler: Handler | None = None) -> str:
    """Run one delivery of a job's task. Returns what happened (run, skip or later).

    ``handler`` runs the job instead of its kind's registered handler, and its parameters are not
    read: a parent job that does a sub-job's work in its own process, with what it holds in memory
    (an import's chunks), claims it like any worker so that no other runs it too.
    """
    outcome, job = _job_claim(job_id, with_params=handler is None)
    if outcome != ClaimResult.RUN or job is None:
        return outcome
    run = handler or handler_for(job.kind).handler
    stop = threading.Event()
    beat = threading.Thread(target=_heartbeat, args=(job.pk, stop), daemon=True, name=f"job-{job.pk}-heartbeat")
    beat.start()
    try:
        result = run(job, JobContext(job)) or {}
    except JobCancelled:
        _job_finish(job, state=JobState.CANCELLED, message="Cancelled")
    except DomainError as exc:
        _job_finish(job, state=JobState.FAILED, error=exc.detail)
    except Exception as exc:  # noqa: BLE001 - any failure must end up in the job row, not only the log
        log.exception("job %s failed", job.pk)
        _job_finish(job, state=JobState.FAILED, error=f"{type(exc).__name__}: {exc}")
    else:
        # A handler may sum its result up in one line ("summary"): the jobs table shows it.
        summary = result.get("summary") if isinstance(result.get("summary"), str) else ""
        _job_finish(job, state=JobState.SUCCEEDED, result=result, message=summary or "Done")
    finally:
        stop.set()
        beat.join(timeout=HEARTBEAT_SECONDS * 2)
    return ClaimResult.RUN


def _job_finish(job: Job, *, state: str, result: dict | None = None, error: str = "", message: str = "") -> None:
    fields: dict[str, Any] = {"state": state, "finished_at": timezone.now(), "heartbeat_at": timezone.now()}
    if result is not None:
        fields["result"] = result
        if job.progress_total:
            fields["progress_done"] = job.progress_total
    if error:
        fields["error"] = error[:5000]
        fields["message"] = "Failed"
    if message:
        fields["message"] = message
    if job.result_file:
        fields["result_file"] = job.result_file.name
    Job.objects.filter(pk=job.pk).update(**fields)
    for key, value in fields.items():
        setattr(job, key, value)


def _heartbeat(job_id: int, stop: threading.Event) -> None:
    """Keep heartbeat_at fresh while the handler runs, even through long steps without progress."""
    try:
        while not stop.wait(HEARTBEAT_SECONDS):
            Job.objects.filter(pk=job_id, state=JobState.RUNNING).update(heartbeat_at=timezone.now())
    except Exception:  # noqa: BLE001 - a heartbeat hiccup must not kill the job
        log.warning("heartbeat of job %s failed", job_id, exc_info=True)
    finally:
        connection.close()


def jobs_reap_stale() -> list[int]:
    """Requeue (or fail, after too many attempts) running jobs whose worker stopped sending heartbeats.

    Queued jobs whose message went to the broker longer than ANNOTATOR_JOB_RESEND_SECONDS ago
    and that no worker has taken are sent again (a broker restarted without its data loses
    them); a duplicate delivery is harmless, the claim lets one run. Returns the reaped ids.
    """
    close_old_connections()
    jobs_resend_queued()
    cutoff = timezone.now() - timedelta(seconds=settings.ANNOTATOR_JOB_STALE_SECONDS)
    reaped: list[int] = []
    for job_id in Job.objects.filter(state=JobState.RUNNING, heartbeat_at__lt=cutoff).values_list("pk", flat=True):
        with transaction.atomic():
            job = Job.objects.select_for_update().get(pk=job_id)
            if job.state != JobState.RUNNING or (job.heartbeat_at and job.heartbeat_at >= cutoff):
                continue
            if job.attempts >= settings.ANNOTATOR_JOB_MAX_ATTEMPTS or job.cancel_requested:
                job.state, job.finished_at = JobState.FAILED, timezone.now()
                job.error = "The worker running this job stopped responding."
                job.save()
            else:
                job.state = JobState.QUEUED
                job.message = "Requeued: the worker running it stopped responding"
                job.sent_at = timezone.now()
                job.save()
                queue = handler_for(job.kind).queue
                transaction.on_commit(lambda job=job, queue=queue: _job_resend(job=job, queue=queue))
            reaped.append(job.pk)
    return reaped


def jobs_resend_queued() -> list[int]:
    """Send again the queued jobs no worker took within ANNOTATOR_JOB_RESEND_SECONDS of their last sending."""
    cutoff = timezone.now() - timedelta(seconds=settings.ANNOTATOR_JOB_RESEND_SECONDS)
    resent: list[int] = []
    for job in Job.objects.filter(state=JobState.QUEUED, sent_at__lt=cutoff, cancel_requested=False):
        # Only a job still queued and not sent meanwhile (by another reaper) is sent.
        if Job.objects.filter(pk=job.pk, state=JobState.QUEUED, sent_at=job.sent_at).update(sent_at=timezone.now()):
            if _job_resend(job=job, queue=handler_for(job.kind).queue):
                resent.append(job.pk)
    return resent


def _job_resend(*, job: Job, queue: str) -> bool:
    try:
        job_enqueue(job=job, queue=queue)
    except BrokerUnavailable:
        # Left queued and due: the first reaper cycle after the broker is back sends it.
        due = timezone.now() - timedelta(seconds=settings.ANNOTATOR_JOB_RESEND_SECONDS + 1)
        Job.objects.filter(pk=job.pk, state=JobState.QUEUED).update(sent_at=due)
        return False
    log.warning("job %s: sent again (still queued since %s)", job.pk, job.sent_at)
    return True
