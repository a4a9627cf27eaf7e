"""Quality-control records: the active time people spend annotating images."""
from __future__ import annotations

from django.conf import settings
from django.db import models

from annotator.images.models import Image

#: a pause of at least this long between two records ends a work session
SESSION_GAP_MINUTES = 30


class TimeRecord(models.Model):
    """Active editing time of one person on one image, as one span the editor reported.

    The editor counts time only while its tab is visible and there was input in the last minute,
    and reports it in spans (about a minute each, and whenever the person stops or leaves), so
    ``started_at`` is ``ended_at`` less the active seconds.  ``object_count`` is how many objects the
    image had when the span was reported (counted by the server).  ``session_started_at`` is the
    start of the person's work session: consecutive records, on any image, with pauses under
    SESSION_GAP_MINUTES.
    """

    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="time_records")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="time_records")
    seconds = models.FloatField()
    object_count = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField()
    session_started_at = models.DateTimeField()

    class Meta:
        ordering = ["user", "ended_at"]
        constraints = [
            models.CheckConstraint(condition=models.Q(seconds__gt=0), name="time_record_positive_seconds"),
            models.CheckConstraint(
                condition=models.Q(started_at__lte=models.F("ended_at"), session_started_at__lte=models.F("started_at")),
                name="time_record_ordered_times",
            ),
        ]
        indexes = [
            models.Index(fields=["user", "-ended_at"], name="time_record_user_idx"),
            models.Index(fields=["image", "user"], name="time_record_image_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} on image {self.image_id}: {self.seconds:.0f} s"
