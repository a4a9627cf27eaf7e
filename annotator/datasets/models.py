"""DatasetVersion: one export of a project, kept as a named, checksummed archive with a manifest."""
from __future__ import annotations

from django.conf import settings
from django.db import models

from annotator.projects.models import Project


class ExportFormat(models.TextChoices):
    COCO = "coco", "COCO instances JSON"
    VOC = "voc", "Pascal VOC"
    LABELME = "labelme", "LabelMe JSON"


def _version_path(instance: DatasetVersion, filename: str) -> str:
    return f"projects/{instance.project_id}/datasets/{filename}"


class DatasetVersion(models.Model):
    """A reproducible export: what was asked (format, filters), what came out (manifest), and the zip."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="dataset_versions")
    name = models.CharField(max_length=200)
    format = models.CharField(max_length=10, choices=ExportFormat.choices)
    filters = models.JSONField(default=dict, blank=True, help_text="status, labels, images, predictions options.")
    manifest = models.JSONField(default=dict, blank=True, help_text="Counts, labels and per-file SHA-256 of the archive.")
    file = models.FileField(upload_to=_version_path, max_length=300)
    sha256 = models.CharField(max_length=64)
    size = models.PositiveBigIntegerField()
    job = models.ForeignKey("jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["project", "-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["project", "name"], name="dataset_version_unique_name")]

    def __str__(self) -> str:
        return f"{self.project} / {self.name}"
