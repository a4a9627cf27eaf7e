"""The tables of a project archive: which rows, which fields, and what each field is.

One spec per table serves both directions: the backup reads the columns with ``values_list`` and
writes them (users as usernames, references as the archive's ids, which are the ids the rows had);
the restore checks every field of every row against the same spec before anything is written,
then builds the rows with the new ids.

Field kinds: ``plain`` (a value of ``types``, or one of ``choices``), ``time`` (ISO 8601),
``uuid``, ``json`` (any JSON value), ``user`` (a username of the archive's user list) and
``ref`` (the archive id of a row of table ``ref``). A field with a ``default`` may be absent from a
row (archives written before the field existed): the row restores with the default.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from django.db import models

from annotator.annotations.models import Annotation, GeometryKind, Prediction, Revision, RevisionAction, Source
from annotator.consensus.models import Replica, ReplicaStatus
from annotator.datasets.models import DatasetVersion, ExportFormat
from annotator.groundtruth.models import ATTEMPT_STATUSES, GroundTruth, GroundTruthAttempt
from annotator.images.models import Image, ImageStatus
from annotator.jobs.models import Job, JobKind, JobState
from annotator.learning.models import ModelKind, ModelVersion, ProjectShape
from annotator.quality.models import TimeRecord
from annotator.review.models import ObjectDecision, ReviewComment, ReviewDecision, ReviewTask, Verdict

INT = (int,)
NUMBER = (int, float)
STR = (str,)
BOOL = (bool,)
#: A field's default when it has none: the field must be in every row.
REQUIRED: Any = object()


@dataclass(frozen=True)
class Field:
    name: str  # the model field's name, and the row's key in the archive
    kind: str = "plain"  # plain, time, uuid, json, user, ref
    null: bool = False
    types: tuple[type, ...] = ()
    choices: tuple[str, ...] = ()
    ref: str = ""  # for kind "ref": the table
    default: Any = REQUIRED  # the value of a row that lacks the field (an older archive)

    def value(self, row: dict[str, Any]) -> Any:
        return row[self.name] if self.name in row or self.default is REQUIRED else self.default

    @property
    def column(self) -> str:
        return f"{self.name}_id" if self.kind in ("user", "ref") else self.name


@dataclass(frozen=True)
class Table:
    name: str
    model: type[models.Model]
    fields: tuple[Field, ...]
    via: str  # lookup from the model to its project
    order: tuple[str, ...] = ("id",)
    has_id: bool = True  # rows carry their archive id (other rows may refer to it)
    files: tuple[str, ...] = ()  # file fields the backup reads to add the files (their member paths go in the row)
    # Rows per database round trip when reading: few for the tables whose rows can be megabytes
    # (a revision holds an image's whole annotation set), so that memory stays bounded.
    chunk: int = 1000

    def queryset(self, project_id: int) -> models.QuerySet[Any]:
        return self.model._default_manager.filter(**{self.via: project_id}).order_by(*self.order)  # type: ignore[attr-defined]

    @property
    def columns(self) -> list[str]:
        return (["id"] if self.has_id else []) + [f.column for f in self.fields]


def _choices(enum: type[models.TextChoices]) -> tuple[str, ...]:
    return tuple(enum.values)


def F(name: str, kind: str = "plain", *, null: bool = False, types: tuple[type, ...] = (), choices: tuple[str, ...] = (), ref: str = "",
      default: Any = REQUIRED) -> Field:
    return Field(name=name, kind=kind, null=null, types=types, choices=choices, ref=ref, default=default)


IMAGES = Table("images", Image, (
    F("original_name", types=STR), F("width", types=INT), F("height", types=INT), F("checksum", types=STR),
    F("status", choices=_choices(ImageStatus)), F("assignee", "user", null=True), F("reviewer", "user", null=True),
    F("priority", types=INT), F("uncertainty", null=True, types=NUMBER), F("version", types=INT),
    F("annotations_updated_by", "user", null=True), F("annotations_updated_at", "time", null=True),
    F("submitted_at", "time", null=True), F("created_at", "time"), F("updated_at", "time"),
    F("is_ground_truth", types=BOOL, default=False),
    F("replicas_open", types=BOOL, default=False), F("agreement", null=True, types=NUMBER, default=None),
), via="project_id", files=("file", "thumbnail"))

MODEL_VERSIONS = Table("model_versions", ModelVersion, (
    F("name", types=STR), F("kind", choices=_choices(ModelKind)), F("arch", types=STR), F("checkpoint", types=STR),
    F("class_names", "json"), F("metrics", "json"), F("curve", "json"), F("params", "json"), F("is_active", types=BOOL),
    F("created_by", "user", null=True), F("created_at", "time"),
), via="project_id")

JOBS = Table("jobs", Job, (
    F("kind", choices=_choices(JobKind)), F("state", choices=_choices(JobState)), F("params", "json"),
    F("progress_done", types=INT), F("progress_total", types=INT), F("message", types=STR), F("error", types=STR),
    F("result", "json"), F("attempts", types=INT), F("created_by", "user", null=True), F("created_at", "time"),
    F("started_at", "time", null=True), F("finished_at", "time", null=True),
), via="project_id")

PREDICTIONS = Table("predictions", Prediction, (
    F("image", "ref", ref="images"), F("job", "ref", null=True, ref="jobs"), F("model_version", "ref", ref="model_versions"),
    F("rank", types=INT), F("label", "ref", null=True, ref="labels"), F("class_name", types=STR), F("score", types=NUMBER),
    F("rle", "json"), F("bbox", "json"), F("area", types=NUMBER), F("created_at", "time"),
), via="image__project_id", chunk=500)

ANNOTATIONS = Table("annotations", Annotation, (
    F("uid", "uuid"), F("image", "ref", ref="images"), F("label", "ref", ref="labels"),
    F("kind", choices=_choices(GeometryKind)), F("polygons", "json", null=True), F("rle", "json", null=True),
    F("bbox", "json"), F("area", types=NUMBER), F("z_order", types=INT), F("source", choices=_choices(Source)),
    F("model_version", "ref", null=True, ref="model_versions"), F("prediction", "ref", null=True, ref="predictions"),
    F("score", null=True, types=NUMBER), F("attributes", "json"), F("author", "user", null=True),
    F("created_at", "time"), F("updated_at", "time"),
), via="image__project_id", chunk=500)

REVISIONS = Table("revisions", Revision, (
    F("image", "ref", ref="images"), F("version", types=INT), F("action", choices=_choices(RevisionAction)),
    F("author", "user", null=True), F("created_at", "time"), F("annotations", "json"), F("object_count", types=INT),
    F("restored_from", null=True, types=INT), F("summary", "json"),
), via="image__project_id", order=("image_id", "version"), has_id=False, chunk=50)  # per image in version order (deltas)

REVIEW_TASKS = Table("review_tasks", ReviewTask, (
    F("image", "ref", ref="images"), F("reviewer", "user"), F("submitted_version", types=INT), F("taken_at", "time"),
    F("closed_at", "time", null=True), F("released", types=BOOL),
), via="image__project_id")

REVIEW_DECISIONS = Table("review_decisions", ReviewDecision, (
    F("image", "ref", ref="images"), F("task", "ref", null=True, ref="review_tasks"), F("reviewer", "user", null=True),
    F("annotator", "user", null=True), F("decision", choices=_choices(Verdict)), F("comment", types=STR),
    F("submitted_version", types=INT), F("version", types=INT), F("objects_added", types=INT),
    F("objects_removed", types=INT), F("objects_modified", types=INT), F("iou_sum", types=NUMBER),
    F("iou_count", types=INT), F("taken_at", "time", null=True), F("created_at", "time"),
), via="image__project_id")

OBJECT_DECISIONS = Table("object_decisions", ObjectDecision, (
    F("decision", "ref", ref="review_decisions"), F("annotation_uid", "uuid"), F("verdict", choices=_choices(Verdict)),
    F("comment", types=STR),
), via="decision__image__project_id", has_id=False)

REVIEW_COMMENTS = Table("review_comments", ReviewComment, (
    F("image", "ref", ref="images"), F("decision", "ref", null=True, ref="review_decisions"), F("author", "user", null=True),
    F("text", types=STR), F("annotation_uid", "uuid", null=True), F("x", null=True, types=NUMBER),
    F("y", null=True, types=NUMBER), F("version", types=INT), F("resolved", types=BOOL),
    F("resolved_by", "user", null=True), F("resolved_at", "time", null=True), F("created_at", "time"),
), via="image__project_id", has_id=False)

DATASET_VERSIONS = Table("dataset_versions", DatasetVersion, (
    F("name", types=STR), F("format", choices=_choices(ExportFormat)), F("filters", "json"), F("manifest", "json"),
    F("sha256", types=STR), F("size", types=INT), F("job", "ref", null=True, ref="jobs"),
    F("created_by", "user", null=True), F("created_at", "time"),
), via="project_id", files=("file",))

TIME_RECORDS = Table("time_records", TimeRecord, (
    F("image", "ref", ref="images"), F("user", "user"), F("seconds", types=NUMBER), F("object_count", types=INT),
    F("started_at", "time"), F("ended_at", "time"), F("session_started_at", "time"),
), via="image__project_id", has_id=False)

# Objects (truth, drawn) in the revisions' form: authors as usernames, label / model / prediction ids archive ids.
GROUND_TRUTH = Table("ground_truth", GroundTruth, (
    F("image", "ref", ref="images"), F("truth", "json"), F("version", types=INT), F("annotator", "user", null=True),
    F("reviewer", "user", null=True), F("marked_by", "user", null=True), F("marked_at", "time"),
), via="image__project_id", order=("image_id",), has_id=False)

# scores: ml.quality.score's, its label ids archive ids.
GROUND_TRUTH_ATTEMPTS = Table("ground_truth_attempts", GroundTruthAttempt, (
    F("image", "ref", ref="images"), F("annotator", "user"), F("status", choices=tuple(s.value for s in ATTEMPT_STATUSES)),
    F("drawn", "json"), F("version", types=INT), F("started_at", "time"), F("updated_at", "time"),
    F("submitted_at", "time", null=True), F("scores", "json", null=True),
), via="image__project_id", has_id=False)

# An annotator's own version of an image (consensus): drawn in the revisions' form, as ground-truth attempts.
REPLICAS = Table("replicas", Replica, (
    F("image", "ref", ref="images"), F("annotator", "user"), F("status", choices=_choices(ReplicaStatus)),
    F("drawn", "json"), F("version", types=INT), F("claimed_at", "time"), F("updated_at", "time"),
    F("submitted_at", "time", null=True),
), via="image__project_id", has_id=False)

# The box tool's learned shape (at most one row); its file is the row's "file" member, restored into
# the new project's model folder. Archives from before it have no such table.
PROJECT_SHAPES = Table("project_shapes", ProjectShape, (
    F("images", types=INT), F("object_count", types=INT), F("metrics", "json"), F("job", "ref", null=True, ref="jobs"),
    F("fitted_at", "time"),
), via="project_id", has_id=False)

#: In the order they are written and restored: every table after the tables it refers to.
TABLES: tuple[Table, ...] = (
    IMAGES, MODEL_VERSIONS, JOBS, PREDICTIONS, ANNOTATIONS, REVISIONS,
    REVIEW_TASKS, REVIEW_DECISIONS, OBJECT_DECISIONS, REVIEW_COMMENTS, DATASET_VERSIONS, TIME_RECORDS,
    GROUND_TRUTH, GROUND_TRUTH_ATTEMPTS, REPLICAS, PROJECT_SHAPES,
)


def check_value(spec: Field, value: Any) -> str | None:
    """Why ``value`` does not fit the field (None when it does); references and users are checked by the caller."""
    if value is None:
        return None if spec.null else "is missing (null)"
    if spec.kind == "plain":
        if spec.choices:
            return None if value in spec.choices else f"{value!r} is not one of {', '.join(spec.choices)}"
        if isinstance(value, bool) and bool not in spec.types:
            return f"{value!r} is not a {'/'.join(t.__name__ for t in spec.types)}"
        return None if isinstance(value, spec.types) else f"{value!r} is not a {'/'.join(t.__name__ for t in spec.types)}"
    if spec.kind == "time":
        from .archive import parse_time

        if not isinstance(value, str):
            return f"{value!r} is not a time"
        try:
            parsed = parse_time(value)
        except ValueError:
            return f"{value!r} is not an ISO 8601 time"
        return None if parsed is not None and parsed.tzinfo is not None else f"{value!r} has no time zone"
    if spec.kind == "uuid":
        try:
            uuid.UUID(str(value))
        except ValueError:
            return f"{value!r} is not a UUID"
        return None
    if spec.kind in ("user", "ref"):
        if spec.kind == "user" and not isinstance(value, str):
            return f"{value!r} is not a username"
        if spec.kind == "ref" and (isinstance(value, bool) or not isinstance(value, int)):
            return f"{value!r} is not an id"
        return None
    return None  # json: any value
