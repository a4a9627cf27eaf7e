"""Reads on jobs: what a user may see."""
from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Q, QuerySet

from .models import Job


def jobs_visible_to(user: AbstractBaseUser, *, project: int | None = None, state: str | None = None, kind: str | None = None) -> QuerySet[Job]:
    qs = Job.objects.select_related("created_by", "project")
    if not user.is_superuser:
        qs = qs.filter(Q(project__memberships__user=user) | Q(created_by=user)).distinct()
    if project is not None:
        qs = qs.filter(project_id=project)
    if state:
        qs = qs.filter(state__in=state.split(","))
    if kind:
        qs = qs.filter(kind=kind)
    return qs.order_by("-created_at")
