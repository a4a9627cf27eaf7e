"""REST endpoints for datasets: upload an import, start an export, list and download dataset versions."""
from __future__ import annotations

import json

from django.core.files.storage import default_storage
from django.db import transaction
from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotator.core.access import Capability, check
from annotator.core.api import load_project, validated
from annotator.core.errors import DomainError, NotFound
from annotator.core.parsers import JSONParser  # the API's: size, NUL and depth limits
from annotator.jobs.api import JobSerializer
from annotator.jobs.models import JobKind
from annotator.jobs.services import job_start

from .importers import IMPORTERS
from .models import DatasetVersion, ExportFormat
from .services import IMPORT_STATUSES, ExportOptions, ImportOptions, upload_store


class ImportSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="A zip of the dataset (or a COCO .json when the images are already in the project).")
    format = serializers.ChoiceField(choices=sorted(IMPORTERS))
    status = serializers.ChoiceField(choices=list(IMPORT_STATUSES), default="new")
    label_map = serializers.CharField(required=False, allow_blank=True, default="",
                                      help_text='JSON object {"source label": "project label"}')
    create_labels = serializers.BooleanField(default=True)


class ExportSerializer(serializers.Serializer):
    format = serializers.ChoiceField(choices=ExportFormat.choices, default=ExportFormat.COCO)
    name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    status = serializers.JSONField(default="accepted", help_text='"accepted" (default), "all", or a list of statuses')
    labels = serializers.ListField(child=serializers.CharField(), required=False, allow_null=True, default=None)
    include_images = serializers.BooleanField(default=False)
    predictions = serializers.BooleanField(default=False)
    model_version = serializers.IntegerField(required=False, allow_null=True, default=None)


class DatasetVersionSerializer(serializers.ModelSerializer):
    created_by = serializers.CharField(source="created_by.username", default=None, allow_null=True)
    download_url = serializers.SerializerMethodField()

    class Meta:
        model = DatasetVersion
        fields = ["id", "project", "name", "format", "filters", "manifest", "sha256", "size", "job", "created_by",
                  "created_at", "download_url"]

    def get_download_url(self, version: DatasetVersion) -> str:
        return f"/api/datasets/{version.pk}/download/"


class DatasetVersionListSerializer(DatasetVersionSerializer):
    counts = serializers.JSONField(source="manifest.counts", default=dict)

    class Meta(DatasetVersionSerializer.Meta):
        # The per-file checksums can be long: the list shows counts, the detail the manifest.
        fields = [f for f in DatasetVersionSerializer.Meta.fields if f != "manifest"] + ["counts"]


class ImportListApi(APIView):
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(request={"multipart/form-data": ImportSerializer}, responses={202: JobSerializer})
    def post(self, request: Request, pk: int) -> Response:
        project = load_project(request, pk, Capability.MANAGE)
        data = validated(ImportSerializer, request.data)
        try:
            label_map = json.loads(data["label_map"]) if data["label_map"].strip() else {}
        except json.JSONDecodeError as exc:
            raise DomainError(f"label_map is not valid JSON: {exc.msg}") from None
        options = {"status": data["status"], "label_map": label_map, "create_labels": data["create_labels"]}
        ImportOptions.from_dict(options)  # refuse bad options now, not in the worker
        upload = data["file"]
        stored = upload_store(upload, name=upload.name)
        try:
            with transaction.atomic():
                job = job_start(
                    kind=JobKind.IMPORT, project=project, user=request.user,
                    params={"format": data["format"], "upload": stored, "filename": upload.name, "options": options},
                )
        except BaseException:
            default_storage.delete(stored)
            raise
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)


class ExportListApi(APIView):
    parser_classes = [JSONParser, FormParser, MultiPartParser]

    @extend_schema(responses=DatasetVersionListSerializer(many=True))
    def get(self, request: Request, pk: int) -> Response:
        project = load_project(request, pk)
        versions = DatasetVersion.objects.filter(project=project).select_related("created_by").order_by("-created_at", "-id")
        return Response(DatasetVersionListSerializer(versions[:500], many=True).data)

    @extend_schema(request=ExportSerializer, responses={202: JobSerializer})
    def post(self, request: Request, pk: int) -> Response:
        project = load_project(request, pk, Capability.MANAGE)
        data = validated(ExportSerializer, request.data)
        ExportOptions.from_dict(data)
        if data["name"] and DatasetVersion.objects.filter(project=project, name=data["name"]).exists():
            raise DomainError(f"A dataset version named {data['name']!r} already exists in this project.")
        with transaction.atomic():
            job = job_start(kind=JobKind.EXPORT, project=project, params=dict(data), user=request.user)
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)


def load_version(request: Request, pk: int) -> DatasetVersion:
    version = DatasetVersion.objects.select_related("created_by").filter(pk=pk).first()
    if version is None:
        raise NotFound("Not found.")
    check(request.user, version.project_id, Capability.VIEW)
    return version


class DatasetVersionApi(APIView):
    @extend_schema(responses=DatasetVersionSerializer)
    def get(self, request: Request, pk: int) -> Response:
        return Response(DatasetVersionSerializer(load_version(request, pk)).data)


class DatasetDownloadApi(APIView):
    @extend_schema(responses={(200, "application/zip"): OpenApiTypes.BINARY})
    def get(self, request: Request, pk: int) -> FileResponse:
        version = load_version(request, pk)
        response = FileResponse(version.file.open("rb"), as_attachment=True, filename=f"{version.name}.zip",
                                content_type="application/zip")
        response["X-Checksum-SHA256"] = version.sha256
        return response
