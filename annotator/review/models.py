"""Review tasks (an image handed to a reviewer), decisions with per-object verdicts, pinned comments."""
from __future__ import annotations

from django.conf import settings
from django.db import models

from annotator.images.models import Image


class Verdict(models.TextChoices):
    ACCEPT = "accept", "Accept"
    REJECT = "reject", "Reject"


class ReviewTask(models.Model):
    """One hand-over of a submitted image to a reviewer, from the queue until a decision or a release.

    ``submitted_version`` is the image version the annotator submitted: the base of the reviewer's
    diff and of the "changed by reviewers" statistics.
    """

    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="review_tasks")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="review_tasks")
    submitted_version = models.PositiveIntegerField()
    taken_at = models.DateTimeField(auto_now_add=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    released = models.BooleanField(default=False, help_text="Given back to the queue without a decision.")

    class Meta:
        ordering = ["image", "-taken_at"]
        constraints = [
            # One open task per image: the database backs up the queue's atomic hand-over.
            models.UniqueConstraint(fields=["image"], condition=models.Q(closed_at__isnull=True), name="review_one_open_task"),
        ]


class ReviewDecision(models.Model):
    """A reviewer's accept/reject of one image version, with what the reviewer changed (kept forever)."""

    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="review_decisions")
    task = models.OneToOneField(ReviewTask, null=True, blank=True, on_delete=models.SET_NULL, related_name="decision")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    # The annotator at decision time: statistics per annotator must not move when images are reassigned.
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    decision = models.CharField(max_length=10, choices=Verdict.choices)
    comment = models.TextField(blank=True)
    submitted_version = models.PositiveIntegerField()
    version = models.PositiveIntegerField(help_text="The image version the decision applies to.")
    # Reviewer's corrections between submitted_version and version, computed once at decision time.
    objects_added = models.PositiveIntegerField(default=0)
    objects_removed = models.PositiveIntegerField(default=0)
    objects_modified = models.PositiveIntegerField(default=0)
    iou_sum = models.FloatField(default=0.0, help_text="Sum of submitted-vs-decided IoU over matched objects.")
    iou_count = models.PositiveIntegerField(default=0)
    taken_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["image", "-created_at", "-id"]
        indexes = [models.Index(fields=["image", "version", "decision"], name="review_decision_version_idx")]
        constraints = [
            models.CheckConstraint(condition=models.Q(iou_sum__gte=0), name="review_iou_sum_gte_0"),
        ]


class ObjectDecision(models.Model):
    """The verdict on one object (annotation uid) inside a decision."""

    decision = models.ForeignKey(ReviewDecision, on_delete=models.CASCADE, related_name="object_decisions")
    annotation_uid = models.UUIDField()
    verdict = models.CharField(max_length=10, choices=Verdict.choices)
    comment = models.TextField(blank=True)

    class Meta:
        ordering = ["decision", "id"]
        constraints = [
            models.UniqueConstraint(fields=["decision", "annotation_uid"], name="review_object_once_per_decision"),
        ]


class ReviewComment(models.Model):
    """A comment on an image, pinned to an object (uid), to a point (x, y), or to the image as a whole."""

    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="review_comments")
    decision = models.ForeignKey(ReviewDecision, null=True, blank=True, on_delete=models.SET_NULL, related_name="comments")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    text = models.TextField()
    annotation_uid = models.UUIDField(null=True, blank=True)
    x = models.FloatField(null=True, blank=True)
    y = models.FloatField(null=True, blank=True)
    version = models.PositiveIntegerField(help_text="The image version the comment was made on.")
    resolved = models.BooleanField(default=False)
    resolved_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    resolved_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["image", "created_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(x__isnull=True, y__isnull=True) | models.Q(x__isnull=False, y__isnull=False),
                name="review_comment_point_complete",
            ),
            models.CheckConstraint(
                condition=models.Q(annotation_uid__isnull=True) | models.Q(x__isnull=True),
                name="review_comment_one_anchor",
            ),
        ]
