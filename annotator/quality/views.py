"""Pages of the quality app: the project's time report (who works how fast, and how pace changes
over a work session) and the Quality page (how well each annotator reproduces the ground truth).  Thin like the other pages: the access check, one selector, a render."""
from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from annotator.core.access import Capability, effective_role
from annotator.projects.models import Role
from annotator.web.views import _context, _project  # the pages' one access check and context

from .charts import bar_chart, line_chart
from .models import SESSION_GAP_MINUTES
from .selectors import quality_report, time_report

#: the conflicts the page lists (the downloads hold all of them)
CONFLICTS_SHOWN = 300


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


def _bins(curve: list[dict]) -> list[tuple[float, float | None]]:
    """A fatigue curve as chart points at the middle of each bin (None where no image fell)."""
    return [((b["start"] + b["end"]) / 2, b["mean"]) for b in curve]


@login_required
def quality_page(request: HttpRequest, pk: int) -> HttpResponse:
    """Managers only (Capability.EXPORT: also on an archived project); others get the 403 page."""
    project = _project(request, pk, Capability.EXPORT)
    report = quality_report(project=project)
    people = report["annotators"]
    for conflict in report["conflicts"][:CONFLICTS_SHOWN]:
        conflict["kind_display"] = conflict["kind"].replace("_", " ")
    for row in people:
        row["display"] = {"per_object": _duration(row["seconds_per_object"])}
    days = sorted({d["day"] for row in people for d in row["over_time"]})
    day_x = {day: float(k) for k, day in enumerate(days)}
    longest = max((b["end"] for row in people for b in row["fatigue"]), default=report["bin_minutes"])
    charts = {
        "scores": bar_chart([(r["username"], (r["f1"], r["mean_iou"])) for r in people], measures=("F1", "mean IoU"),
                            testid="chart-scores"),
        "over_time": line_chart(
            [(r["username"], [(day_x[d["day"]], d["f1"]) for d in r["over_time"]]) for r in people],
            x_ticks=[(x, day[5:]) for day, x in day_x.items()] if len(days) > 1 else [(-1.0, ""), (0.0, days[0][5:] if days else ""), (1.0, "")],
            x_label="day of submission", y_label="F1", testid="chart-over-time",
        ),
        "fatigue": line_chart(
            [(r["username"], _bins(r["fatigue"])) for r in people],
            x_ticks=[(float(m), str(m)) for m in range(0, int(longest) + 1, max(1, int(longest) // 6 or 1))],
            x_label="minutes into the work session", y_label="F1", testid="chart-fatigue",
        ),
    }
    return render(request, "quality/quality.html", _context(
        request, project, report=report, people=people, charts=charts, conflicts=report["conflicts"][:CONFLICTS_SHOWN],
        conflicts_hidden=max(0, len(report["conflicts"]) - CONFLICTS_SHOWN),
    ))
