"""Annotation, Revision and Prediction models."""
from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from annotator.core.fields import FastJSONField
from annotator.images.models import Image
from annotator.projects.models import Label


class GeometryKind(models.TextChoices):
    POLYGONS = "polygons", "Polygons"
    MASK = "mask", "Mask (COCO RLE)"


class Source(models.TextChoices):
    MANUAL = "manual", "Drawn by a person"
    MODEL = "model", "Model proposal"
    IMPORT = "import", "Imported"


class Annotation(models.Model):
    """One object instance on an image: a label and either polygons (parts with holes) or an RLE mask."""

    uid = models.UUIDField(default=uuid.uuid4, help_text="Stable across saves; identifies the object in diffs.")
    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="annotations")
    label = models.ForeignKey(Label, on_delete=models.PROTECT, related_name="annotations")
    kind = models.CharField(max_length=10, choices=GeometryKind.choices)
    # polygons: [{"exterior": [[x, y], ...], "holes": [[[x, y], ...], ...]}, ...]
    polygons = FastJSONField(null=True, blank=True)
    # mask: {"size": [h, w], "counts": "<compressed COCO RLE>"}
    rle = FastJSONField(null=True, blank=True)
    bbox = FastJSONField(help_text="[x, y, width, height] derived from the geometry")
    area = models.FloatField()
    z_order = models.IntegerField(default=0)
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.MANUAL)
    model_version = models.ForeignKey(
        "learning.ModelVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    prediction = models.ForeignKey(
        "annotations.Prediction", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    score = models.FloatField(null=True, blank=True)
    attributes = FastJSONField(default=dict, blank=True)
    # Hash of label, geometry, z-order and attributes: tells whether a save changed the object
    # without reading every geometry back from the database.
    digest = models.CharField(max_length=40, blank=True)
    # Points in all rings (0 for a mask): the per-image vertex limit of a save that sends only
    # what changed adds the stored objects' counts without reading their geometries.
    vertices = models.PositiveIntegerField(default=0)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["image", "z_order", "id"]
        constraints = [
            models.UniqueConstraint(fields=["image", "uid"], name="annotation_unique_uid"),
            models.CheckConstraint(
                condition=(
                    models.Q(kind="polygons", polygons__isnull=False, rle__isnull=True)
                    | models.Q(kind="mask", rle__isnull=False, polygons__isnull=True)
                ),
                name="annotation_one_geometry",
            ),
            models.CheckConstraint(condition=models.Q(area__gte=0), name="annotation_area_gte_0"),
        ]

    @property
    def geometry(self) -> dict:
        if self.kind == GeometryKind.MASK:
            return {"type": "mask", "rle": self.rle}
        return {"type": "polygons", "polygons": self.polygons}


class RevisionAction(models.TextChoices):
    SAVE = "save", "Saved in the editor or API"
    RESTORE = "restore", "Restored an earlier revision"
    IMPORT = "import", "Imported"
    REVIEW = "review", "Changed during review"
    CONSENSUS = "consensus", "Merged from several annotators' versions"


class Revision(models.Model):
    """An image's annotation set as it stood after one save (version N), with who and when.

    Stored whole (``annotations``, a snapshot) or as what the save changed against version N-1
    (``delta``): see annotations.revisions; read it with selectors.revision_objects.
    """

    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="revisions")
    version = models.PositiveIntegerField()
    action = models.CharField(max_length=10, choices=RevisionAction.choices, default=RevisionAction.SAVE)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    annotations = FastJSONField(null=True, blank=True, help_text="A snapshot: the annotation set as serialized by the API.")
    delta = FastJSONField(null=True, blank=True, help_text="Else what the save changed against the revision before it.")
    object_count = models.PositiveIntegerField(default=0)
    restored_from = models.PositiveIntegerField(null=True, blank=True)
    summary = models.JSONField(default=dict, blank=True, help_text="Counts of added/removed/changed objects.")

    class Meta:
        ordering = ["image", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["image", "version"], name="revision_unique_version"),
            models.CheckConstraint(
                condition=(
                    models.Q(annotations__isnull=False, delta__isnull=True)
                    | models.Q(annotations__isnull=True, delta__isnull=False, version__gt=1)
                ),
                name="revision_snapshot_or_delta",
            ),
        ]


class Prediction(models.Model):
    """A model's proposal for one object, kept apart from what people annotated."""

    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="predictions")
    job = models.ForeignKey("jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    model_version = models.ForeignKey("learning.ModelVersion", on_delete=models.CASCADE, related_name="predictions")
    rank = models.PositiveIntegerField(help_text="Position in the model's output for this image (by score).")
    label = models.ForeignKey(Label, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    class_name = models.CharField(max_length=100)
    score = models.FloatField()
    rle = FastJSONField()
    bbox = models.JSONField()
    area = models.FloatField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["image", "-score"]
        constraints = [
            # A retried or duplicated task rewrites the same rows instead of adding new ones.
            models.UniqueConstraint(fields=["image", "model_version", "rank"], name="prediction_unique_rank"),
        ]

    @property
    def geometry(self) -> dict:
        return {"type": "mask", "rle": self.rle}
