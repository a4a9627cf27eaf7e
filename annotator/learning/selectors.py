"""Reads for model-assisted annotation: model versions, images to pre-annotate or train on, correction stats."""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from django.db.models import Count, Exists, OuterRef, QuerySet

from annotator.annotations.models import Annotation, Prediction
from annotator.images.models import Image, ImageStatus
from annotator.projects.models import Project
from ml.geometry import geometry_iou
from ml.metrics import correction_stats

from .models import ModelVersion

#: A proposal counts as "accepted unchanged" when the final object has its label and IoU >= this.
UNCHANGED_IOU = 0.99
#: Correction stats read at most this many accepted images per version (newest first) to keep pages fast.
CORRECTION_SAMPLE = 500


def model_versions_of(project: Project) -> QuerySet[ModelVersion]:
    return (
        ModelVersion.objects.filter(project=project)
        .select_related("created_by")
        .annotate(prediction_count=Count("predictions"))
        .order_by("-created_at", "-id")
    )


def active_model_of(project: Project) -> ModelVersion | None:
    return ModelVersion.objects.filter(project=project, is_active=True).first()


def images_without_annotations(project: Project) -> QuerySet[Image]:
    """The default pre-annotation set: images nobody has drawn on yet."""
    has_annotations = Annotation.objects.filter(image=OuterRef("pk"))
    return Image.objects.filter(project=project).exclude(Exists(has_annotations)).order_by("id")


def accepted_images(project: Project) -> QuerySet[Image]:
    """Images whose labels went through review: the training and evaluation ground truth."""
    has_annotations = Annotation.objects.filter(image=OuterRef("pk"))
    return Image.objects.filter(project=project, status=ImageStatus.ACCEPTED).filter(Exists(has_annotations)).order_by("id")


def accepted_object_count(project: Project) -> int:
    """The objects on the accepted images (what a learned shape learns from)."""
    return Annotation.objects.filter(image__project=project, image__status=ImageStatus.ACCEPTED).count()


def annotation_instances(image: Image) -> list[dict[str, Any]]:
    """The image's annotations as ml.metrics instances (label name + geometry), in z-order."""
    rows = Annotation.objects.filter(image=image).select_related("label").order_by("z_order", "id")
    return [
        {"id": a.pk, "label": a.label.name, "geometry": a.geometry, "prediction": a.prediction_id}
        for a in rows
    ]


def _prediction_label(prediction: Prediction) -> str:
    return prediction.label.name if prediction.label is not None else prediction.class_name


def model_version_corrections(version: ModelVersion, *, limit: int = CORRECTION_SAMPLE) -> dict[str, Any]:
    """How much people changed this version's proposals on the images they finished (see model_versions_corrections)."""
    return model_versions_corrections([version], limit=limit)[version.pk]


def model_versions_corrections(versions: Sequence[ModelVersion], *, limit: int = CORRECTION_SAMPLE) -> dict[int, dict[str, Any]]:
    """For each version, how much people changed its proposals on the images they finished (accepted).

    Where the editor kept the link from an object to the proposal it started from
    (Annotation.prediction), that link decides which proposal became which object; on images
    without links, proposals are matched to the final objects by IoU (ml.metrics.correction_stats).
    Proposals without a final object were deleted, final objects without a proposal were added.
    Each version reads its newest ``limit`` accepted images; the queries do not grow with the
    number of versions or images (the models page lists them all).
    """
    if not versions:
        return {}
    ids = [v.pk for v in versions]
    pairs = (
        Prediction.objects.filter(model_version__in=ids, image__status=ImageStatus.ACCEPTED)
        .values_list("model_version_id", "image_id").distinct().order_by("model_version_id", "-image_id")
    )
    chosen: dict[int, list[int]] = defaultdict(list)
    for version_id, image_id in pairs:
        if len(chosen[version_id]) < limit:
            chosen[version_id].append(image_id)
    image_ids = {pk for pks in chosen.values() for pk in pks}
    images = {image.pk: image for image in Image.objects.filter(pk__in=image_ids).only("id", "width", "height")}
    proposals: dict[tuple[int, int], list[Prediction]] = defaultdict(list)
    for prediction in Prediction.objects.filter(model_version__in=ids, image__in=image_ids).select_related("label"):
        proposals[(prediction.model_version_id, prediction.image_id)].append(prediction)
    accepted: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for a in Annotation.objects.filter(image__in=image_ids).select_related("label").order_by("image_id", "z_order", "id"):
        accepted[a.image_id].append({"id": a.pk, "label": a.label.name, "geometry": a.geometry, "prediction": a.prediction_id})
    return {
        version.pk: _corrections_summary([
            _image_corrections(images[pk], proposals[(version.pk, pk)], accepted[pk]) for pk in chosen.get(version.pk, [])
        ])
        for version in versions
    }


def _corrections_summary(per_image: list[dict[str, Any]]) -> dict[str, Any]:
    totals: dict[str, float] = defaultdict(float)
    for stats in per_image:
        for key in ("proposals", "accepted", "unchanged", "edited", "relabeled", "deleted", "added", "iou_sum", "matched"):
            totals[key] += stats[key]
    proposals_total = int(totals["proposals"])
    accepted_total = int(totals["accepted"])
    corrections = int(totals["edited"] + totals["deleted"] + totals["added"])
    return {
        "images": len(per_image),
        "proposals": proposals_total,
        "accepted": accepted_total,
        "unchanged": int(totals["unchanged"]),
        "edited": int(totals["edited"]),
        "relabeled": int(totals["relabeled"]),
        "deleted": int(totals["deleted"]),
        "added": int(totals["added"]),
        "unchanged_share": totals["unchanged"] / proposals_total if proposals_total else None,
        "mean_iou": totals["iou_sum"] / totals["matched"] if totals["matched"] else None,
        # Edits + deletions + additions per final object: what the human-in-the-loop loop should lower.
        "corrections_per_object": corrections / accepted_total if accepted_total else None,
    }


def _image_corrections(image: Image, proposals: list[Prediction], accepted: list[dict[str, Any]]) -> dict[str, Any]:
    width, height = image.width, image.height
    by_id = {p.pk: p for p in proposals}
    linked = [(a, by_id[a["prediction"]]) for a in accepted if a["prediction"] in by_id]
    if not linked:
        stats = correction_stats(
            [{"label": _prediction_label(p), "geometry": p.geometry, "score": p.score} for p in proposals],
            accepted, width=width, height=height, unchanged_iou=UNCHANGED_IOU,
        )
        matched = stats["unchanged"] + stats["edited"]
        iou_sum = (stats["mean_iou"] or 0.0) * matched
        return {**stats, "matched": matched, "iou_sum": iou_sum}
    unchanged = relabeled = 0
    iou_sum = 0.0
    used: set[int] = set()
    pairs = 0
    for annotation, prediction in linked:
        if prediction.pk in used:
            continue  # one proposal split into two objects: the second one counts as added
        used.add(prediction.pk)
        pairs += 1
        iou = geometry_iou(annotation["geometry"], prediction.geometry, width=width, height=height)
        same_label = annotation["label"] == _prediction_label(prediction)
        relabeled += not same_label
        unchanged += same_label and iou >= UNCHANGED_IOU
        iou_sum += iou
    return {
        "proposals": len(proposals),
        "accepted": len(accepted),
        "unchanged": unchanged,
        "edited": pairs - unchanged,
        "relabeled": relabeled,
        "deleted": len(proposals) - pairs,
        "added": len(accepted) - pairs,
        "matched": pairs,
        "iou_sum": iou_sum,
    }
