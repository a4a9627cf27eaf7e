"""REST endpoints for ground truth: marking images, the attempts with their scores, the quality report."""
from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotator.core.access import Capability
from annotator.core.api import load_image, load_project
from annotator.core.errors import NotFound

from . import services
from .models import GroundTruth, GroundTruthAttempt
from .selectors import attempts_of, ground_truth_report


class GroundTruthSerializer(serializers.ModelSerializer):
    annotator = serializers.CharField(source="annotator.username", default=None, allow_null=True, read_only=True)
    reviewer = serializers.CharField(source="reviewer.username", default=None, allow_null=True, read_only=True)
    marked_by = serializers.CharField(source="marked_by.username", default=None, allow_null=True, read_only=True)
    object_count = serializers.SerializerMethodField()

    class Meta:
        model = GroundTruth
        fields = ["image", "version", "object_count", "annotator", "reviewer", "marked_by", "marked_at"]

    def get_object_count(self, truth: GroundTruth) -> int:
        return len(truth.truth)


class AttemptSerializer(serializers.ModelSerializer):
    annotator = serializers.CharField(source="annotator.username", read_only=True)
    object_count = serializers.SerializerMethodField()
    precision = serializers.SerializerMethodField()
    recall = serializers.SerializerMethodField()
    f1 = serializers.SerializerMethodField()
    mean_iou = serializers.SerializerMethodField()

    class Meta:
        model = GroundTruthAttempt
        fields = [
            "id", "image", "annotator", "status", "version", "object_count", "started_at", "submitted_at",
            "precision", "recall", "f1", "mean_iou", "scores",
        ]

    def get_object_count(self, attempt: GroundTruthAttempt) -> int:
        return len(attempt.drawn)

    def _score(self, attempt: GroundTruthAttempt, name: str) -> float | None:
        return (attempt.scores or {}).get(name)

    def get_precision(self, attempt: GroundTruthAttempt) -> float | None:
        return self._score(attempt, "precision")

    def get_recall(self, attempt: GroundTruthAttempt) -> float | None:
        return self._score(attempt, "recall")

    def get_f1(self, attempt: GroundTruthAttempt) -> float | None:
        return self._score(attempt, "f1")

    def get_mean_iou(self, attempt: GroundTruthAttempt) -> float | None:
        return self._score(attempt, "mean_iou")


class LabelQualitySerializer(serializers.Serializer):
    label = serializers.JSONField(help_text="The truth's label id.")
    name = serializers.CharField(allow_null=True)
    tp = serializers.IntegerField()
    fp = serializers.IntegerField()
    fn = serializers.IntegerField()
    precision = serializers.FloatField(allow_null=True)
    recall = serializers.FloatField(allow_null=True)
    f1 = serializers.FloatField(allow_null=True)
    mean_iou = serializers.FloatField(allow_null=True, help_text="Of matched objects whose truth has this label.")


class AnnotatorQualitySerializer(serializers.Serializer):
    username = serializers.CharField()
    attempts = serializers.IntegerField()
    tp = serializers.IntegerField()
    fp = serializers.IntegerField()
    fn = serializers.IntegerField()
    precision = serializers.FloatField(allow_null=True)
    recall = serializers.FloatField(allow_null=True)
    f1 = serializers.FloatField(allow_null=True)
    mean_iou = serializers.FloatField(allow_null=True)
    per_label = LabelQualitySerializer(many=True)


class GroundTruthReportSerializer(serializers.Serializer):
    ground_truth_images = serializers.IntegerField()
    attempts = serializers.IntegerField(help_text="Submitted (scored) attempts.")
    annotators = AnnotatorQualitySerializer(many=True)
    labels = LabelQualitySerializer(many=True)
    confusion = serializers.DictField(
        child=serializers.DictField(child=serializers.IntegerField()),
        help_text='Truth label id → drawn label id → count; "missing" (drawn side) and "extra" (truth side) for unmatched objects.',
    )
    conflicts = serializers.ListField(
        child=serializers.DictField(), help_text="ml.quality conflicts (missing, extra, wrong_label, low_overlap) with image and annotator.",
    )


class GroundTruthApi(APIView):
    """Make an accepted image ground truth (its objects frozen), or an ordinary image again."""

    @extend_schema(responses=GroundTruthSerializer)
    def get(self, request: Request, pk: int) -> Response:
        image = load_image(request, pk, Capability.MANAGE)
        truth = GroundTruth.objects.filter(image=image).select_related("annotator", "reviewer", "marked_by").first()
        if truth is None:
            raise NotFound("This image is not ground truth.")
        return Response(GroundTruthSerializer(truth).data)

    @extend_schema(request=None, responses={201: GroundTruthSerializer})
    def post(self, request: Request, pk: int) -> Response:
        image = load_image(request, pk, Capability.MANAGE)
        truth = services.ground_truth_mark(image=image, user=request.user)
        return Response(GroundTruthSerializer(truth).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, pk: int) -> Response:
        image = load_image(request, pk, Capability.MANAGE)
        services.ground_truth_unmark(image=image, user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class AttemptListApi(APIView):
    """Every attempt at the project's ground truth, newest submission first, with its scores."""

    @extend_schema(responses=AttemptSerializer(many=True))
    def get(self, request: Request, pk: int) -> Response:
        project = load_project(request, pk, Capability.MANAGE)
        return Response(AttemptSerializer(attempts_of(project)[:1000], many=True).data)


class GroundTruthReportApi(APIView):
    """How well each annotator reproduces the ground truth: per annotator and per label."""

    @extend_schema(responses=GroundTruthReportSerializer)
    def get(self, request: Request, pk: int) -> Response:
        project = load_project(request, pk, Capability.MANAGE)
        return Response(ground_truth_report(project))


class AttemptDetailSerializer(AttemptSerializer):
    annotations = serializers.JSONField(source="drawn", read_only=True, help_text="The annotator's objects.")

    class Meta(AttemptSerializer.Meta):
        fields = [*AttemptSerializer.Meta.fields, "annotations"]


class AttemptDetailApi(APIView):
    """One attempt with the objects drawn: the editor shows them over the ground truth (the
    Quality page's conflicts link there)."""

    @extend_schema(responses=AttemptDetailSerializer)
    def get(self, request: Request, pk: int) -> Response:
        attempt = GroundTruthAttempt.objects.select_related("annotator", "image").filter(pk=pk).first()
        if attempt is None:
            raise NotFound("No such attempt.")
        load_image(request, attempt.image_id, Capability.EXPORT)  # outsiders 404, others 403
        return Response(AttemptDetailSerializer(attempt).data)
