"""Ground truth: the frozen objects of an image a manager marked, and annotators' attempts at it."""
from __future__ import annotations

from django.conf import settings
from django.db import models

from annotator.images.models import Image, ImageStatus

ATTEMPT_STATUSES = (ImageStatus.IN_PROGRESS, ImageStatus.SUBMITTED)
ATTEMPT_STATUS_CHOICES = [(s.value, s.label) for s in ATTEMPT_STATUSES]


class GroundTruth(models.Model):
    """An accepted image made ground truth: its objects as they were when it was marked.

    The image's own annotations stay what they were (accepted training data, exported as usual);
    the workflow refuses every change to a ground-truth image until it is unmarked. Its annotator
    and reviewer are its authors: the queue never hands it to them.
    """

    image = models.OneToOneField(Image, on_delete=models.CASCADE, primary_key=True, related_name="ground_truth")
    truth = models.JSONField(help_text="The objects (as the annotations API gives them) when it was marked.")
    version = models.PositiveIntegerField(help_text="The image version that was frozen.")
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    marked_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    marked_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"ground truth of image {self.image_id}"


class GroundTruthAttempt(models.Model):
    """One annotator's own try at a ground-truth image the queue handed them.

    To the annotator it is the image in progress: the editor loads and saves these objects, never
    the image's annotations, so a submission can neither overwrite the truth nor reach an export.
    `status` is the workflow status the annotator sees (in progress, then submitted); on
    submission `scores` holds ml.quality.score against the truth.
    """

    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="ground_truth_attempts")
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="ground_truth_attempts")
    status = models.CharField(max_length=20, choices=ATTEMPT_STATUS_CHOICES, default=ImageStatus.IN_PROGRESS)
    drawn = models.JSONField(default=list, help_text="The annotator's objects (as the annotations API gives them).")
    version = models.PositiveIntegerField(default=0, help_text="Bumped on every save (the editor's conflict check).")
    started_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    scores = models.JSONField(null=True, blank=True, help_text="ml.quality.score of the submission against the truth.")

    class Meta:
        ordering = ["image", "annotator"]
        constraints = [
            # Never twice to the same annotator.
            models.UniqueConstraint(fields=["image", "annotator"], name="gt_attempt_once_per_annotator"),
            models.CheckConstraint(condition=models.Q(status__in=[s.value for s in ATTEMPT_STATUSES]), name="gt_attempt_status"),
            models.CheckConstraint(
                condition=models.Q(status=ImageStatus.SUBMITTED, submitted_at__isnull=False, scores__isnull=False)
                | models.Q(status=ImageStatus.IN_PROGRESS, submitted_at__isnull=True),
                name="gt_attempt_submitted_scored",
            ),
        ]
        indexes = [models.Index(fields=["annotator", "status"], name="gt_attempt_annotator_idx")]

    def __str__(self) -> str:
        return f"attempt of {self.annotator_id} at image {self.image_id}"

    # What the workflow table reads of a subject (images.workflow.Subject): the annotator holds it.
    @property
    def assignee_id(self) -> int:
        return self.annotator_id

    @property
    def reviewer_id(self) -> None:
        return None
