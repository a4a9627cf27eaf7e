"""ModelVersion: a segmentation model a project can pre-annotate with; ProjectShape: the box tool's learned shape."""
from __future__ import annotations

from django.conf import settings
from django.db import models

from annotator.projects.models import Project


class ModelKind(models.TextChoices):
    COCO = "coco", "COCO-pretrained Mask R-CNN"
    TRAINED = "trained", "Trained on the project's accepted images"
    CHECKPOINT = "checkpoint", "Checkpoint file"


class ModelVersion(models.Model):
    """One trained (or pretrained) model with its metrics; a project may mark one as active."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="model_versions")
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=20, choices=ModelKind.choices)
    arch = models.CharField(max_length=50, default="maskrcnn_resnet50_fpn")
    checkpoint = models.CharField(max_length=500, blank=True, help_text="Path of the checkpoint file, if any.")
    class_names = models.JSONField(default=list)
    metrics = models.JSONField(default=dict, blank=True)
    curve = models.JSONField(default=list, blank=True)
    params = models.JSONField(default=dict, blank=True)
    is_active = models.BooleanField(default=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["project", "-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["project"], condition=models.Q(is_active=True), name="one_active_model"),
        ]

    def __str__(self) -> str:
        return self.name


class ProjectShape(models.Model):
    """The box tool's learned shape (ml.shape_prior) fitted on the project's accepted masks, without a training round.

    One per project, replaced by each fit; its file is ``<ANNOTATOR_MODEL_DIR>/project-<id>/shape.npz``
    (services.shapes.project_shape_path). ``metrics`` holds the box engines measured on held-out
    images (``assists``, as ModelVersion.metrics) and how they were held out.
    """

    project = models.OneToOneField(Project, on_delete=models.CASCADE, related_name="learned_shape")
    images = models.PositiveIntegerField(help_text="Accepted images it was fitted on.")
    object_count = models.PositiveIntegerField(help_text="Accepted objects it was fitted on.")
    metrics = models.JSONField(default=dict, blank=True)
    job = models.ForeignKey("jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    fitted_at = models.DateTimeField()
    format_version = models.PositiveSmallIntegerField(
        null=True, blank=True,
        help_text="ml.shape_prior's format of its file (None: unknown). One older than the code's is learned again at the next accept.")

    def __str__(self) -> str:
        return f"Learned shape of project {self.project_id} ({self.object_count} objects)"
