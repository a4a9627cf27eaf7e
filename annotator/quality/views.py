"""Pages of the quality app: the project's time report (who works how fast, and how pace changes
over a work session).  Thin like the other pages: the access check, one selector, a render."""
from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from annotator.core.access import effective_role
from annotator.projects.models import Role
from annotator.web.views import _context, _project  # the pages' one access check and context

from .models import SESSION_GAP_MINUTES
from .selectors import time_report


def _duration(seconds: float | None) -> str:
    """45 s, 12 min 30 s, 3 h 05 min: what a person reads at a glance."""
    if seconds is None:
        return "—"
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


@login_required
def time_page(request: HttpRequest, pk: int) -> HttpResponse:
    project = _project(request, pk)
    everybody = effective_role(request.user, project) in ("admin", Role.MANAGER)
    rows = time_report(project=project, user_ids=None if everybody else [request.user.pk])
    for row in rows:
        row["display"] = {
            "seconds": _duration(row["seconds"]),
            "per_image": _duration(row["seconds_per_image"]),
            "per_object": _duration(row["seconds_per_object"]),
        }
        row["pace_display"] = [
            {"start": round(b["start"]), "end": round(b["end"]), "count": b["count"], "mean": _duration(b["mean"])}
            for b in row["pace"] if b["count"]
        ]
        row["accuracy_display"] = [
            {"start": round(b["start"]), "end": round(b["end"]), "count": b["count"], "mean": f"{b['mean']:.2f}"}
            for b in row["accuracy"] if b["count"]
        ]
    return render(request, "quality/time.html", _context(
        request, project, rows=rows, everybody=everybody, gap_minutes=SESSION_GAP_MINUTES,
    ))
