"""Project, Label and Membership models."""
from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models


class Role(models.TextChoices):
    ANNOTATOR = "annotator", "Annotator"
    REVIEWER = "reviewer", "Reviewer"
    MANAGER = "manager", "Manager"


class QueueOrder(models.TextChoices):
    PRIORITY = "priority", "Priority, then upload order"
    UNCERTAINTY = "uncertainty", "Least confident model predictions first"


class Project(models.Model):
    """A body of images annotated against one label set under one set of guidelines."""

    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    guidelines = models.TextField(blank=True, help_text="Markdown shown to annotators in the editor.")
    required_accepts = models.PositiveSmallIntegerField(
        default=1, validators=[MinValueValidator(1)], help_text="How many reviewers must accept an image."
    )
    queue_order = models.CharField(max_length=20, choices=QueueOrder.choices, default=QueueOrder.PRIORITY)
    ground_truth_rate = models.FloatField(
        default=0.0, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="The share of the annotate queue's draws that hand out a ground-truth image (0 to 1).",
    )
    ground_truth_feedback = models.BooleanField(
        default=False, help_text="After submitting a ground-truth image, the annotator sees their score and its conflicts.",
    )
    consensus_annotators = models.PositiveSmallIntegerField(
        default=1, validators=[MinValueValidator(1), MaxValueValidator(10)],
        help_text="How many different annotators draw each image (1: one, no consensus).",
    )
    consensus_timeout_hours = models.PositiveSmallIntegerField(
        default=24, validators=[MinValueValidator(1)],
        help_text="An annotator's version not submitted within this many hours is abandoned; the image goes to someone else.",
    )
    break_reminder_minutes = models.PositiveSmallIntegerField(
        default=90, help_text="The editor suggests a break after this long in one work session; 0 turns it off."
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Archived: read-only for everybody (core.access), still exportable and backed up.
    archived_at = models.DateTimeField(null=True, blank=True)
    archived_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # Set when a delete job starts: hidden from the lists and refused everything but viewing until it is gone.
    delete_requested_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=models.Q(required_accepts__gte=1), name="project_accepts_gte_1"),
            models.CheckConstraint(condition=models.Q(ground_truth_rate__gte=0, ground_truth_rate__lte=1), name="project_gt_rate_0_1"),
            models.CheckConstraint(condition=models.Q(consensus_annotators__gte=1, consensus_timeout_hours__gte=1), name="project_consensus_gte_1"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_archived(self) -> bool:
        return self.archived_at is not None


class Label(models.Model):
    """One class of the project's label set, in a stable order."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="labels")
    name = models.CharField(max_length=100)
    color = models.CharField(max_length=7, validators=[RegexValidator(r"^#[0-9a-fA-F]{6}$", "Use #rrggbb")])
    order = models.PositiveIntegerField(default=0)
    attributes_schema = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["project", "order", "id"]
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="label_unique_name"),
            models.UniqueConstraint(fields=["project", "order"], name="label_unique_order"),
        ]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    """A user's role in one project."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=20, choices=Role.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["project", "user__username"]
        constraints = [models.UniqueConstraint(fields=["project", "user"], name="membership_unique_user")]

    def __str__(self) -> str:
        return f"{self.user} in {self.project} as {self.role}"
