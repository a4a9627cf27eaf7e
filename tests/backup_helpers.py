"""A project with a bit of everything (for backups), and a canonical dump to compare two projects row by row.

``project_content`` reads every row of every table a project owns straight from the models (not
from the backup's own table specs, so a field the backup forgot shows up as a difference): ids
become positions in their table, users become usernames, files become their bytes' SHA-256.
"""
from __future__ import annotations

import hashlib
import uuid
from pathlib import Path
from typing import Any

import orjson
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import models

from annotator.annotations.models import Annotation, Prediction, Revision
from annotator.annotations.selectors import revision_objects
from annotator.annotations.services import annotations_replace, revision_restore
from annotator.consensus.models import Replica
from annotator.consensus.services import replica_save, replica_serve, replica_submit
from annotator.datasets.models import DatasetVersion
from annotator.datasets.services import ImportOptions, dataset_export_start, dataset_import
from annotator.groundtruth.models import GroundTruth, GroundTruthAttempt
from annotator.groundtruth.services import attempt_save, attempt_submit, ground_truth_mark, ground_truth_serve
from annotator.images.models import Image, ImageStatus
from annotator.images.services import image_submit
from annotator.jobs.models import Job
from annotator.jobs.services import job_execute
from annotator.learning.models import ModelKind, ModelVersion
from annotator.projects.models import Label, Membership, Project
from annotator.review.models import ObjectDecision, ReviewComment, ReviewDecision, ReviewTask
from annotator.review.services import (
    CommentInput,
    ObjectVerdict,
    comment_add,
    comment_resolve,
    review_decide,
    review_release,
    review_take,
)
from ml.geometry import polygons_to_rle
from tests.datasets import FRUITS
from tests.factories import make_images, polygon_geometry, square

User = get_user_model()


def rich_project(world: Any, *, fruits: bool = True) -> Project:
    """The world's project with the fruits dataset (accepted), edits over several revisions, a restored
    revision, a model version with predictions (one accepted as an object), a rejection with
    per-object verdicts and pinned comments (one resolved), an open review, ground truth with
    attempts (``add_ground_truth``), consensus versions (``add_consensus``) and a dataset version."""
    project = world.project
    users = world.users
    Project.objects.filter(pk=project.pk).update(description="Fruit and nuts", guidelines="# Rules\nOutline every nut.",
                                                 required_accepts=1, queue_order="uncertainty")
    Label.objects.filter(project=project, name="cat").update(
        attributes_schema={"occluded": {"type": "boolean"}, "colour": {"type": "choice", "choices": ["red", "black"]}}
    )
    project.refresh_from_db()
    if fruits:
        dataset_import(project=project, fmt="coco", path=FRUITS / "trainval.json", options=ImportOptions.from_dict({"status": "accepted"}),
                       user=users["manager"])
    cat, dog = Label.objects.get(project=project, name="cat"), Label.objects.get(project=project, name="dog")
    edited, in_review = make_images(project, 2, width=120, height=90)

    weights = Path(settings.ANNOTATOR_MODEL_DIR) / f"project-{project.pk}" / "round-1.pt"
    weights.parent.mkdir(parents=True, exist_ok=True)
    weights.write_bytes(b"not really torch weights " * 100)
    model = ModelVersion.objects.create(
        project=project, name="round 1", kind=ModelKind.TRAINED, checkpoint=str(weights), class_names=["cat", "dog"],
        metrics={"segm_map": 0.41, "per_class": {"cat": 0.5}}, curve=[{"epoch": 1, "loss": 1.25}, {"epoch": 2, "loss": 0.5}],
        params={"epochs": 2}, is_active=True, created_by=users["manager"],
    )
    job = Job.objects.create(kind="preannotate", project=project, state="succeeded", params={"threshold": 0.5},
                             result={"predictions": 2}, created_by=users["manager"], progress_done=2, progress_total=2)
    predictions = [
        Prediction.objects.create(
            image=edited, job=job, model_version=model, rank=rank, label=label, class_name=label.name, score=score,
            rle=polygons_to_rle([{"exterior": square(10 + 40 * rank, 10, 25), "holes": []}], width=120, height=90),
            bbox=[10 + 40 * rank, 10, 25, 25], area=625.0,
        )
        for rank, (label, score) in enumerate([(cat, 0.93), (dog, 0.61)])
    ]
    mask = {"type": "mask", "rle": polygons_to_rle([{"exterior": square(60, 50, 20), "holes": []}], width=120, height=90)}
    ring_with_hole = polygon_geometry([[5.5, 5.25], [55.125, 5.0], [55.0, 45.75], [5.0, 45.0]],
                                      holes=[[[15.0, 15.0], [30.0, 15.0], [30.0, 30.0], [15.0, 30.0]]])
    two_parts = polygon_geometry(square(70, 5, 10), square(90, 5, 10.333333333333334))
    uids = [str(uuid.uuid4()) for _ in range(4)]
    annotator = users["annotator"]
    steps = [
        [{"uid": uids[0], "label": cat.pk, "geometry": ring_with_hole, "attributes": {"occluded": True}}],
        [{"uid": uids[0], "label": cat.pk, "geometry": ring_with_hole, "attributes": {"occluded": False, "colour": "red"}},
         {"uid": uids[1], "label": dog.pk, "geometry": two_parts, "z_order": 2}],
        [{"uid": uids[1], "label": dog.pk, "geometry": two_parts, "z_order": 2},
         {"uid": uids[2], "label": cat.pk, "geometry": mask},
         {"uid": uids[3], "label": cat.pk, "geometry": predictions[0].geometry, "source": "model", "score": 0.93,
          "model_version": model.pk, "prediction": predictions[0].pk}],
    ]
    image = edited
    for items in steps:
        image, _, _ = annotations_replace(image=image, user=annotator, base_version=image.version, items=items)
    image, _, _ = revision_restore(image=image, version=2, user=annotator, base_version=image.version)
    image, _, _ = annotations_replace(image=image, user=annotator, base_version=image.version, items=steps[2])
    image = image_submit(image=image, user=annotator)
    reviewer = users["reviewer"]
    image = review_take(image=image, user=reviewer)
    review_decide(
        image=image, user=reviewer, decision="reject", version=image.version, comment="Two objects need work",
        objects=[ObjectVerdict(uid=uuid.UUID(uids[1]), decision="reject", comment="the second part is too wide"),
                 ObjectVerdict(uid=uuid.UUID(uids[2]), decision="accept")],
        comments=[CommentInput(text="Tighten this outline", uid=uuid.UUID(uids[1])), CommentInput(text="A nut is missing here", x=12.5, y=80.25)],
    )
    answer = comment_add(image=Image.objects.get(pk=image.pk), user=annotator, comment=CommentInput(text="Which nut?", x=3.0, y=4.0))
    comment_resolve(comment=ReviewComment.objects.filter(image=image).order_by("id").first(), user=annotator, resolved=True)
    del answer

    in_review, _, _ = annotations_replace(image=in_review, user=users["annotator2"], base_version=0,
                                          items=[{"label": dog.pk, "geometry": polygon_geometry(square(1, 1, 30))}])
    in_review = image_submit(image=in_review, user=users["annotator2"])
    review_take(image=in_review, user=users["manager"])
    review_release(image=in_review, user=users["manager"])  # a released task, then an open one
    review_take(image=in_review, user=reviewer)

    add_ground_truth(world)
    add_consensus(world)

    export = dataset_export_start(project=project, params={"format": "coco", "status": "all", "name": "v1"}, user=users["manager"],
                                  enqueue=False)
    job_execute(job_id=export.pk)
    export.refresh_from_db()
    assert export.state == "succeeded", export.error
    return Project.objects.get(pk=project.pk)


def add_ground_truth(world: Any) -> list[Image]:
    """Two ground-truth images (one drawn by annotator2, one by annotator, both accepted by the
    reviewer), the rate at 0.25, a scored attempt by annotator (a wrong label and a missing object:
    conflicts and a confusion to remap) and an attempt in progress by annotator2."""
    project, users = world.project, world.users
    cat, dog = Label.objects.get(project=project, name="cat"), Label.objects.get(project=project, name="dog")
    images = make_images(project, 2, width=100, height=80)
    for image, author in zip(images, ("annotator2", "annotator")):
        annotations_replace(image=image, user=users[author], base_version=0, items=[
            {"label": cat.pk, "geometry": polygon_geometry(square(10, 10, 30))},
            {"label": dog.pk, "geometry": polygon_geometry(square(50, 20, 25))},
        ])
        Image.objects.filter(pk=image.pk).update(status=ImageStatus.ACCEPTED, assignee=users[author], reviewer=users["reviewer"])
        ground_truth_mark(image=Image.objects.get(pk=image.pk), user=users["manager"])
    Project.objects.filter(pk=project.pk).update(ground_truth_rate=0.25, ground_truth_feedback=True)
    for who, drawn, submit in (
        ("annotator", [{"label": dog.pk, "geometry": polygon_geometry(square(11, 10, 30))}], True),
        ("annotator2", [{"label": cat.pk, "geometry": polygon_geometry(square(12, 12, 20))}], False),
    ):
        attempt = ground_truth_serve(project=project, user=users[who])
        assert attempt is not None, who
        attempt, _, _ = attempt_save(attempt=attempt, user=users[who], base_version=attempt.version, items=drawn)
        if submit:
            attempt_submit(attempt=attempt, user=users[who])
    project.refresh_from_db()
    return [Image.objects.get(pk=image.pk) for image in images]


def add_consensus(world: Any) -> list[Image]:
    """Two annotators per image (timeout 5 hours) and two new images from the queue: the first
    complete (annotator's and annotator2's versions submitted, merged, with its agreement), the
    second collecting (annotator's version in progress, one slot free)."""
    project, users = world.project, world.users
    Project.objects.filter(pk=project.pk).update(consensus_annotators=2, consensus_timeout_hours=5)
    project.refresh_from_db()
    cat, dog = Label.objects.get(project=project, name="cat"), Label.objects.get(project=project, name="dog")
    complete, collecting = make_images(project, 2, width=110, height=80)  # (other pictures than the ground truth's)
    for who, drawn, submit in (
        ("annotator", [(cat, square(10, 10, 30)), (dog, square(50, 20, 25))], True),
        ("annotator2", [(cat, square(12, 10, 30))], True),
        ("annotator", [(dog, square(5, 5, 20))], False),
    ):
        replica = replica_serve(project=project, user=users[who])
        assert replica is not None, who
        items = [{"label": label.pk, "geometry": polygon_geometry(ring)} for label, ring in drawn]
        replica, _, _ = replica_save(replica=replica, user=users[who], base_version=replica.version, items=items)
        if submit:
            replica_submit(replica=replica, user=users[who])
    images = [Image.objects.get(pk=image.pk) for image in (complete, collecting)]
    assert images[0].agreement is not None and not images[0].replicas_open and images[1].replicas_open
    return images


# --- Comparing two projects ----------------------------------------------------------------

# (model, lookup to the project, fields left out: ids derived from other ids, where files are stored)
_TABLES: list[tuple[type[models.Model], str, set[str]]] = [
    (Label, "project", set()),
    (Membership, "project", set()),
    (ModelVersion, "project", {"checkpoint"}),
    (Job, "project", {"worker", "heartbeat_at", "sent_at", "result_file", "cancel_requested"}),
    (Image, "project", {"file", "thumbnail"}),
    (Prediction, "image__project", set()),
    (Annotation, "image__project", {"digest"}),
    (Revision, "image__project", set()),
    (ReviewTask, "image__project", set()),
    (ReviewDecision, "image__project", set()),
    (ObjectDecision, "decision__image__project", set()),
    (ReviewComment, "image__project", set()),
    (DatasetVersion, "project", {"file"}),
    (GroundTruth, "image__project", set()),
    (GroundTruthAttempt, "image__project", set()),
    (Replica, "image__project", set()),
]


def _sha(field_file: Any) -> str | None:
    if not field_file:
        return None
    with field_file.open("rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()


def project_content(project: Project, *, skip_jobs: tuple[str, ...] = ("backup", "restore", "duplicate")) -> dict[str, Any]:
    """Every row the project owns, ids replaced by positions (see the module docstring). Geometry is compared as
    the bytes orjson writes for it, so a float that changed in its last digit is a difference."""
    positions: dict[type[models.Model], dict[int, int]] = {}
    querysets = {}
    for model, via, _ in _TABLES:
        # Revisions by image and version: a restore writes each image's in turn (deltas follow their base).
        qs = model._default_manager.filter(**{via: project}).order_by(*(("image_id", "version") if model is Revision else ("pk",)))
        if model is Job:
            qs = qs.exclude(kind__in=skip_jobs)
        querysets[model] = qs
        positions[model] = {pk: index for index, pk in enumerate(qs.values_list("pk", flat=True))}
    usernames = dict(User.objects.values_list("id", "username"))
    out: dict[str, Any] = {
        "project": {f: getattr(project, f) for f in ("description", "guidelines", "required_accepts", "queue_order", "created_at",
                                                     "ground_truth_rate", "ground_truth_feedback", "consensus_annotators", "consensus_timeout_hours")},
        "created_by": usernames.get(project.created_by_id),
    }
    for model, _via, skip in _TABLES:
        rows = []
        for obj in querysets[model]:
            row: dict[str, Any] = {}
            for f in model._meta.concrete_fields:
                # (a primary key that is a reference, as ground truth's image, is compared as one)
                if (f.primary_key and not f.is_relation) or f.name in skip or f.name == "project":
                    continue
                value = getattr(obj, f.attname)
                if f.is_relation:
                    target = f.related_model
                    if target is User:
                        value = usernames.get(value)
                    elif value is not None:
                        value = ("missing", value) if value not in positions[target] else positions[target][value]
                elif f.name in ("polygons", "rle"):
                    value = orjson.dumps(value)
                elif model is Revision and f.name == "annotations":
                    # The set as it stood, whether the row holds it whole or as a delta.
                    value = [_revision_object(o, positions, usernames) for o in revision_objects(obj)]
                elif model is Revision and f.name == "delta":
                    continue
                elif (model, f.name) in ((GroundTruth, "truth"), (GroundTruthAttempt, "drawn"), (Replica, "drawn")):
                    value = [_revision_object(o, positions, usernames) for o in value]
                elif model is GroundTruthAttempt and f.name == "scores":
                    value = _scores(value, positions)
                row[f.name] = value
            if model is Image:
                row["file_sha256"], row["thumbnail_sha256"] = _sha(obj.file), _sha(obj.thumbnail)
            if model is ModelVersion:
                path = Path(obj.checkpoint) if obj.checkpoint else None
                row["weights_sha256"] = hashlib.sha256(path.read_bytes()).hexdigest() if path and path.is_file() else None
            if model is DatasetVersion:
                row["file_sha256"] = _sha(obj.file)
            rows.append(row)
        out[model.__name__] = rows
    return out


def _revision_object(obj: dict[str, Any], positions: dict[Any, dict[int, int]], usernames: dict[int, str]) -> dict[str, Any]:
    restored = dict(obj)
    restored["label"] = positions[Label].get(obj["label"])
    restored["model_version"] = positions[ModelVersion].get(obj["model_version"]) if obj.get("model_version") else None
    restored["prediction"] = positions[Prediction].get(obj["prediction"]) if obj.get("prediction") else None
    restored["author"] = usernames.get(obj["author"]) if obj.get("author") else None
    restored["geometry"] = orjson.dumps(obj["geometry"])
    return restored


def _scores(scores: dict[str, Any] | None, positions: dict[Any, dict[int, int]]) -> Any:
    """ml.quality.score's result with label ids as positions (keys of per_label and confusion, conflicts' labels)."""
    if scores is None:
        return None

    def label(value: Any) -> Any:
        key = int(value) if isinstance(value, str) and value.isdigit() else value
        return ("label", positions[Label][key]) if isinstance(key, int) and key in positions[Label] else value

    def keyed(values: dict[str, Any]) -> dict[str, Any]:
        return {str(label(key)): value for key, value in values.items()}

    return {
        **scores,
        "per_label": keyed(scores["per_label"]),
        "confusion": {str(label(truth)): keyed(row) for truth, row in scores["confusion"].items()},
        "conflicts": [{**c, "truth_label": label(c["truth_label"]), "attempt_label": label(c["attempt_label"])} for c in scores["conflicts"]],
    }


def assert_same_content(original: dict[str, Any], restored: dict[str, Any]) -> None:
    """Table by table, row by row, so that a failure names the first row that differs."""
    assert original.keys() == restored.keys()
    for table in original:
        a, b = original[table], restored[table]
        if isinstance(a, list):
            assert len(a) == len(b), f"{table}: {len(a)} rows, restored {len(b)}"
            for index, (row_a, row_b) in enumerate(zip(a, b)):
                assert row_a == row_b, f"{table} row {index} differs:\n{row_a}\n{row_b}"
        else:
            assert a == b, f"{table} differs"
