"""REST endpoints for an image's annotations, revisions and model predictions."""
from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotator.consensus.selectors import replica_of
from annotator.consensus.services import replica_save
from annotator.core.api import load_image, validated
from annotator.core.errors import DomainError, Forbidden, NotFound
from annotator.groundtruth.selectors import attempt_of, truth_hidden_reason
from annotator.groundtruth.services import attempt_save
from annotator.images.selectors import edit_denied_reason
from ml.geometry import GeometryError, convert

from .models import Revision
from .selectors import (
    ANY_VALUE,
    annotation_to_dict,
    annotations_of,
    attribute_matches,
    predictions_of,
    revision_objects,
    revisions_of,
)
from .services import annotations_patch, annotations_replace, patch_objects, revision_restore


class AnnotationSerializer(serializers.Serializer):
    uid = serializers.UUIDField(required=False)
    label = serializers.IntegerField()
    geometry = serializers.JSONField(help_text='{"type":"polygons","polygons":[{"exterior":[[x,y],...],"holes":[...]}]} or {"type":"mask","rle":{"size":[h,w],"counts":"..."}}')
    z_order = serializers.IntegerField(required=False, default=0)
    source = serializers.ChoiceField(choices=["manual", "model", "import"], required=False, default="manual")
    score = serializers.FloatField(required=False, allow_null=True)
    model_version = serializers.IntegerField(required=False, allow_null=True)
    prediction = serializers.IntegerField(required=False, allow_null=True)
    attributes = serializers.DictField(required=False)


class AnnotationOutSerializer(AnnotationSerializer):
    bbox = serializers.ListField(child=serializers.FloatField())
    area = serializers.FloatField()
    author = serializers.IntegerField(allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class AnnotationSetSerializer(serializers.Serializer):
    version = serializers.IntegerField(min_value=0, help_text="The image version your edit is based on.")
    # Each object is checked by the service, with reasons naming the object; DRF walking (or
    # re-encoding) every geometry here would double the cost of a save.
    annotations = serializers.ListField(allow_empty=True, help_text="Objects as returned by GET (see AnnotationSerializer)")


class AnnotationPatchSerializer(serializers.Serializer):
    version = serializers.IntegerField(min_value=0, help_text="The image version your edit is based on.")
    changed = serializers.ListField(
        allow_empty=True, required=False, default=list,
        help_text="Objects added or changed, each whole as in a PUT (with its uid; one without is new)",
    )
    # The uids are checked by the service (one pass, reasons naming the uid), not field by field here.
    removed = serializers.ListField(allow_empty=True, required=False, default=list, help_text="uids of the objects deleted")
    order = serializers.ListField(
        required=False,
        help_text="uids of the whole set in order (every object kept and every one sent); default: stored order, new ones last",
    )


class ObjectRepairSerializer(serializers.Serializer):
    uid = serializers.UUIDField()
    index = serializers.IntegerField(help_text="Position of the object in the set that was sent.")
    changes = serializers.ListField(child=serializers.CharField(), help_text="What was repaired (codes, see docs/formats.md).")
    message = serializers.CharField(help_text="The repairs in plain words.")
    geometry = serializers.JSONField(help_text="The geometry as stored.")


class AnnotationSetOutSerializer(serializers.Serializer):
    image = serializers.IntegerField()
    version = serializers.IntegerField()
    repaired = ObjectRepairSerializer(
        many=True, required=False, help_text="After a save: objects whose geometry the server repaired (clipped, untangled…).",
    )
    annotations = AnnotationOutSerializer(many=True, required=False, help_text="Left out with `Prefer: return=minimal`.")


class RevisionSerializer(serializers.ModelSerializer):
    author = serializers.CharField(source="author.username", default=None, allow_null=True)

    class Meta:
        model = Revision
        fields = ["version", "action", "author", "created_at", "object_count", "restored_from", "summary"]


class RevisionRestoreSerializer(serializers.Serializer):
    version = serializers.IntegerField(min_value=0, help_text="The current image version (for the conflict check).")


class AnnotationSetApi(APIView):
    @extend_schema(
        parameters=[
            OpenApiParameter(
                "attribute", str,
                description="Only objects whose attribute of this name matches `value` (for reading: a PUT replaces the whole set).",
            ),
            OpenApiParameter(
                "value", str,
                description='"*": has a value, "-": has none, else the value ("yes"/"no" for flags; a member of a list).',
            ),
        ],
        responses=AnnotationSetOutSerializer,
    )
    def get(self, request: Request, pk: int) -> Response:
        image = load_image(request, pk)
        attempt = attempt_of(image, request.user)
        replica = replica_of(image, request.user)
        if attempt is not None:  # a ground-truth image they try: their own objects, never the truth
            version, annotations = attempt.version, attempt.drawn
        elif replica is not None:  # one of several annotators' versions: theirs alone
            version, annotations = replica.version, replica.drawn
        elif reason := truth_hidden_reason(image, request.user):
            raise Forbidden(reason)
        else:
            version, annotations = image.version, [annotation_to_dict(a) for a in annotations_of(image)]
        name = request.query_params.get("attribute")
        if name:
            value = request.query_params.get("value", ANY_VALUE)
            annotations = [a for a in annotations if attribute_matches(a["attributes"], name, value)]
        return Response({"image": image.pk, "version": version, "annotations": annotations})

    @extend_schema(request=AnnotationSetSerializer, responses={200: AnnotationSetOutSerializer})
    def put(self, request: Request, pk: int) -> Response:
        return self._save(request, pk, AnnotationSetSerializer)

    @extend_schema(
        request=AnnotationPatchSerializer, responses={200: AnnotationSetOutSerializer},
        description="Change some objects of the set: what an autosave after an edit sends. The outcome, checks, "
        "409 and revision are those of a PUT of the whole set.",
    )
    def patch(self, request: Request, pk: int) -> Response:
        return self._save(request, pk, AnnotationPatchSerializer)

    def _save(self, request: Request, pk: int, serializer: type[serializers.Serializer]) -> Response:
        """A PUT (the whole set) or a PATCH (what changed) of the image's set, or of the caller's own copy of it."""
        image = load_image(request, pk)
        replica = replica_of(image, request.user)
        if replica is None and (reason := edit_denied_reason(request.user, image)):
            raise Forbidden(reason)
        data = validated(serializer, request.data)
        is_patch = "annotations" not in data

        def whole(version: int, objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
            """The set a copy is saved with; on a stale base the copy's own (its save answers 409)."""
            if not is_patch:
                return data["annotations"]
            if data["version"] != version:
                return objects
            return patch_objects(objects, changed=data["changed"], removed=data["removed"], order=data.get("order"))

        if replica is not None:  # the workflow's refusal (or a 409 once it was abandoned) comes from the save
            replica, drawn, repaired = replica_save(
                replica=replica, user=request.user, base_version=data["version"], items=whole(replica.version, replica.drawn),
            )
            return Response({"image": image.pk, "version": replica.version, "repaired": repaired, "annotations": drawn})
        attempt = attempt_of(image, request.user)
        if attempt is not None:
            attempt, drawn, repaired = attempt_save(
                attempt=attempt, user=request.user, base_version=data["version"], items=whole(attempt.version, attempt.drawn),
            )
            return Response({"image": image.pk, "version": attempt.version, "repaired": repaired, "annotations": drawn})
        # RFC 7240: autosave only needs the new version, not the set it just sent, and what the
        # server repaired (so the editor can replace those objects in place).
        minimal = "return=minimal" in request.headers.get("Prefer", "")
        if is_patch:
            image, rows, repaired = annotations_patch(
                image=image, user=request.user, base_version=data["version"], changed=data["changed"],
                removed=data["removed"], order=data.get("order"), echo=not minimal,
            )
        else:
            image, rows, repaired = annotations_replace(
                image=image, user=request.user, base_version=data["version"], items=data["annotations"], echo=not minimal,
            )
        if minimal:
            return Response(
                {"image": image.pk, "version": image.version, "repaired": repaired},
                headers={"Preference-Applied": "return=minimal"},
            )
        return Response({
            "image": image.pk, "version": image.version, "repaired": repaired,
            "annotations": [annotation_to_dict(r) for r in rows],
        })


class RevisionListApi(APIView):
    @extend_schema(responses=RevisionSerializer(many=True))
    def get(self, request: Request, pk: int) -> Response:
        image = load_image(request, pk)
        if attempt_of(image, request.user) is not None or replica_of(image, request.user) is not None:
            return Response([])  # the image's history is the truth's (or the merge's): not for those who try it
        if reason := truth_hidden_reason(image, request.user):
            raise Forbidden(reason)
        # The list shows no objects: their sets (up to megabytes a snapshot) are not read.
        rows = revisions_of(image).defer("annotations", "delta")[:500]
        return Response(RevisionSerializer(rows, many=True).data)


class RevisionDetailApi(APIView):
    @extend_schema(responses=dict)
    def get(self, request: Request, pk: int, version: int) -> Response:
        image = load_image(request, pk)
        revision = revisions_of(image).filter(version=version).first()
        if revision is None or attempt_of(image, request.user) is not None:
            raise NotFound(f"Revision {version} does not exist for this image.")
        if reason := truth_hidden_reason(image, request.user):
            raise Forbidden(reason)
        return Response({**RevisionSerializer(revision).data, "annotations": revision_objects(revision)})


class RevisionRestoreApi(APIView):
    @extend_schema(request=RevisionRestoreSerializer, responses=AnnotationSetOutSerializer)
    def post(self, request: Request, pk: int, version: int) -> Response:
        image = load_image(request, pk)
        if attempt_of(image, request.user) is not None or replica_of(image, request.user) is not None:
            raise NotFound(f"Revision {version} does not exist for this image.")
        reason = edit_denied_reason(request.user, image)
        if reason:
            raise Forbidden(reason)
        base = validated(RevisionRestoreSerializer, request.data)["version"]
        image, rows, repaired = revision_restore(image=image, version=version, user=request.user, base_version=base)
        return Response({
            "image": image.pk, "version": image.version, "repaired": repaired,
            "annotations": [annotation_to_dict(r) for r in rows],
        })


class PredictionListApi(APIView):
    @extend_schema(parameters=[OpenApiParameter("min_score", float), OpenApiParameter("model_version", int)], responses=dict)
    def get(self, request: Request, pk: int) -> Response:
        image = load_image(request, pk)
        try:
            min_score = float(request.query_params.get("min_score", 0) or 0)
            model_version = request.query_params.get("model_version")
            model_version_id = int(model_version) if model_version else None
        except ValueError:
            raise DomainError("min_score must be a number and model_version an id") from None
        predictions = [
            {
                "id": p.pk, "label": p.label_id, "class_name": p.class_name, "score": p.score,
                "geometry": p.geometry, "bbox": p.bbox, "area": p.area, "model_version": p.model_version_id,
            }
            for p in predictions_of(image, min_score=min_score, model_version=model_version_id)
        ]
        return Response({"image": image.pk, "predictions": predictions})


class ConvertSerializer(serializers.Serializer):
    geometry = serializers.JSONField()
    to = serializers.ChoiceField(choices=["polygons", "mask"])
    width = serializers.IntegerField(min_value=1, max_value=100_000)
    height = serializers.IntegerField(min_value=1, max_value=100_000)
    tolerance = serializers.FloatField(min_value=0, max_value=50, default=0.0)


class GeometryConvertApi(APIView):
    """Polygon ⇄ mask conversion with the server's geometry rules, so the editor and exports agree."""

    @extend_schema(request=ConvertSerializer, responses=dict)
    def post(self, request: Request) -> Response:
        data = validated(ConvertSerializer, request.data)
        try:
            geometry = convert(data["geometry"], to=data["to"], width=data["width"], height=data["height"], tolerance=data["tolerance"])
        except GeometryError as exc:
            raise DomainError(str(exc)) from None
        return Response({"geometry": geometry})
