"""Reads on projects: what a user can see, and the dashboard numbers."""
from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, QuerySet, Sum

from annotator.images.models import ImageCount, ImageStatus

from .models import Project


def projects_visible_to(user: AbstractBaseUser) -> QuerySet[Project]:
    # A project being deleted is gone for its users already (its delete job is still visible).
    qs = Project.objects.filter(delete_requested_at__isnull=True)
    if not user.is_superuser:
        qs = qs.filter(memberships__user=user)
    return qs.annotate(image_count=Count("images", distinct=True)).order_by("name")


def project_stats(project: Project) -> dict[str, Any]:
    """Counts by status and per-person progress for the dashboard.

    From the trigger-kept ImageCount rows (one per status, assignee and reviewer in use), so that
    the dashboard costs the same for a million images as for ten.
    """
    rows = list(
        ImageCount.objects.filter(project=project).order_by().values_list("status", "assignee_pk", "reviewer_pk")
        .annotate(n=Sum("count")).values_list("status", "assignee_pk", "reviewer_pk", "n")
    )
    by_status = {status.value: 0 for status in ImageStatus}
    for status, _, _, n in rows:
        by_status[status] += n
    total = sum(by_status.values())
    person_pks = {pk for _, assignee, reviewer, _ in rows for pk in (assignee, reviewer) if pk}  # 0: nobody
    names = dict(get_user_model().objects.filter(pk__in=person_pks).values_list("pk", "username"))
    people: dict[str, dict[str, Any]] = {}

    def person(pk: int) -> dict[str, Any]:
        return people.setdefault(names[pk], {"assigned": 0, "in_progress": 0, "submitted": 0, "accepted": 0, "reviewed": 0})

    for status, assignee, reviewer, n in rows:
        if assignee in names:
            counts = person(assignee)
            counts["assigned"] += n
            if status in (ImageStatus.IN_PROGRESS, ImageStatus.REJECTED):
                counts["in_progress"] += n
            if status in (ImageStatus.SUBMITTED, ImageStatus.IN_REVIEW, ImageStatus.ACCEPTED):
                counts["submitted"] += n
            if status == ImageStatus.ACCEPTED:
                counts["accepted"] += n
        if reviewer in names:
            person(reviewer)["reviewed"] += n
    done = by_status[ImageStatus.ACCEPTED]
    return {
        "total": total,
        "by_status": by_status,
        "percent_accepted": round(100 * done / total, 1) if total else 0.0,
        "people": [{"username": name, **values} for name, values in sorted(people.items())],
    }
