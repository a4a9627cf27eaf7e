"""REST endpoints for review: the queue, an image's review state and diff, decisions, comments, stats."""
from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotator.core.access import Capability
from annotator.core.api import load_image, load_in_project, load_project, validated
from annotator.core.errors import DomainError
from annotator.images.api import ImageResultSerializer, ImageSerializer

from . import services
from .models import ReviewComment, Verdict
from .selectors import comment_to_dict, comments_of, decision_to_dict, review_state, review_stats


class CommentInSerializer(serializers.Serializer):
    text = serializers.CharField(max_length=5000)
    uid = serializers.UUIDField(required=False, allow_null=True, help_text="Pin to this object.")
    x = serializers.FloatField(required=False, allow_null=True, help_text="Pin to this point (image pixels).")
    y = serializers.FloatField(required=False, allow_null=True)

    def to_input(self, data: dict) -> services.CommentInput:  # type: ignore[type-arg]
        return services.CommentInput(text=data["text"], uid=data.get("uid"), x=data.get("x"), y=data.get("y"))


class ObjectVerdictSerializer(serializers.Serializer):
    uid = serializers.UUIDField()
    decision = serializers.ChoiceField(choices=Verdict.choices)
    comment = serializers.CharField(max_length=5000, required=False, allow_blank=True, default="")


class DecisionSerializer(serializers.Serializer):
    decision = serializers.ChoiceField(choices=Verdict.choices)
    version = serializers.IntegerField(min_value=0, help_text="The image version you reviewed (conflict check).")
    comment = serializers.CharField(max_length=5000, required=False, allow_blank=True, default="")
    objects = ObjectVerdictSerializer(many=True, required=False, default=list)
    comments = CommentInSerializer(many=True, required=False, default=list)


class CommentPatchSerializer(serializers.Serializer):
    resolved = serializers.BooleanField()


class CommentSerializer(serializers.Serializer):
    """A comment as selectors.comment_to_dict gives it."""

    id = serializers.IntegerField()
    image = serializers.IntegerField()
    decision = serializers.IntegerField(allow_null=True, help_text="The review decision it came with, if any.")
    author = serializers.CharField(allow_null=True)
    text = serializers.CharField()
    uid = serializers.UUIDField(allow_null=True, help_text="The object it is pinned to.")
    x = serializers.FloatField(allow_null=True)
    y = serializers.FloatField(allow_null=True)
    version = serializers.IntegerField(help_text="The image version it was made on.")
    resolved = serializers.BooleanField()
    resolved_by = serializers.CharField(allow_null=True)
    resolved_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()


def _min_score(request: Request) -> float:
    try:
        return float(request.query_params.get("min_score", 0) or 0)
    except ValueError:
        raise DomainError("min_score must be a number") from None


class ReviewNextApi(APIView):
    @extend_schema(request=None, responses={200: ImageResultSerializer, 204: None})
    def post(self, request: Request, pk: int) -> Response:
        project = load_project(request, pk, Capability.REVIEW)
        image = services.review_next(project=project, user=request.user)
        if image is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response({"image": ImageSerializer(image).data})


class ReviewApi(APIView):
    @extend_schema(parameters=[OpenApiParameter("min_score", float), OpenApiParameter("diff", bool)], responses=dict)
    def get(self, request: Request, pk: int) -> Response:
        image = load_image(request, pk)
        with_diff = request.query_params.get("diff", "1") not in ("0", "false")
        return Response(review_state(image, with_diff=with_diff, min_score=_min_score(request)))

    @extend_schema(request=DecisionSerializer, responses={201: dict})
    def post(self, request: Request, pk: int) -> Response:
        image = load_image(request, pk, Capability.REVIEW)
        data = validated(DecisionSerializer, request.data)
        result = services.review_decide(
            image=image, user=request.user, decision=data["decision"], version=data["version"], comment=data["comment"],
            objects=[services.ObjectVerdict(uid=o["uid"], decision=o["decision"], comment=o.get("comment", "")) for o in data["objects"]],
            comments=[CommentInSerializer().to_input(c) for c in data["comments"]],
        )
        return Response(
            {
                "decision": decision_to_dict(result.decision),
                "image": ImageSerializer(result.image).data,
                "accepts": result.accepts,
                "required_accepts": result.image.project.required_accepts,
            },
            status=status.HTTP_201_CREATED,
        )


class ReviewTakeApi(APIView):
    @extend_schema(request=None, responses=ImageResultSerializer)
    def post(self, request: Request, pk: int) -> Response:
        image = load_image(request, pk, Capability.REVIEW)
        return Response({"image": ImageSerializer(services.review_take(image=image, user=request.user)).data})


class ReviewReleaseApi(APIView):
    @extend_schema(request=None, responses=ImageResultSerializer)
    def post(self, request: Request, pk: int) -> Response:
        image = load_image(request, pk, Capability.REVIEW)
        image = services.review_release(image=image, user=request.user)
        return Response({"image": ImageSerializer(image).data})


class CommentListApi(APIView):
    @extend_schema(responses=CommentSerializer(many=True))
    def get(self, request: Request, pk: int) -> Response:
        image = load_image(request, pk)
        return Response([comment_to_dict(c) for c in comments_of(image)])

    @extend_schema(request=CommentInSerializer, responses={201: CommentSerializer})
    def post(self, request: Request, pk: int) -> Response:
        # Any member may comment: reviewers pin remarks, annotators answer them (not on an archived project).
        image = load_image(request, pk, Capability.COMMENT)
        data = validated(CommentInSerializer, request.data)
        comment = services.comment_add(image=image, user=request.user, comment=CommentInSerializer().to_input(data))
        return Response(comment_to_dict(comment), status=status.HTTP_201_CREATED)


class CommentDetailApi(APIView):
    @extend_schema(request=CommentPatchSerializer, responses=CommentSerializer)
    def patch(self, request: Request, pk: int) -> Response:
        comment = load_comment(request, pk, Capability.COMMENT)
        data = validated(CommentPatchSerializer, request.data)
        return Response(comment_to_dict(services.comment_resolve(comment=comment, user=request.user, resolved=data["resolved"])))


def load_comment(request: Request, pk: int, capability: Capability = Capability.VIEW) -> ReviewComment:
    # Its author gets nothing more than their role in the project gives them now.
    return load_in_project(request, ReviewComment, pk, capability, via="image__project", related=("author", "resolved_by"))


class ReviewStatsApi(APIView):
    @extend_schema(responses=dict)
    def get(self, request: Request, pk: int) -> Response:
        project = load_project(request, pk, Capability.REVIEW)
        return Response(review_stats(project))
