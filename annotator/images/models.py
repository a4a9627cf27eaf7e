"""The Image model and its workflow status."""
from __future__ import annotations

from django.conf import settings
from django.db import models

from annotator.projects.models import Project


class ImageStatus(models.TextChoices):
    NEW = "new", "New"
    IN_PROGRESS = "in_progress", "In progress"
    SUBMITTED = "submitted", "Submitted"
    IN_REVIEW = "in_review", "In review"
    ACCEPTED = "accepted", "Accepted"
    REJECTED = "rejected", "Rejected"


def _image_path(instance: "Image", filename: str) -> str:
    return f"projects/{instance.project_id}/images/{instance.checksum[:2]}/{instance.checksum}{_suffix(filename)}"


def _thumb_path(instance: "Image", filename: str) -> str:
    return f"projects/{instance.project_id}/thumbs/{instance.checksum[:2]}/{instance.checksum}.jpg"


def _suffix(filename: str) -> str:
    dot = filename.rfind(".")
    return filename[dot:].lower() if dot != -1 else ""


class Image(models.Model):
    """One image of a project, with its place in the annotate → review workflow."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="images")
    file = models.FileField(upload_to=_image_path, max_length=300)
    thumbnail = models.FileField(upload_to=_thumb_path, max_length=300, blank=True)
    original_name = models.CharField(max_length=500)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    checksum = models.CharField(max_length=64, help_text="SHA-256 of the stored (orientation-applied) file.")
    status = models.CharField(max_length=20, choices=ImageStatus.choices, default=ImageStatus.NEW, db_index=True)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="assigned_images"
    )
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="reviewing_images"
    )
    priority = models.IntegerField(default=0, help_text="Higher comes first in the queue.")
    # Model uncertainty in [0, 1] from the latest pre-annotation; drives the active-learning queue order.
    uncertainty = models.FloatField(null=True, blank=True)
    version = models.PositiveIntegerField(default=0, help_text="Bumped on every save of the annotations.")
    annotations_updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    annotations_updated_at = models.DateTimeField(null=True, blank=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["project", "id"]
        constraints = [
            models.UniqueConstraint(fields=["project", "checksum"], name="image_unique_checksum"),
            models.CheckConstraint(condition=models.Q(width__gt=0, height__gt=0), name="image_positive_size"),
        ]
        indexes = [models.Index(fields=["project", "status", "-priority", "id"], name="image_queue_idx")]

    def __str__(self) -> str:
        return self.original_name
