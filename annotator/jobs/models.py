"""The Job model: one unit of background work and what is known about it."""
from __future__ import annotations

from django.conf import settings
from django.db import models

from annotator.core.fields import FastJSONField
from annotator.projects.models import Project


class JobKind(models.TextChoices):
    IMPORT = "import", "Import"
    # One chunk of an import, run by whichever worker process is free (datasets.imports); a
    # staging job of its import's, removed when the import ends.
    IMPORT_CHUNK = "import_chunk", "Import chunk"
    EXPORT = "export", "Export"
    PREANNOTATE = "preannotate", "Pre-annotation"
    TRAIN = "train", "Training"
    EVALUATE = "evaluate", "Evaluation"
    LEARN_SHAPE = "learn_shape", "Shape learning"
    BACKUP = "backup", "Backup"
    RESTORE = "restore", "Restore"
    DUPLICATE = "duplicate", "Duplication"
    DELETE_PROJECT = "delete_project", "Project deletion"


class JobState(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


FINISHED_STATES = (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED)


class Job(models.Model):
    """Background work (import, export, pre-annotation, training…) with live progress."""

    kind = models.CharField(max_length=20, choices=JobKind.choices)
    project = models.ForeignKey(Project, null=True, blank=True, on_delete=models.CASCADE, related_name="jobs")
    state = models.CharField(max_length=20, choices=JobState.choices, default=JobState.QUEUED, db_index=True)
    params = FastJSONField(default=dict, blank=True)
    progress_done = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(default=0)
    message = models.CharField(max_length=500, blank=True, help_text="What the job is doing now.")
    error = models.TextField(blank=True)
    result = FastJSONField(default=dict, blank=True)
    result_file = models.FileField(upload_to="jobs/", max_length=300, blank=True)
    cancel_requested = models.BooleanField(default=False)
    attempts = models.PositiveSmallIntegerField(default=0)
    worker = models.CharField(max_length=200, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    # When the job's message was last handed to the broker (None: run in-process by jobs.cli).
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(progress_done__lte=models.F("progress_total")) | models.Q(progress_total=0),
                name="job_progress_within_total",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk} ({self.state})"

    @property
    def percent(self) -> int:
        if self.state == JobState.SUCCEEDED:
            return 100
        if not self.progress_total:
            return 0
        return min(100, int(100 * self.progress_done / self.progress_total))

    @property
    def is_finished(self) -> bool:
        return self.state in FINISHED_STATES


class WorkerHeartbeat(models.Model):
    """A running Celery worker, as last seen: each worker process refreshes its row while it runs."""

    name = models.CharField(max_length=200, unique=True, help_text="host:pid of the worker's main process")
    queues = models.CharField(max_length=500, blank=True)
    started_at = models.DateTimeField()
    seen_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"{self.name} (seen {self.seen_at:%Y-%m-%d %H:%M:%S})"
