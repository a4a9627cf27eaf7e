"""REST endpoints for model-assisted annotation: assists, model versions, pre-annotation/training/evaluation jobs."""
from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotator.core.access import Capability
from annotator.core.api import load_image, load_in_project, load_project, validated
from annotator.core.errors import NotFound
from annotator.jobs.api import JobSerializer
from ml.nms import DEFAULT_NMS_IOU

from . import services
from .models import ModelVersion, ProjectShape
from .params import MAX_BATCH, EvaluateParams, PreannotateParams, TrainParams
from .selectors import model_version_corrections, model_versions_of

# Ids beyond a 64-bit integer cannot exist, and SQLite refuses to even compare with them.
MAX_ID = 2**63 - 1


def _points(**kwargs: Any) -> serializers.ListField:
    return serializers.ListField(
        child=serializers.ListField(child=serializers.FloatField(), min_length=2, max_length=2), **kwargs
    )


class BoxToMaskSerializer(serializers.Serializer):
    image = serializers.IntegerField(min_value=1, max_value=MAX_ID)
    box = serializers.ListField(child=serializers.FloatField(), min_length=4, max_length=4, help_text="[x, y, width, height]")
    foreground = _points(required=False, default=list, max_length=500)
    background = _points(required=False, default=list, max_length=500)
    engine = serializers.ChoiceField(choices=services.BOX_ENGINES, required=False, allow_null=True,
                                     help_text="Default: the project's best measured engine (GET /api/projects/{id}/box-engines/)")
    label = serializers.IntegerField(required=False, allow_null=True, min_value=1, max_value=MAX_ID,
                                     help_text="The project label being drawn: the class the project model segments")


class ScissorsSerializer(serializers.Serializer):
    image = serializers.IntegerField(min_value=1, max_value=MAX_ID)
    points = _points(min_length=2, max_length=500)
    closed = serializers.BooleanField(default=False)


class SamSerializer(serializers.Serializer):
    image = serializers.IntegerField(min_value=1, max_value=MAX_ID)
    box = serializers.ListField(child=serializers.FloatField(), min_length=4, max_length=4, required=False, allow_null=True)
    points = _points(required=False, allow_null=True, max_length=100)
    labels = serializers.ListField(child=serializers.IntegerField(min_value=0, max_value=1), required=False, allow_null=True)


MaskResult = inline_serializer("MaskAssistResult", {
    "geometry": serializers.JSONField(), "bbox": serializers.ListField(child=serializers.FloatField()),
    "area": serializers.FloatField(),
})
_SAM_CANDIDATE = {
    "geometry": serializers.JSONField(), "bbox": serializers.ListField(child=serializers.FloatField()),
    "area": serializers.FloatField(), "score": serializers.FloatField(help_text="SAM's own estimate of the mask's IoU"),
}
_SAM_CANDIDATES = inline_serializer(
    "SamCandidate", _SAM_CANDIDATE, many=True, required=False,
    help_text="From SAM: every mask it proposed (three for a lone box or click), best first; the first is the answer.",
)
BoxMaskResult = inline_serializer("BoxMaskAssistResult", {
    "geometry": serializers.JSONField(), "bbox": serializers.ListField(child=serializers.FloatField()),
    "area": serializers.FloatField(), "engine": serializers.ChoiceField(choices=services.BOX_ENGINES, help_text="The engine that answered"),
    "score": serializers.FloatField(required=False), "candidates": _SAM_CANDIDATES,
})
SamResult = inline_serializer("SamAssistResult", {**_SAM_CANDIDATE, "candidates": _SAM_CANDIDATES})


class BoxToMaskApi(APIView):
    @extend_schema(request=BoxToMaskSerializer, responses=BoxMaskResult)
    def post(self, request: Request) -> Response:
        data = validated(BoxToMaskSerializer, request.data)
        image = load_image(request, data["image"])
        return Response(services.assist_box_to_mask(
            image=image, box=data["box"], foreground=data["foreground"], background=data["background"],
            engine=data.get("engine"), label=data.get("label"),
        ))


class BoxEnginesApi(APIView):
    @extend_schema(responses=inline_serializer("BoxEngines", {
        "available": serializers.ListField(child=serializers.CharField()),
        "best": serializers.CharField(help_text="The engine the box tool uses unless one is chosen"),
        "scores": serializers.DictField(child=serializers.FloatField(allow_null=True), help_text="Mean IoU on held-out accepted images"),
        "names": serializers.DictField(child=serializers.CharField()),
        "box": serializers.FloatField(allow_null=True, help_text="Mean IoU of the plain box on the same objects"),
        "objects": serializers.IntegerField(allow_null=True, help_text="Objects measured"),
        "model_version": serializers.IntegerField(allow_null=True),
        "shape_source": serializers.ChoiceField(choices=["project", "version"], allow_null=True,
                                                help_text="Whose learned shape the shape engine uses: the project's own or the active version's"),
    }))
    def get(self, request: Request, pk: int) -> Response:
        return Response(services.box_engines(load_project(request, pk)))


class ScissorsApi(APIView):
    @extend_schema(request=ScissorsSerializer, responses=inline_serializer("ScissorsResult", {
        "path": serializers.ListField(child=serializers.ListField(child=serializers.FloatField())),
        "geometry": serializers.JSONField(required=False, help_text="With closed: the path as a normalised polygon geometry."),
        "repaired": serializers.CharField(required=False, allow_null=True, help_text="With closed: what normalisation changed."),
    }))
    def post(self, request: Request) -> Response:
        data = validated(ScissorsSerializer, request.data)
        image = load_image(request, data["image"])
        return Response(services.assist_scissors(image=image, points=data["points"], closed=data["closed"]))


class SamApi(APIView):
    @extend_schema(request=SamSerializer, responses={200: SamResult, 501: None})
    def post(self, request: Request) -> Response:
        data = validated(SamSerializer, request.data)
        image = load_image(request, data["image"])
        return Response(services.assist_sam(
            image=image, box=data.get("box"), points=data.get("points"), labels=data.get("labels")
        ))


class ModelVersionSerializer(serializers.ModelSerializer):
    created_by = serializers.CharField(source="created_by.username", default=None, allow_null=True)
    prediction_count = serializers.IntegerField(read_only=True, default=None, allow_null=True)

    class Meta:
        model = ModelVersion
        fields = [
            "id", "project", "name", "kind", "arch", "class_names", "metrics", "curve", "params", "is_active",
            "prediction_count", "created_by", "created_at",
        ]


class ModelVersionDetailSerializer(ModelVersionSerializer):
    corrections = serializers.SerializerMethodField()

    class Meta(ModelVersionSerializer.Meta):
        fields = [*ModelVersionSerializer.Meta.fields, "corrections"]

    def get_corrections(self, version: ModelVersion) -> dict[str, Any]:
        return model_version_corrections(version)


def load_version(request: Request, pk: Any, capability: Capability = Capability.VIEW) -> ModelVersion:
    return load_in_project(request, ModelVersion, pk, capability, related=("created_by",))


class ModelListApi(APIView):
    @extend_schema(responses=ModelVersionSerializer(many=True))
    def get(self, request: Request, pk: int) -> Response:
        project = load_project(request, pk)
        return Response(ModelVersionSerializer(model_versions_of(project), many=True).data)


class ModelDetailApi(APIView):
    @extend_schema(responses=ModelVersionDetailSerializer)
    def get(self, request: Request, pk: int) -> Response:
        return Response(ModelVersionDetailSerializer(load_version(request, pk)).data)


class ModelActivateApi(APIView):
    @extend_schema(request=None, responses=ModelVersionSerializer)
    def post(self, request: Request, pk: int) -> Response:
        version = services.model_version_activate(version=load_version(request, pk, Capability.MANAGE))
        return Response(ModelVersionSerializer(version).data)


class PreannotateSerializer(serializers.Serializer):
    """The HTTP shape; the rules (ranges, choices) are learning.params.PreannotateParams'."""

    model = serializers.CharField(default="active", help_text='"active", "coco", a model version id, or a checkpoint path under the model folder')
    threshold = serializers.FloatField(default=0.5, help_text="0..1: keep proposals scoring at least this")
    images = serializers.ListField(child=serializers.IntegerField(min_value=1, max_value=MAX_ID), required=False, allow_null=True)
    scope = serializers.CharField(default="unannotated", help_text='Which images when `images` is not given: "unannotated" or "all"')
    label_map = serializers.DictField(child=serializers.JSONField(allow_null=True), required=False, allow_null=True, help_text="{model class: project label name or id, or null to drop}")
    batch_size = serializers.IntegerField(default=4, help_text=f"1..{MAX_BATCH}")
    nms_iou = serializers.FloatField(default=DEFAULT_NMS_IOU, help_text="0..1: proposals of one label overlapping more than this are one object (1 keeps all)")


class PreannotateApi(APIView):
    @extend_schema(request=PreannotateSerializer, responses={202: JobSerializer})
    def post(self, request: Request, pk: int) -> Response:
        project = load_project(request, pk, Capability.MANAGE)
        params = PreannotateParams.from_dict(validated(PreannotateSerializer, request.data))
        job = services.preannotate_start(project=project, user=request.user, params=params)
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)


class TrainSerializer(serializers.Serializer):
    """The HTTP shape; the rules are learning.params.TrainParams'."""

    epochs = serializers.IntegerField(required=False, allow_null=True, help_text="1..500; default: the machine's")
    held_out = serializers.FloatField(default=0.2, help_text="0..0.5: share of accepted images kept for evaluation")
    arch = serializers.CharField(required=False, allow_null=True)
    batch_size = serializers.IntegerField(required=False, allow_null=True)
    min_size = serializers.IntegerField(required=False, allow_null=True, help_text="64..1333: shorter image side the model works at")
    warm_start = serializers.BooleanField(default=True, help_text="Continue from the active trained version when it fits")


class TrainApi(APIView):
    @extend_schema(request=TrainSerializer, responses={202: JobSerializer})
    def post(self, request: Request, pk: int) -> Response:
        project = load_project(request, pk, Capability.MANAGE)
        params = TrainParams.from_dict(validated(TrainSerializer, request.data))
        job = services.train_start(project=project, user=request.user, params=params)
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)


class ProjectShapeSerializer(serializers.ModelSerializer):
    class Meta:
        model = ProjectShape
        fields = ["project", "images", "object_count", "metrics", "job", "fitted_at"]


class LearnShapeApi(APIView):
    @extend_schema(responses=ProjectShapeSerializer)
    def get(self, request: Request, pk: int) -> Response:
        """The project's own learned shape and its figures (404 until one was learned)."""
        shape = ProjectShape.objects.filter(project=load_project(request, pk)).first()
        if shape is None:
            raise NotFound("No shape has been learned on this project yet.")
        return Response(ProjectShapeSerializer(shape).data)

    @extend_schema(request=None, responses={202: JobSerializer})
    def post(self, request: Request, pk: int) -> Response:
        """Learn the box tool's shape from the accepted masks now (a job on the default queue)."""
        project = load_project(request, pk, Capability.MANAGE)
        job = services.shape_learn_start(project=project, user=request.user)
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)


class EvaluateSerializer(serializers.Serializer):
    label_map = serializers.DictField(child=serializers.JSONField(allow_null=True), required=False, allow_null=True)


class EvaluateApi(APIView):
    @extend_schema(request=EvaluateSerializer, responses={202: JobSerializer})
    def post(self, request: Request, pk: int) -> Response:
        version = load_version(request, pk, Capability.MANAGE)
        data = validated(EvaluateSerializer, request.data)
        job = services.evaluate_start(version=version, user=request.user, params=EvaluateParams.from_dict(data))
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)
