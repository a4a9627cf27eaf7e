"""Celery tasks of the jobs app: thin wrappers that own the retry policy."""
from __future__ import annotations

from celery import shared_task

from .services import ClaimResult, job_execute, jobs_reap_stale


@shared_task(name="jobs.run", bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=None)
def run_job(self, job_id: int) -> str:  # type: ignore[no-untyped-def]
    outcome = job_execute(job_id=job_id)
    if outcome == ClaimResult.LATER:
        # Another worker holds the job; come back when its heartbeat would have gone stale.
        raise self.retry(countdown=15)
    return outcome


@shared_task(name="jobs.reap_stale", ignore_result=True)
def reap_stale() -> list[int]:
    return jobs_reap_stale()
