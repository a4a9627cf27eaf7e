"""Writes of the quality app: recording the active time the editor reports."""
from __future__ import annotations

import math
from datetime import datetime, timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from annotator.annotations.models import Annotation
from annotator.consensus.selectors import replica_of
from annotator.core.errors import DomainError
from annotator.groundtruth.selectors import attempt_of
from annotator.images.models import Image

from .models import SESSION_GAP_MINUTES, TimeRecord

#: the longest span one report may cover; the editor reports about once a minute
MAX_SPAN_SECONDS = 3600


@transaction.atomic
def time_record_add(*, image: Image, user: AbstractBaseUser, seconds: float, now: datetime | None = None) -> TimeRecord:
    """Record ``seconds`` of active work by ``user`` on ``image`` that ended ``now``.

    The span continues the user's work session when it starts less than SESSION_GAP_MINUTES after
    their previous span ended (on any image: a session is the person's, not the image's), and
    starts a new session otherwise.
    """
    if not (isinstance(seconds, (int, float)) and math.isfinite(seconds) and 0 < seconds <= MAX_SPAN_SECONDS):
        raise DomainError(f"seconds must be a number above 0 and at most {MAX_SPAN_SECONDS}, got {seconds!r}.")
    ended = now or timezone.now()
    started = ended - timedelta(seconds=seconds)
    previous = (
        TimeRecord.objects.filter(user=user, ended_at__lte=ended)
        .order_by("-ended_at").values_list("ended_at", "session_started_at").first()
    )
    session = started
    if previous is not None and started - previous[0] < timedelta(minutes=SESSION_GAP_MINUTES):
        # spans of two open tabs may overlap: the session starts no later than this span
        session = min(previous[1], started)
    # the objects the person works on: their attempt at a ground-truth image (not the frozen
    # truth), their version of an image collecting versions (not the empty set), else the image's
    own = attempt_of(image, user) or replica_of(image, user)
    objects = len(own.drawn) if own is not None else Annotation.objects.filter(image=image).count()
    return TimeRecord.objects.create(
        image=image, user=user, seconds=float(seconds), object_count=objects,
        started_at=started, ended_at=ended, session_started_at=session,
    )
