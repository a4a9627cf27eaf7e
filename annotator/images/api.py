"""REST endpoints for images: upload, listing, files, queue, submission."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.contrib.auth import get_user_model
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import FileResponse
from django.utils.functional import cached_property
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotator.consensus.selectors import replica_of, replicas_by_image
from annotator.core.access import Capability, can
from annotator.core.api import load_image, load_project, validated
from annotator.core.errors import DomainError
from annotator.groundtruth.selectors import attempt_feedback, attempt_of, attempts_by_image
from ml import quality

from . import services
from .models import Image, ImageStatus
from .selectors import ImageFilters, edit_access, image_neighbours, images_count, images_of


class ImageSerializer(serializers.ModelSerializer):
    assignee = serializers.CharField(source="assignee.username", default=None, allow_null=True, read_only=True)
    reviewer = serializers.CharField(source="reviewer.username", default=None, allow_null=True, read_only=True)
    file_url = serializers.SerializerMethodField()
    thumbnail_url = serializers.SerializerMethodField()

    class Meta:
        model = Image
        fields = [
            "id", "project", "original_name", "width", "height", "checksum", "status", "assignee", "reviewer",
            "priority", "uncertainty", "agreement", "version", "file_url", "thumbnail_url", "submitted_at", "created_at",
        ]

    def to_representation(self, image: Image) -> dict[str, Any]:
        data = super().to_representation(image)
        seen = self.context.get("seen", {})
        if image.pk in seen:
            # A ground-truth image this person tries (or just gave back): to them it is their own
            # work like any other, so the fields say what their attempt is.
            attempt = seen[image.pk]
            data.update(
                status=attempt.status if attempt else ImageStatus.NEW.value,
                assignee=attempt.annotator.username if attempt else None, reviewer=None,
                version=attempt.version if attempt else 0,
                submitted_at=serializers.DateTimeField().to_representation(attempt.submitted_at)
                if attempt and attempt.submitted_at else None,
            )
        return data

    def get_file_url(self, image: Image) -> str:
        return f"/api/images/{image.pk}/file/"

    def get_thumbnail_url(self, image: Image) -> str:
        return f"/api/images/{image.pk}/thumbnail/"


def seen_by(request: Request, images: Iterable[Image]) -> dict[str, Any]:
    """The serializer context that shows `images` as the caller sees them (their ground-truth
    attempts, their consensus versions: both are their own work on an image that is not theirs)."""
    images = list(images)
    return {"seen": {**replicas_by_image(request.user, images), **attempts_by_image(request.user, images)}}


class ImageResultSerializer(serializers.Serializer):
    """How the queue and the workflow actions answer: the image as it is now."""

    image = ImageSerializer()


class ImageUpdateSerializer(serializers.Serializer):
    priority = serializers.IntegerField(required=False, min_value=-1_000_000, max_value=1_000_000)
    assignee = serializers.CharField(required=False, allow_null=True)
    reviewer = serializers.CharField(required=False, allow_null=True)
    status = serializers.ChoiceField(
        choices=ImageStatus.choices, required=False,
        help_text="A workflow action: 'new' resets the image, 'in_progress' reopens it for its annotator, "
                  "'submitted' gives it back to the review queue; other statuses are refused (409).",
    )


class UploadSerializer(serializers.Serializer):
    files = serializers.ListField(child=serializers.FileField(), allow_empty=False)


class UploadResultSerializer(serializers.Serializer):
    created = serializers.ListField(child=serializers.IntegerField())
    created_count = serializers.IntegerField()
    duplicates = serializers.ListField(child=serializers.CharField())


class _CountedPaginator(Paginator):
    """A paginator that is told the count (from the kept image counts) instead of counting rows,
    and reads a page in the second half of the list from its end (`ORDER BY id DESC`), so that
    the last page of a million images reads 50 index entries instead of skipping 999,950."""

    def __init__(self, object_list: QuerySet[Image], per_page: int, *, known_count: int | None = None, **kwargs: object):
        super().__init__(object_list, per_page, **kwargs)  # type: ignore[arg-type]
        self._known_count = known_count

    @cached_property
    def count(self) -> int:
        return self._known_count if self._known_count is not None else super().count

    def page(self, number):  # type: ignore[no-untyped-def]
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        top = min(bottom + self.per_page, self.count)
        if bottom <= self.count // 2:
            return super().page(number)
        rows = list(self.object_list.reverse()[self.count - top:self.count - bottom])
        return self._get_page(rows[::-1], number, self)


class _ImagePagination(PageNumberPagination):
    known_count: int | None = None

    def django_paginator_class(self, object_list, per_page, **kwargs):  # type: ignore[no-untyped-def,override]
        return _CountedPaginator(object_list, per_page, known_count=self.known_count, **kwargs)


class ImageListApi(APIView):
    parser_classes = [MultiPartParser, FormParser]
    # Declared on the view so that the schema documents the page (count, next, previous, results).
    pagination_class = _ImagePagination

    @extend_schema(
        parameters=[
            OpenApiParameter("status", str, description="Comma-separated statuses"),
            OpenApiParameter("assignee", str, description="Username, or 'none'"),
            OpenApiParameter("reviewer", str),
            OpenApiParameter("search", str),
        ],
        responses=ImageSerializer(many=True),
    )
    def get(self, request: Request, pk: int) -> Response:
        project = load_project(request, pk)
        filters = {name: request.query_params.get(name) for name in ("status", "assignee", "reviewer", "search")}
        qs = images_of(project, **filters, viewer=request.user)  # their ground-truth attempts as their work
        paginator = self.pagination_class()
        paginator.known_count = images_count(project, **filters, viewer=request.user)
        page = paginator.paginate_queryset(qs, request, view=self)
        return paginator.get_paginated_response(ImageSerializer(page, many=True, context=seen_by(request, page or [])).data)

    @extend_schema(request={"multipart/form-data": UploadSerializer}, responses={201: UploadResultSerializer})
    def post(self, request: Request, pk: int) -> Response:
        project = load_project(request, pk, Capability.MANAGE)
        files = request.FILES.getlist("files")
        if not files:
            raise DomainError("Send one or more files (images or zips of images) in the 'files' field.")
        result = services.images_add(project=project, sources=services.sources_from_uploads(files))
        return Response(result.as_dict(), status=status.HTTP_201_CREATED)


class ImageDetailApi(APIView):
    @extend_schema(responses=ImageSerializer)
    def get(self, request: Request, pk: int) -> Response:
        image = load_image(request, pk)
        return Response(ImageSerializer(image, context=seen_by(request, [image])).data)

    @extend_schema(request=ImageUpdateSerializer, responses=ImageSerializer)
    def patch(self, request: Request, pk: int) -> Response:
        image = load_image(request, pk, Capability.MANAGE)
        data = validated(ImageUpdateSerializer, request.data)
        for role in ("assignee", "reviewer"):
            if role in data and data[role] is not None:
                user = get_user_model().objects.filter(username=data[role]).first()
                if user is None or not can(user, image.project, Capability.VIEW):
                    raise DomainError(f"{data[role]!r} is not a member of this project.")
                data[role] = user
        return Response(ImageSerializer(services.image_update(image=image, user=request.user, **data)).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, pk: int) -> Response:
        image = load_image(request, pk, Capability.MANAGE)
        services.image_delete(image=image)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ImageFileApi(APIView):
    thumbnail = False

    @extend_schema(responses={(200, "image/*"): OpenApiTypes.BINARY})
    def get(self, request: Request, pk: int) -> FileResponse:
        image = load_image(request, pk)
        field = image.thumbnail if self.thumbnail and image.thumbnail else image.file
        response = FileResponse(field.open("rb"))
        response["Cache-Control"] = "private, max-age=86400"
        return response


class QueueNextApi(APIView):
    @extend_schema(request=None, responses={200: ImageResultSerializer, 204: None})
    def post(self, request: Request, pk: int) -> Response:
        project = load_project(request, pk, Capability.ANNOTATE)
        image = services.queue_next(project=project, user=request.user)
        if image is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response({"image": ImageSerializer(image, context=seen_by(request, [image])).data})


class FeedbackConflictSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=quality.CONFLICT_KINDS)
    attempt = serializers.CharField(allow_null=True, help_text="The uid of their object (null for a missing one).")
    iou = serializers.FloatField()
    truth_label = serializers.CharField(allow_null=True)
    attempt_label = serializers.CharField(allow_null=True)


class FeedbackSerializer(serializers.Serializer):
    f1 = serializers.FloatField(allow_null=True)
    precision = serializers.FloatField(allow_null=True)
    recall = serializers.FloatField(allow_null=True)
    mean_iou = serializers.FloatField(allow_null=True)
    conflicts = FeedbackConflictSerializer(many=True)


class SubmitResultSerializer(ImageResultSerializer):
    feedback = FeedbackSerializer(
        required=False, help_text="Only on a ground-truth image with the project's ground_truth_feedback on: their score.",
    )


class SubmitApi(APIView):
    @extend_schema(request=None, responses=SubmitResultSerializer)
    def post(self, request: Request, pk: int) -> Response:
        image = load_image(request, pk, Capability.ANNOTATE)
        image = services.image_submit(image=image, user=request.user)
        body: dict[str, Any] = {"image": ImageSerializer(image, context=seen_by(request, [image])).data}
        attempt = attempt_of(image, request.user)
        if attempt is not None and image.project.ground_truth_feedback:  # off: nothing says it was ground truth
            body["feedback"] = attempt_feedback(attempt)
        return Response(body)


class ReleaseApi(APIView):
    """Give an unfinished image back to the annotate queue (its annotator or a manager); its annotations stay."""

    @extend_schema(request=None, responses=ImageResultSerializer)
    def post(self, request: Request, pk: int) -> Response:
        image = load_image(request, pk, Capability.ANNOTATE)
        attempt = attempt_of(image, request.user) or replica_of(image, request.user)
        image = services.image_release(image=image, user=request.user)
        context = {"seen": {image.pk: None}} if attempt is not None else {}  # an attempt given back: new to them
        return Response({"image": ImageSerializer(image, context=context).data})


class EditAccessSerializer(serializers.Serializer):
    can_edit = serializers.BooleanField()
    reason = serializers.CharField(allow_null=True, help_text="Why the caller may not edit the image now (null when they may).")
    hint = serializers.CharField(allow_null=True, help_text="What to do about it, in plain words.")


class ImageAccessApi(APIView):
    """Whether the caller may change this image's annotations now; the editor opens read-only when not."""

    @extend_schema(responses=EditAccessSerializer)
    def get(self, request: Request, pk: int) -> Response:
        access = edit_access(request.user, load_image(request, pk))
        return Response(access._asdict())


class NeighboursSerializer(serializers.Serializer):
    previous = serializers.IntegerField(allow_null=True)
    next = serializers.IntegerField(allow_null=True)
    position = serializers.IntegerField(allow_null=True, help_text="1-based; null when the image is not in the filtered list.")
    count = serializers.IntegerField()


class ImageNeighboursApi(APIView):
    """The previous and next image in the project's image list under the given filters (as the list orders it)."""

    @extend_schema(
        parameters=[
            OpenApiParameter("status", str, description="Comma-separated statuses"),
            OpenApiParameter("assignee", str, description="Username, or 'none'"),
            OpenApiParameter("search", str, description="Part of the file name"),
        ],
        responses=NeighboursSerializer,
    )
    def get(self, request: Request, pk: int) -> Response:
        image = load_image(request, pk)
        params = request.query_params
        filters: ImageFilters = {"status": params.get("status", ""), "assignee": params.get("assignee", ""), "q": params.get("search", "")}
        return Response(image_neighbours(image.project, image, filters, viewer=request.user))
