"""REST endpoints for datasets: upload an import, start an export, list and download dataset versions."""
from __future__ import annotations

import json

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
from annotator.core.jsoncheck import json_problem
from annotator.core.parsers import JSONParser  # the API's: size, NUL and depth limits
from annotator.jobs.api import JobSerializer

from .importers import IMPORTERS
from .models import DatasetVersion, ExportFormat
from .services import IMPORT_STATUSES, ImportOptions, dataset_export_start, dataset_import_start, upload_store


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
        problem = json_problem(label_map)  # a form field does not come through the API's JSON parser
        if problem:
            raise DomainError(f"label_map: {problem}")
        options = {"status": data["status"], "label_map": label_map, "create_labels": data["create_labels"]}
        ImportOptions.from_dict(options)  # refuse bad options before storing the upload
        upload = data["file"]
        job = dataset_import_start(
            project=project, fmt=data["format"], user=request.user, options=options,
            upload=upload_store(upload, name=upload.name), filename=upload.name,
        )
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
        project = load_project(request, pk, Capability.EXPORT)  # archived projects can be exported
        data = validated(ExportSerializer, request.data)
        job = dataset_export_start(project=project, params=dict(data), user=request.user)
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
        if not version.file:
            # Restored from a backup made without the dataset zips: the manifest is all there is.
            raise NotFound("The zip of this dataset version is not kept (it was restored without it); export again.")
        response = FileResponse(version.file.open("rb"), as_attachment=True, filename=f"{version.name}.zip",
                                content_type="application/zip")
        response["X-Checksum-SHA256"] = version.sha256
        return response
