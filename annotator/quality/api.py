"""REST endpoints for quality control: the editor's active-time reports and the time report."""
from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotator.core.access import Capability, effective_role
from annotator.core.api import load_image, load_project, validated
from annotator.images.models import Image
from annotator.projects.models import Role

from .models import SESSION_GAP_MINUTES
from .selectors import time_on_image, time_report, time_session
from .services import MAX_SPAN_SECONDS, time_record_add


class TimeInSerializer(serializers.Serializer):
    seconds = serializers.FloatField(
        min_value=0.001, max_value=MAX_SPAN_SECONDS,
        help_text="Active seconds since the last report (visible tab, input within the last minute).",
    )


class SessionSerializer(serializers.Serializer):
    started_at = serializers.DateTimeField()
    minutes = serializers.FloatField(help_text="Minutes since the work session started (pauses under the session gap included).")
    active_seconds = serializers.FloatField(help_text="Active seconds recorded in the session.")


class TimeOutSerializer(serializers.Serializer):
    seconds = serializers.FloatField(help_text="The caller's active seconds on this image so far.")
    session = SessionSerializer(allow_null=True, help_text="The caller's work session (null: none going on).")
    break_reminder_minutes = serializers.IntegerField(help_text="The project's break reminder (0: off).")


def _time_state(request: Request, image: Image) -> dict[str, Any]:
    return {
        "seconds": time_on_image(image_id=image.pk, user_id=request.user.pk),
        "session": time_session(user=request.user),
        "break_reminder_minutes": image.project.break_reminder_minutes,
    }


class TimeApi(APIView):
    """The caller's active time on an image: the editor reports it (JSON, or a form body from
    navigator.sendBeacon) and reads the work session when it opens (the break reminder)."""

    @extend_schema(responses=TimeOutSerializer)
    def get(self, request: Request, pk: int) -> Response:
        return Response(_time_state(request, load_image(request, pk, Capability.ANNOTATE)))

    @extend_schema(request=TimeInSerializer, responses={201: TimeOutSerializer})
    def post(self, request: Request, pk: int) -> Response:
        image = load_image(request, pk, Capability.ANNOTATE)
        data = validated(TimeInSerializer, request.data)
        time_record_add(image=image, user=request.user, seconds=data["seconds"])
        return Response(_time_state(request, image), status=status.HTTP_201_CREATED)


class PaceBinSerializer(serializers.Serializer):
    start = serializers.FloatField()
    end = serializers.FloatField()
    count = serializers.IntegerField()
    mean = serializers.FloatField(allow_null=True, help_text="Mean seconds per object of the images started in this bin.")


class AccuracyBinSerializer(serializers.Serializer):
    start = serializers.FloatField()
    end = serializers.FloatField()
    count = serializers.IntegerField()
    mean = serializers.FloatField(allow_null=True, help_text="Mean F1 of the ground-truth attempts last worked on in this bin.")


class AnnotatorTimeSerializer(serializers.Serializer):
    user = serializers.IntegerField()
    username = serializers.CharField()
    images = serializers.IntegerField()
    objects = serializers.IntegerField(help_text="Objects on those images when the person last worked on them.")
    seconds = serializers.FloatField(help_text="Active seconds.")
    seconds_per_image = serializers.FloatField(allow_null=True)
    seconds_per_object = serializers.FloatField(allow_null=True)
    objects_per_hour = serializers.FloatField(allow_null=True)
    sessions = serializers.IntegerField()
    last_active_at = serializers.DateTimeField()
    pace = PaceBinSerializer(many=True, help_text="Seconds per object against minutes into the work session.")
    accuracy = AccuracyBinSerializer(many=True, help_text="F1 of ground-truth attempts against minutes into the work session.")


class TimeReportSerializer(serializers.Serializer):
    session_gap_minutes = serializers.IntegerField()
    bin_minutes = serializers.FloatField()
    annotators = AnnotatorTimeSerializer(many=True)


class TimeReportQuerySerializer(serializers.Serializer):
    bin_minutes = serializers.FloatField(min_value=1, max_value=24 * 60, default=30)


class TimeReportApi(APIView):
    """Active time per annotator: managers see everybody, other members themselves only."""

    @extend_schema(
        parameters=[OpenApiParameter("bin_minutes", float, description="Width of the pace curve's bins (default 30).")],
        responses=TimeReportSerializer,
    )
    def get(self, request: Request, pk: int) -> Response:
        project = load_project(request, pk)
        query = validated(TimeReportQuerySerializer, request.query_params)
        # the role, not the project's state: an archived project's report can still be read
        everybody = effective_role(request.user, project) in ("admin", Role.MANAGER)
        rows = time_report(project=project, user_ids=None if everybody else [request.user.pk], bin_minutes=query["bin_minutes"])
        return Response({"session_gap_minutes": SESSION_GAP_MINUTES, "bin_minutes": query["bin_minutes"], "annotators": rows})
