"""REST endpoints for jobs: listing, live progress, cancel, result download."""
from __future__ import annotations

from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotator.core.access import Capability, check_object
from annotator.core.errors import DomainError, NotFound

from .models import Job
from .selectors import jobs_visible_to
from .services import job_cancel


class JobSerializer(serializers.ModelSerializer):
    created_by = serializers.CharField(source="created_by.username", default=None, allow_null=True)
    percent = serializers.IntegerField()
    result_url = serializers.SerializerMethodField()

    class Meta:
        model = Job
        fields = [
            "id", "kind", "project", "state", "params", "progress_done", "progress_total", "percent", "message",
            "error", "result", "result_url", "cancel_requested", "attempts", "created_by", "created_at",
            "started_at", "finished_at",
        ]

    def get_result_url(self, job: Job) -> str | None:
        return f"/api/jobs/{job.pk}/result/" if job.result_file else None


def load_job(request: Request, pk: int, capability: Capability = Capability.VIEW) -> Job:
    try:
        job = jobs_visible_to(request.user).filter(pk=int(pk)).first()
    except ValueError:
        job = None
    if job is None:
        raise NotFound("Not found.")
    if job.project_id is not None:
        check_object(request.user, job, capability)
    return job


class JobListApi(APIView):
    # Declared on the view so that the schema documents the page (count, next, previous, results).
    pagination_class = PageNumberPagination

    @extend_schema(
        parameters=[OpenApiParameter("project", int), OpenApiParameter("state", str), OpenApiParameter("kind", str)],
        responses=JobSerializer(many=True),
    )
    def get(self, request: Request) -> Response:
        project = request.query_params.get("project")
        if project is not None and not project.isdigit():
            raise DomainError("project must be a project id")
        qs = jobs_visible_to(
            request.user, project=int(project) if project else None,
            state=request.query_params.get("state"), kind=request.query_params.get("kind"),
        )
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(qs, request, view=self)
        return paginator.get_paginated_response(JobSerializer(page, many=True).data)


class JobDetailApi(APIView):
    @extend_schema(responses=JobSerializer)
    def get(self, request: Request, pk: int) -> Response:
        return Response(JobSerializer(load_job(request, pk)).data)


class JobCancelApi(APIView):
    @extend_schema(request=None, responses=JobSerializer)
    def post(self, request: Request, pk: int) -> Response:
        # EXPORT: managers, also on an archived project (whose only jobs are exports and backups).
        job = load_job(request, pk, Capability.EXPORT)
        return Response(JobSerializer(job_cancel(job=job)).data)


class JobResultApi(APIView):
    @extend_schema(responses={(200, "application/octet-stream"): OpenApiTypes.BINARY})
    def get(self, request: Request, pk: int) -> FileResponse:
        job = load_job(request, pk)
        if not job.result_file:
            raise NotFound("This job has no result file.")
        name = job.result_file.name.rsplit("/", 1)[-1]
        # The type the schema documents, whatever the file's name suggests: the name is in Content-Disposition.
        return FileResponse(job.result_file.open("rb"), as_attachment=True, filename=name, content_type="application/octet-stream")
