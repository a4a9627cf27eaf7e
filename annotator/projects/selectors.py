"""Reads on projects: what a user can see, and the dashboard numbers."""
from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, Q, QuerySet

from annotator.images.models import Image, ImageStatus

from .models import Project


def projects_visible_to(user: AbstractBaseUser) -> QuerySet[Project]:
    qs = Project.objects.all()
    if not user.is_superuser:
        qs = qs.filter(memberships__user=user)
    return qs.annotate(image_count=Count("images", distinct=True)).order_by("name")


def project_stats(project: Project) -> dict[str, Any]:
    """Counts by status and per-person progress for the dashboard."""
    by_status = {status.value: 0 for status in ImageStatus}
    for row in Image.objects.filter(project=project).values("status").annotate(n=Count("id")):
        by_status[row["status"]] = row["n"]
    total = sum(by_status.values())
    people: dict[str, dict[str, Any]] = {}
    assigned = (
        Image.objects.filter(project=project, assignee__isnull=False)
        .values("assignee__username")
        .annotate(
            assigned=Count("id"),
            in_progress=Count("id", filter=Q(status__in=[ImageStatus.IN_PROGRESS, ImageStatus.REJECTED])),
            submitted=Count("id", filter=Q(status__in=[ImageStatus.SUBMITTED, ImageStatus.IN_REVIEW, ImageStatus.ACCEPTED])),
            accepted=Count("id", filter=Q(status=ImageStatus.ACCEPTED)),
        )
    )
    for row in assigned:
        people[row.pop("assignee__username")] = {**row, "reviewed": 0}
    for row in Image.objects.filter(project=project, reviewer__isnull=False).values("reviewer__username").annotate(n=Count("id")):
        people.setdefault(row["reviewer__username"], {"assigned": 0, "in_progress": 0, "submitted": 0, "accepted": 0})["reviewed"] = row["n"]
    done = by_status[ImageStatus.ACCEPTED]
    return {
        "total": total,
        "by_status": by_status,
        "percent_accepted": round(100 * done / total, 1) if total else 0.0,
        "people": [{"username": name, **values} for name, values in sorted(people.items())],
    }
