"""REST endpoints for quality control: the editor's active-time reports, the time report and the
quality report (with its CSV and JSON downloads)."""
from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import APIView

from annotator.core.access import Capability, effective_role
from annotator.core.api import load_image, load_project, validated
from annotator.images.models import Image
from annotator.projects.models import Role

from .models import SESSION_GAP_MINUTES
from .selectors import quality_report, time_on_image, time_report, time_session
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


# --- The quality report (the Quality page's numbers, with CSV and JSON downloads) -------------

#: the CSV download's tables and their columns, in order
CSV_TABLES: dict[str, list[str]] = {
    "annotators": ["username", "attempts", "tp", "fp", "fn", "precision", "recall", "f1", "mean_iou",
                   "seconds", "objects", "seconds_per_object", "objects_per_hour"],
    "labels": ["label", "name", "tp", "fp", "fn", "precision", "recall", "f1", "mean_iou"],
    "over_time": ["username", "day", "attempts", "f1", "mean_iou"],
    "fatigue": ["username", "start", "end", "count", "mean"],
    "conflicts": ["kind", "image", "annotator", "attempt", "truth_label", "attempt_label", "iou", "truth", "drawn", "editor_url"],
}


def csv_rows(report: dict[str, Any], table: str) -> list[dict[str, Any]]:
    """One table of the quality report as flat rows (the CSV download)."""
    if table == "over_time":
        return [{"username": a["username"], **day} for a in report["annotators"] for day in a["over_time"]]
    if table == "fatigue":
        return [{"username": a["username"], **b} for a in report["annotators"] for b in a["fatigue"]]
    return report[table]


class CsvRenderer(BaseRenderer):
    """Flat rows as CSV (the columns given by the view in the renderer context, stdlib csv)."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Mapping[str, Any] | None = None) -> bytes:
        out = io.StringIO()
        if isinstance(data, list):
            columns = (renderer_context or {}).get("csv_columns") or (list(data[0]) if data else [])
            writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
            writer.writeheader()
            writer.writerows(data)
        else:  # an error: its reason, one line
            writer = csv.writer(out, lineterminator="\n")
            writer.writerow(["detail"])
            writer.writerow([data.get("detail", data) if isinstance(data, dict) else data])
        return out.getvalue().encode()


class QualityQuerySerializer(serializers.Serializer):
    bin_minutes = serializers.FloatField(min_value=1, max_value=24 * 60, default=30)
    table = serializers.ChoiceField(choices=list(CSV_TABLES), default="annotators",
                                    help_text="With format=csv: which table to download.")


class DaySerializer(serializers.Serializer):
    day = serializers.DateField()
    attempts = serializers.IntegerField()
    f1 = serializers.FloatField(allow_null=True)
    mean_iou = serializers.FloatField(allow_null=True)


class LabelRowSerializer(serializers.Serializer):
    label = serializers.JSONField()
    name = serializers.CharField(allow_null=True)
    tp = serializers.IntegerField()
    fp = serializers.IntegerField()
    fn = serializers.IntegerField()
    precision = serializers.FloatField(allow_null=True)
    recall = serializers.FloatField(allow_null=True)
    f1 = serializers.FloatField(allow_null=True)
    mean_iou = serializers.FloatField(allow_null=True)


class AnnotatorQualityRowSerializer(serializers.Serializer):
    username = serializers.CharField()
    attempts = serializers.IntegerField(help_text="Submitted ground-truth attempts.")
    tp = serializers.IntegerField()
    fp = serializers.IntegerField()
    fn = serializers.IntegerField()
    precision = serializers.FloatField(allow_null=True)
    recall = serializers.FloatField(allow_null=True)
    f1 = serializers.FloatField(allow_null=True, help_text="Objects matched at mask IoU >= 0.5 with the right label.")
    mean_iou = serializers.FloatField(allow_null=True, help_text="Of the matched objects.")
    seconds = serializers.FloatField(allow_null=True, help_text="Active seconds in the project (all images).")
    objects = serializers.IntegerField(allow_null=True)
    seconds_per_object = serializers.FloatField(allow_null=True)
    objects_per_hour = serializers.FloatField(allow_null=True)
    fatigue = AccuracyBinSerializer(many=True, help_text="F1 of ground-truth attempts against minutes into the work session.")
    over_time = DaySerializer(many=True, help_text="F1 and mean IoU by day of submission.")
    per_label = LabelRowSerializer(many=True)


class ConflictSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=["missing", "extra", "wrong_label", "low_overlap"])
    image = serializers.IntegerField()
    annotator = serializers.CharField()
    attempt = serializers.IntegerField(allow_null=True)
    truth_label = serializers.CharField(allow_null=True)
    attempt_label = serializers.CharField(allow_null=True)
    iou = serializers.FloatField()
    truth = serializers.CharField(allow_null=True, help_text="The ground-truth object's uid.")
    drawn = serializers.CharField(allow_null=True, help_text="The annotator's object's uid.")
    editor_url = serializers.CharField(help_text="The editor at that image, the attempt over the ground truth.")


class LowAgreementSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    original_name = serializers.CharField()
    agreement = serializers.FloatField()
    status = serializers.CharField()
    editor_url = serializers.CharField()


class AgreementSummarySerializer(serializers.Serializer):
    images = serializers.IntegerField(help_text="Consensus images with all their versions in.")
    mean = serializers.FloatField(allow_null=True)
    lowest = LowAgreementSerializer(many=True, help_text="The lowest agreement first (the review queue's order).")


class QualityReportSerializer(serializers.Serializer):
    agreement = AgreementSummarySerializer()
    ground_truth_images = serializers.IntegerField()
    ground_truth_rate = serializers.FloatField()
    attempts = serializers.IntegerField()
    bin_minutes = serializers.FloatField()
    annotators = AnnotatorQualityRowSerializer(many=True)
    labels = LabelRowSerializer(many=True)
    confusion = serializers.DictField(child=serializers.DictField(child=serializers.IntegerField()))
    conflicts = ConflictSerializer(many=True)


class QualityReportApi(APIView):
    """The Quality page's numbers: per annotator (ground-truth scores, time per object, F1 by day,
    the fatigue curve), per label, the confusion matrix and the conflicts. Managers only (also on
    an archived project: reading it out changes nothing). ``?format=csv&table=...`` downloads one
    table as CSV, ``?format=json`` the whole report."""

    renderer_classes = [*api_settings.DEFAULT_RENDERER_CLASSES, CsvRenderer]

    @extend_schema(
        parameters=[
            OpenApiParameter("bin_minutes", float, description="Width of the fatigue curve's bins (default 30)."),
            OpenApiParameter("table", str, enum=list(CSV_TABLES), description="With format=csv: the table (default annotators)."),
        ],
        responses=QualityReportSerializer,
    )
    def get(self, request: Request, pk: int) -> Response:
        project = load_project(request, pk, Capability.EXPORT)
        query = validated(QualityQuerySerializer, request.query_params)
        report = quality_report(project=project, bin_minutes=query["bin_minutes"])
        if request.accepted_renderer.format == "csv":
            table = query["table"]
            return Response(csv_rows(report, table), headers={
                "Content-Disposition": f'attachment; filename="quality-{project.pk}-{table}.csv"',
            })
        headers = {"Content-Disposition": f'attachment; filename="quality-{project.pk}.json"'} if request.query_params.get("format") == "json" else {}
        return Response(report, headers=headers)

    def get_renderer_context(self) -> dict[str, Any]:
        context = super().get_renderer_context()
        context["csv_columns"] = CSV_TABLES.get(self.request.query_params.get("table", "annotators"), [])
        return context
