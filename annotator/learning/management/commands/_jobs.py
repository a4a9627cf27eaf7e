"""Shared by the learning commands: find the project, then run or wait for a job with a progress bar."""
from __future__ import annotations

from typing import TextIO

from django.core.management.base import CommandError

from annotator.jobs.cli import run_job_here, wait_for_job
from annotator.jobs.models import Job, JobState
from annotator.projects.models import Project


def project_named(name: str) -> Project:
    project = Project.objects.filter(name=name).first()
    if project is None:
        raise CommandError(f"No project named {name!r}.")
    return project


def follow(job: Job, *, here: bool, stream: TextIO) -> Job:
    """Block until the job ends (on a worker, or in this process with --here); CommandError unless it succeeded."""
    job = run_job_here(job, stream=stream) if here else wait_for_job(job, stream=stream)
    if job.state != JobState.SUCCEEDED:
        raise CommandError(f"Job #{job.pk} {job.state}: {job.error or job.message}")
    return job
