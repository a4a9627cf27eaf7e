"""Reads on jobs: what a user may see."""
from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet

from annotator.core.access import visible

from .models import Job


def jobs_visible_to(user: AbstractBaseUser, *, project: int | None = None, state: str | None = None, kind: str | None = None) -> QuerySet[Job]:
    """Jobs of the projects the user is a member of now (starting a job gives no access of its own).

    Jobs outside any project (none are started so today) are their creator's.
    """
    jobs = Job.objects.select_related("created_by", "project")
    qs = visible(user, jobs) | jobs.filter(project__isnull=True, created_by=user.pk)
    if project is not None:
        qs = qs.filter(project_id=project)
    if state:
        qs = qs.filter(state__in=state.split(","))
    if kind:
        qs = qs.filter(kind=kind)
    return qs.order_by("-created_at")
