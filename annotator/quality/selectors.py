"""Reads of the quality app: the time report per annotator, the work session of a person, and the
quality report (ground truth, time and fatigue per annotator) behind the Quality page."""
from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Max, Sum
from django.urls import reverse
from django.utils import timezone

from annotator.groundtruth.models import GroundTruthAttempt
from annotator.groundtruth.selectors import ground_truth_report
from annotator.projects.models import Project
from ml.quality import fatigue_curve, throughput

from .models import SESSION_GAP_MINUTES, TimeRecord


def time_session(*, user: AbstractBaseUser, now: datetime | None = None) -> dict[str, Any] | None:
    """The user's current work session: start, minutes since it started, active seconds in it.

    None when the user has no record (or the last one ended a whole session gap ago: the next
    span starts a new session).
    """
    last = TimeRecord.objects.filter(user=user).order_by("-ended_at").first()
    now = now or timezone.now()
    if last is None or now - last.ended_at >= timedelta(minutes=SESSION_GAP_MINUTES):
        return None
    active = TimeRecord.objects.filter(user=user, session_started_at=last.session_started_at).aggregate(s=Sum("seconds"))["s"]
    return {
        "started_at": last.session_started_at,
        "minutes": (now - last.session_started_at).total_seconds() / 60,
        "active_seconds": float(active or 0.0),
    }


def time_report(*, project: Project, user_ids: list[int] | None = None, bin_minutes: float = 30) -> list[dict[str, Any]]:
    """Per annotator of ``project`` (or of ``user_ids`` only): throughput and pace over the session.

    Per image and person, ``seconds`` add up over records and the object count is the one of
    their last record (what the image held when they stopped).  ``pace`` is the fatigue curve of
    seconds per object against the minutes into the session at which the person started the
    image (see ml.quality.fatigue_curve): slowing down late in a session shows as a rising curve.
    ``accuracy`` is the same for the F1 of submitted ground-truth attempts (annotator.groundtruth)
    against the minutes into the session at which the person last worked on the image.
    """
    records = TimeRecord.objects.filter(image__project=project)
    if user_ids is not None:
        records = records.filter(user_id__in=user_ids)
    per_image = list(
        records.values("user_id", "user__username", "image_id")
        .annotate(seconds=Sum("seconds"), last=Max("ended_at"))
        .order_by("user__username", "image_id")
    )
    if not per_image:
        return []
    # per (user, image): the object count of the last record, and how far into its session the
    # earliest-starting record began (spans from two tabs may overlap, so not always the first to end)
    last_count: dict[tuple[int, int], int] = {}
    last_minutes: dict[tuple[int, int], float] = {}
    start_minutes: dict[tuple[int, int], tuple[datetime, float]] = {}
    sessions: dict[int, set[datetime]] = {}
    for user_id, image_id, count, started, ended, session in records.order_by("ended_at").values_list(
        "user_id", "image_id", "object_count", "started_at", "ended_at", "session_started_at"
    ):
        key = (user_id, image_id)
        last_count[key] = count
        last_minutes[key] = (ended - session).total_seconds() / 60
        if key not in start_minutes or started < start_minutes[key][0]:
            start_minutes[key] = (started, (started - session).total_seconds() / 60)
        sessions.setdefault(user_id, set()).add(session)

    names: dict[int, str] = {}
    samples: list[dict[str, Any]] = []
    pace: dict[int, list[dict[str, Any]]] = {}
    last_active: dict[int, datetime] = {}
    for row in per_image:
        key = (row["user_id"], row["image_id"])
        names[row["user_id"]] = row["user__username"]
        objects = last_count[key]
        samples.append({"user": row["user_id"], "image": row["image_id"], "seconds": row["seconds"], "objects": objects})
        pace.setdefault(row["user_id"], []).append({
            "minutes": start_minutes[key][1],
            "seconds_per_object": row["seconds"] / objects if objects else None,
        })
        last_active[row["user_id"]] = max(last_active.get(row["user_id"], row["last"]), row["last"])
    rates = throughput(samples)  # type: ignore[arg-type]  # plain dicts with the TimeSample keys
    # ground-truth scores against how far into the session the person last worked on the image
    accuracy: dict[int, list[dict[str, Any]]] = {}
    attempts = GroundTruthAttempt.objects.filter(image__project=project, submitted_at__isnull=False)
    if user_ids is not None:
        attempts = attempts.filter(annotator_id__in=user_ids)
    for user_id, image_id, scores in attempts.values_list("annotator_id", "image_id", "scores"):
        accuracy.setdefault(user_id, []).append(
            {"minutes": last_minutes.get((user_id, image_id)), "f1": (scores or {}).get("f1")}
        )
    return [
        {
            "user": user_id, "username": names[user_id], **rates[user_id],
            "sessions": len(sessions[user_id]), "last_active_at": last_active[user_id],
            "pace": fatigue_curve(pace[user_id], bin_minutes, value="seconds_per_object"),
            "accuracy": fatigue_curve(accuracy.get(user_id, []), bin_minutes, value="f1"),
        }
        for user_id in names
    ]


def time_on_image(*, image_id: int, user_id: int) -> float:
    """Active seconds the person has spent on the image, over all their records."""
    total = TimeRecord.objects.filter(image_id=image_id, user_id=user_id).aggregate(s=Sum("seconds"))["s"]
    return float(total or 0.0)


def minutes_into_session(*, image_id: int, user_id: int) -> float | None:
    """How long the person had been working in their session when they last worked on the image.

    For fatigue curves of accuracy (ground-truth scores against minutes into the session); None
    when no time was recorded for them on that image.
    """
    last = TimeRecord.objects.filter(image_id=image_id, user_id=user_id).order_by("-ended_at").first()
    if last is None:
        return None
    return (last.ended_at - last.session_started_at).total_seconds() / 60


def _f1(c: Mapping[str, int]) -> float | None:
    """Micro-averaged F1 over summed counts, as the ground-truth report computes it."""
    denominator = 2 * c["tp"] + c["fp"] + c["fn"]
    return 2 * c["tp"] / denominator if denominator else None


def quality_over_time(*, project: Project) -> dict[str, list[dict[str, Any]]]:
    """Per annotator (username): F1 and mean IoU of their submitted ground-truth attempts by day
    of submission (UTC dates, oldest first)."""
    by_day: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    attempts = (
        GroundTruthAttempt.objects.filter(image__project=project, submitted_at__isnull=False)
        .values_list("annotator__username", "submitted_at", "scores").order_by("submitted_at", "id")
    )
    for who, submitted_at, scores in attempts:
        scores = scores or {}
        day = by_day[who].setdefault(
            timezone.localdate(submitted_at).isoformat(), {"attempts": 0, "counts": Counter(), "ious": []},
        )
        day["attempts"] += 1
        for key in ("tp", "fp", "fn"):
            day["counts"][key] += scores.get(key, 0)
        day["ious"] += [iou for _, _, iou in scores.get("matches", [])]
    return {
        who: [
            {"day": day, "attempts": d["attempts"], "f1": _f1(d["counts"]),
             "mean_iou": sum(d["ious"]) / len(d["ious"]) if d["ious"] else None}
            for day, d in days.items()
        ]
        for who, days in by_day.items()
    }


def quality_report(*, project: Project, bin_minutes: float = 30) -> dict[str, Any]:
    """Everything the Quality page shows, in one payload (the API and its CSV/JSON downloads too).

    Per annotator: the ground-truth scores (annotator.groundtruth's report), their time (time
    per object, objects per hour), F1 by day and the fatigue curve (F1 of ground-truth attempts
    against minutes into the work session, from the time report).  Per label and the confusion
    matrix come from the ground-truth report; each conflict carries the attempt it came from and
    a link into the editor at that image, showing that attempt over the ground truth.
    """
    truth = ground_truth_report(project)
    times = {row["username"]: row for row in time_report(project=project, bin_minutes=bin_minutes)}
    over_time = quality_over_time(project=project)
    attempt_ids = {
        (image_id, who): pk for pk, image_id, who in
        GroundTruthAttempt.objects.filter(image__project=project).values_list("pk", "image_id", "annotator__username")
    }
    names = dict(project.labels.values_list("pk", "name"))
    annotators = []
    for person in truth["annotators"]:
        time = times.get(person["username"], {})
        annotators.append({
            **{key: value for key, value in person.items() if key != "per_label"},
            "seconds": time.get("seconds"),
            "objects": time.get("objects"),
            "seconds_per_object": time.get("seconds_per_object"),
            "objects_per_hour": time.get("objects_per_hour"),
            "fatigue": time.get("accuracy", []),
            "over_time": over_time.get(person["username"], []),
            "per_label": person["per_label"],
        })
    conflicts = []
    for conflict in truth["conflicts"]:
        attempt = attempt_ids.get((conflict["image"], conflict["annotator"]))
        conflicts.append({
            "kind": conflict["kind"], "image": conflict["image"], "annotator": conflict["annotator"], "attempt": attempt,
            "truth_label": names.get(conflict["truth_label"]), "attempt_label": names.get(conflict["attempt_label"]),
            "iou": conflict["iou"], "truth": conflict["truth"], "drawn": conflict["attempt"],
            "editor_url": f"{reverse('editor', args=[conflict['image']])}?attempt={attempt}",
        })
    return {
        "agreement": agreement_summary(project=project),
        "ground_truth_images": truth["ground_truth_images"],
        "ground_truth_rate": project.ground_truth_rate,
        "attempts": truth["attempts"],
        "bin_minutes": bin_minutes,
        "annotators": annotators,
        "labels": truth["labels"],
        "confusion": truth["confusion"],
        "conflicts": conflicts,
    }


#: the lowest-agreement images the report lists
LOW_AGREEMENT_SHOWN = 20


def agreement_summary(*, project: Project) -> dict[str, Any]:
    """How far the annotators of consensus images agree (annotator.consensus stores each
    complete image's ml.quality.agreement score): how many, the mean, and the lowest first, the
    order the review queue hands them out in."""
    scored = project.images.filter(agreement__isnull=False)
    values = list(scored.values_list("agreement", flat=True))
    lowest = scored.order_by("agreement", "id").values("id", "original_name", "agreement", "status")[:LOW_AGREEMENT_SHOWN]
    return {
        "images": len(values),
        "mean": sum(values) / len(values) if values else None,
        "lowest": [
            {**row, "editor_url": f"{reverse('editor', args=[row['id']])}?mode=review"} for row in lowest
        ],
    }
