"""REST endpoints for backups: start one, list and download them, restore (an upload or a kept backup), duplicate, schedule."""
from __future__ import annotations

from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotator.core.access import Capability
from annotator.core.api import load_in_project, load_project, validated
from annotator.core.parsers import JSONParser
from annotator.jobs.api import JobSerializer

from .models import BackupSchedule, ProjectBackup
from .services import (
    BackupOptions,
    RestoreOptions,
    backup_delete,
    backup_start,
    check_may_create_projects,
    duplicate_start,
    restore_start,
    restore_upload_store,
    schedule_set,
)


class BackupSerializer(serializers.ModelSerializer):
    created_by = serializers.CharField(source="created_by.username", default=None, allow_null=True)
    download_url = serializers.SerializerMethodField()

    class Meta:
        model = ProjectBackup
        fields = ["id", "project", "sha256", "size", "format_version", "options", "counts", "warnings", "scheduled", "job",
                  "created_by", "created_at", "download_url"]

    def get_download_url(self, backup: ProjectBackup) -> str:
        return f"/api/backups/{backup.pk}/download/"


class BackupStartSerializer(serializers.Serializer):
    images = serializers.BooleanField(default=True, help_text="Put the image files in the archive.")
    models = serializers.BooleanField(default=False, help_text="Put the model weights in the archive.")
    datasets = serializers.BooleanField(default=False, help_text="Put the zips of the dataset versions in the archive.")


class RestoreSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="",
                                 help_text="Name of the new project (default: the archived project's name).")
    map_users = serializers.CharField(required=False, allow_blank=True, default="",
                                      help_text="Archive users onto users of this server: old=new,old2=new2")
    create_users = serializers.BooleanField(default=False, help_text="Create the archive's unknown users, inactive.")


class RestoreUploadSerializer(RestoreSerializer):
    file = serializers.FileField(help_text="A project archive (.zip) from a backup.")


class DuplicateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="",
                                 help_text='Name of the copy (default: "<name> (copy)").')


class ScheduleSerializer(serializers.ModelSerializer):
    class Meta:
        model = BackupSchedule
        fields = ["enabled", "every_hours", "keep", "with_images", "with_models", "last_started_at"]
        read_only_fields = ["last_started_at"]
        extra_kwargs = {"every_hours": {"min_value": 1, "max_value": 8760}, "keep": {"min_value": 1, "max_value": 1000}}


def load_backup(request: Request, pk: int) -> ProjectBackup:
    # Backups hold everything (members, every revision): managers only, also on an archived project.
    return load_in_project(request, ProjectBackup, pk, Capability.EXPORT, related=("created_by",))


def _restore_options(data: dict) -> RestoreOptions:  # type: ignore[type-arg]
    return RestoreOptions.from_dict({"name": data["name"], "map_users": data["map_users"], "create_users": data["create_users"]})


class BackupListApi(APIView):
    @extend_schema(responses=BackupSerializer(many=True))
    def get(self, request: Request, pk: int) -> Response:
        project = load_project(request, pk, Capability.EXPORT)
        backups = ProjectBackup.objects.filter(project=project).select_related("created_by").order_by("-created_at", "-id")
        return Response(BackupSerializer(backups[:500], many=True).data)

    @extend_schema(request=BackupStartSerializer, responses={202: JobSerializer})
    def post(self, request: Request, pk: int) -> Response:
        project = load_project(request, pk, Capability.EXPORT)
        options = BackupOptions.from_dict(validated(BackupStartSerializer, request.data))
        job = backup_start(project=project, options=options, user=request.user)
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)


class BackupDetailApi(APIView):
    @extend_schema(responses=BackupSerializer)
    def get(self, request: Request, pk: int) -> Response:
        return Response(BackupSerializer(load_backup(request, pk)).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, pk: int) -> Response:
        backup_delete(backup=load_backup(request, pk))
        return Response(status=status.HTTP_204_NO_CONTENT)


class BackupDownloadApi(APIView):
    @extend_schema(responses={(200, "application/zip"): OpenApiTypes.BINARY})
    def get(self, request: Request, pk: int) -> FileResponse:
        backup = load_backup(request, pk)
        name = backup.file.name.rsplit("/", 1)[-1]
        response = FileResponse(backup.file.open("rb"), as_attachment=True, filename=name, content_type="application/zip")
        response["X-Checksum-SHA256"] = backup.sha256
        return response


class BackupRestoreApi(APIView):
    """Restore a kept backup as a new project (administrators: it creates a project)."""

    @extend_schema(request=RestoreSerializer, responses={202: JobSerializer})
    def post(self, request: Request, pk: int) -> Response:
        backup = load_backup(request, pk)
        check_may_create_projects(request.user)
        options = _restore_options(validated(RestoreSerializer, request.data))
        job = restore_start(options=options, user=request.user, backup=backup)
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)


class RestoreUploadApi(APIView):
    """Upload an archive and restore it as a new project. The upload streams to disk, then to storage."""

    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(request={"multipart/form-data": RestoreUploadSerializer}, responses={202: JobSerializer})
    def post(self, request: Request) -> Response:
        check_may_create_projects(request.user)  # before reading a possibly huge body into storage
        data = validated(RestoreUploadSerializer, request.data)
        options = _restore_options(data)
        upload = data["file"]
        stored = restore_upload_store(upload, name=upload.name)
        job = restore_start(options=options, user=request.user, upload=stored, filename=upload.name)
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)


class DuplicateApi(APIView):
    parser_classes = [JSONParser, FormParser, MultiPartParser]

    @extend_schema(request=DuplicateSerializer, responses={202: JobSerializer})
    def post(self, request: Request, pk: int) -> Response:
        """Copy the whole project (backup and restore in one job) under a new name; administrators only."""
        project = load_project(request, pk, Capability.EXPORT)
        check_may_create_projects(request.user)
        name = validated(DuplicateSerializer, request.data)["name"]
        job = duplicate_start(project=project, name=name, user=request.user)
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)


class BackupScheduleApi(APIView):
    @extend_schema(responses=ScheduleSerializer)
    def get(self, request: Request, pk: int) -> Response:
        project = load_project(request, pk, Capability.EXPORT)
        schedule = BackupSchedule.objects.filter(project=project).first() or BackupSchedule(project=project, enabled=False)
        return Response(ScheduleSerializer(schedule).data)

    @extend_schema(request=ScheduleSerializer, responses=ScheduleSerializer)
    def put(self, request: Request, pk: int) -> Response:
        project = load_project(request, pk, Capability.EXPORT)
        data = validated(ScheduleSerializer, request.data)
        schedule = schedule_set(project=project, **data)
        return Response(ScheduleSerializer(schedule).data)
