"""ProjectBackup (one archive of a whole project, kept in storage) and BackupSchedule (how often, how many)."""
from __future__ import annotations

from django.conf import settings
from django.db import models

from annotator.projects.models import Project


def _backup_path(instance: ProjectBackup, filename: str) -> str:
    return f"projects/{instance.project_id}/backups/{filename}"


class ProjectBackup(models.Model):
    """A project archive (format in docs/backup.md) in storage, with its checksum and what it holds."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="backups")
    file = models.FileField(upload_to=_backup_path, max_length=300)
    sha256 = models.CharField(max_length=64)
    size = models.PositiveBigIntegerField()
    format_version = models.PositiveSmallIntegerField()
    options = models.JSONField(default=dict, blank=True, help_text="images, models, datasets: what the archive holds.")
    counts = models.JSONField(default=dict, blank=True, help_text="Rows and files per kind, from the manifest.")
    warnings = models.JSONField(default=list, blank=True, help_text="What the backup found odd (a damaged stored file…).")
    scheduled = models.BooleanField(default=False, help_text="Made by the schedule (and pruned by it).")
    job = models.ForeignKey("jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["project", "-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["file"], name="backup_unique_file")]

    def __str__(self) -> str:
        return f"{self.project} backup {self.created_at:%Y-%m-%d %H:%M}"


class BackupSchedule(models.Model):
    """Scheduled backups of one project: every `every_hours`, keeping the newest `keep` scheduled ones."""

    project = models.OneToOneField(Project, on_delete=models.CASCADE, related_name="backup_schedule")
    enabled = models.BooleanField(default=True)
    every_hours = models.PositiveIntegerField(default=24)
    keep = models.PositiveIntegerField(default=7)
    with_images = models.BooleanField(default=True, help_text="Put the image files in the archives.")
    with_models = models.BooleanField(default=False, help_text="Put the model weights in the archives.")
    last_started_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=models.Q(every_hours__gte=1), name="backup_schedule_every_gte_1"),
            models.CheckConstraint(condition=models.Q(keep__gte=1), name="backup_schedule_keep_gte_1"),
        ]

    def __str__(self) -> str:
        return f"{self.project}: every {self.every_hours} h, keep {self.keep}"
