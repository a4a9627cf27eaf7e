"""The Image model and its workflow status."""
from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from annotator.projects.models import Project


class ImageStatus(models.TextChoices):
    NEW = "new", "New"
    IN_PROGRESS = "in_progress", "In progress"
    SUBMITTED = "submitted", "Submitted"
    IN_REVIEW = "in_review", "In review"
    ACCEPTED = "accepted", "Accepted"
    REJECTED = "rejected", "Rejected"


def _image_path(instance: Image, filename: str) -> str:
    return f"projects/{instance.project_id}/images/{instance.checksum[:2]}/{instance.checksum}{_suffix(filename)}"


def _thumb_path(instance: Image, filename: str) -> str:
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
    # A manager made it ground truth (annotator.groundtruth holds its frozen objects): the workflow
    # refuses every change to it, and the queue mixes it into other annotators' work.
    is_ground_truth = models.BooleanField(default=False)
    # Several annotators draw it, each their own version (annotator.consensus.Replica): while they
    # do, the workflow refuses every other change to it; when all are in, their merge becomes its
    # annotations and `agreement` (ml.quality.agreement's score, 0..1) orders the review queue.
    replicas_open = models.BooleanField(default=False)
    agreement = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["project", "id"]
        constraints = [
            models.UniqueConstraint(fields=["project", "checksum"], name="image_unique_checksum"),
            models.CheckConstraint(condition=models.Q(width__gt=0, height__gt=0), name="image_positive_size"),
        ]
        indexes = [
            models.Index(fields=["project", "status", "-priority", "id"], name="image_queue_idx"),
            # The queues' "nobody holds it yet" candidates, in their order, so that taking the next
            # image reads one index entry instead of sorting every new image (a million of them).
            models.Index(F("project"), F("status"), F("priority").desc(), F("id"),
                         condition=Q(assignee__isnull=True), name="image_queue_free_idx"),
            # The uncertainty-ordered queue and the review queue have indexes too, written in SQL by
            # migration images 0002: their NULLS FIRST/LAST order is spelled per database.
            models.Index(fields=["assignee", "project", "status"], name="image_assignee_idx"),
            models.Index(fields=["reviewer", "project", "status"], name="image_reviewer_idx"),
        ]

    def __str__(self) -> str:
        return self.original_name


class ImageCount(models.Model):
    """A number of images of a project in one (status, assignee, reviewer) combination.

    The dashboard, the stats and the image list's page count sum these rows instead of counting
    a project's images (a million of them) each time. Database triggers on the image table
    (migration images 0002, PostgreSQL and SQLite) write them: every insert, delete and change
    of an image's status, assignee or reviewer — a service, `update()`, a bulk insert, a cascade,
    a restore, whichever app makes it — appends +1 / -1 rows in the writer's own transaction.
    Appending, never updating, means no writer waits on a counter row held by another (an
    updated counter row was a lock every transition of a project shared, and deadlocked
    opposite transitions). `images.compact_counts` (beat, every minute) folds the rows back to
    one per combination. 0 stands for nobody.
    """

    project = models.ForeignKey(Project, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+")
    status = models.CharField(max_length=20, choices=ImageStatus.choices)
    assignee_pk = models.IntegerField(default=0)
    reviewer_pk = models.IntegerField(default=0)
    count = models.BigIntegerField(default=0)
