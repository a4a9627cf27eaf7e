"""Consensus: one annotator's own version of an image that several annotators draw."""
from __future__ import annotations

from django.conf import settings
from django.db import models

from annotator.images.models import Image, ImageStatus


class ReplicaStatus(models.TextChoices):
    # The first two are the workflow's statuses (the annotator sees their version as the image).
    IN_PROGRESS = ImageStatus.IN_PROGRESS.value, "In progress"
    SUBMITTED = ImageStatus.SUBMITTED.value, "Submitted"
    ABANDONED = "abandoned", "Abandoned (not submitted in time)"


LIVE = (ReplicaStatus.IN_PROGRESS, ReplicaStatus.SUBMITTED)  # those that hold one of the image's N slots


class Replica(models.Model):
    """One annotator's version of an image in a project with `consensus_annotators` > 1.

    To the annotator it is the image: the editor loads and saves these objects (same version
    check, 409 and repairs as the image's own set), never the image's annotations, which only
    the merge of all N submitted versions writes. The image's workflow status is its own
    (images.workflow: claim_replica, requeue_replica, consensus_complete); `status` here is the
    annotator's. An abandoned version keeps its row, so the queue never hands that image to
    them again.
    """

    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="replicas")
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="replicas")
    status = models.CharField(max_length=20, choices=ReplicaStatus.choices, default=ReplicaStatus.IN_PROGRESS)
    drawn = models.JSONField(default=list, help_text="The annotator's objects (as the annotations API gives them).")
    version = models.PositiveIntegerField(default=0, help_text="Bumped on every save (the editor's conflict check).")
    claimed_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    submitted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["image", "submitted_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["image", "annotator"], name="replica_once_per_annotator"),
            models.CheckConstraint(
                condition=models.Q(status=ReplicaStatus.SUBMITTED, submitted_at__isnull=False)
                | (~models.Q(status=ReplicaStatus.SUBMITTED) & models.Q(submitted_at__isnull=True)),
                name="replica_submitted_at",
            ),
        ]
        indexes = [
            models.Index(fields=["annotator", "status"], name="replica_annotator_idx"),
            models.Index(fields=["image", "status"], name="replica_image_idx"),
        ]

    def __str__(self) -> str:
        return f"version of {self.annotator_id} of image {self.image_id}"

    # What the workflow table reads of a subject (images.workflow.Subject): the annotator holds it.
    @property
    def assignee_id(self) -> int:
        return self.annotator_id

    @property
    def reviewer_id(self) -> None:
        return None
