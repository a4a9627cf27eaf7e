"""REST endpoints for projects, labels and members."""
from __future__ import annotations

from typing import Any

import markdown
import nh3
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotator.annotations.attributes import attribute_schema_clean
from annotator.core.access import Capability, effective_role
from annotator.core.api import load_in_project, load_project, validated
from annotator.core.errors import DomainError, Forbidden
from annotator.jobs.api import JobSerializer

from . import services
from .models import Label, Membership, Project, QueueOrder, Role
from .selectors import project_stats, projects_visible_to


def guidelines_html(text: str) -> str:
    return nh3.clean(markdown.markdown(text or "", extensions=["tables", "fenced_code", "sane_lists"]))


class LabelSerializer(serializers.ModelSerializer):
    class Meta:
        model = Label
        fields = ["id", "name", "color", "order", "attributes_schema"]
        read_only_fields = ["id"]
        # The same bound on every database (PostgreSQL's integer column would refuse more; SQLite not).
        extra_kwargs = {"order": {"required": False, "max_value": 1_000_000}, "color": {"required": False}}
        validators: list = []  # uniqueness is checked (with a clear message) by the service

    def validate_attributes_schema(self, value: Any) -> dict[str, Any]:
        try:
            return attribute_schema_clean(value)
        except DomainError as exc:
            raise serializers.ValidationError(exc.detail) from None


class ProjectSerializer(serializers.ModelSerializer):
    labels = LabelSerializer(many=True, read_only=True)
    guidelines_html = serializers.SerializerMethodField()
    my_role = serializers.SerializerMethodField()

    class Meta:
        model = Project
        fields = [
            "id", "name", "description", "guidelines", "guidelines_html", "required_accepts", "queue_order",
            "break_reminder_minutes", "ground_truth_rate", "ground_truth_feedback", "consensus_annotators", "consensus_timeout_hours", "labels", "my_role", "created_at", "archived_at",
        ]
        read_only_fields = ["id", "created_at", "archived_at"]

    def get_guidelines_html(self, project: Project) -> str:
        return guidelines_html(project.guidelines)

    def get_my_role(self, project: Project) -> str | None:
        return effective_role(self.context["request"].user, project)


class ProjectCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    guidelines = serializers.CharField(required=False, allow_blank=True, default="")
    required_accepts = serializers.IntegerField(min_value=1, max_value=10, default=1)
    queue_order = serializers.ChoiceField(choices=QueueOrder.choices, default=QueueOrder.PRIORITY)
    labels = LabelSerializer(many=True, required=False)


class ProjectUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False)
    description = serializers.CharField(required=False, allow_blank=True)
    guidelines = serializers.CharField(required=False, allow_blank=True)
    required_accepts = serializers.IntegerField(min_value=1, max_value=10, required=False)
    queue_order = serializers.ChoiceField(choices=QueueOrder.choices, required=False)
    break_reminder_minutes = serializers.IntegerField(
        min_value=0, max_value=24 * 60, required=False,
        help_text="The editor suggests a break after this many minutes of one work session; 0 turns it off.",
    )
    ground_truth_rate = serializers.FloatField(
        min_value=0, max_value=1, required=False,
        help_text="The share of the annotate queue's draws that hand out a ground-truth image (0 to 1; 0.05 is one in twenty).",
    )
    ground_truth_feedback = serializers.BooleanField(
        required=False,
        help_text="After submitting a ground-truth image the annotator sees their score and its conflicts (off: nothing tells them it was one).",
    )
    consensus_annotators = serializers.IntegerField(
        min_value=1, max_value=10, required=False,
        help_text="How many different annotators draw each image; with more than one the queue hands each image to that "
                  "many people and the merge of their versions goes to review.",
    )
    consensus_timeout_hours = serializers.IntegerField(
        min_value=1, max_value=24 * 30, required=False,
        help_text="A version not submitted within this many hours is abandoned and the image handed to someone else.",
    )


class MembershipSerializer(serializers.ModelSerializer):
    username = serializers.CharField(source="user.username", read_only=True)

    class Meta:
        model = Membership
        fields = ["id", "username", "role", "created_at"]


class MembershipInputSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    role = serializers.ChoiceField(choices=Role.choices)


class RoleInputSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=Role.choices)


class ProjectListApi(APIView):
    @extend_schema(responses=ProjectSerializer(many=True))
    def get(self, request: Request) -> Response:
        projects = projects_visible_to(request.user).prefetch_related("labels")
        return Response(ProjectSerializer(projects, many=True, context={"request": request}).data)

    @extend_schema(request=ProjectCreateSerializer, responses={201: ProjectSerializer})
    def post(self, request: Request) -> Response:
        if not (request.user.is_superuser or request.user.is_staff):
            raise Forbidden("Only administrators can create projects.")
        data = validated(ProjectCreateSerializer, request.data)
        project = services.project_create(creator=request.user, **data)
        return Response(ProjectSerializer(project, context={"request": request}).data, status=status.HTTP_201_CREATED)


class ProjectDetailApi(APIView):
    @extend_schema(responses=ProjectSerializer)
    def get(self, request: Request, pk: int) -> Response:
        project = load_project(request, pk)
        return Response(ProjectSerializer(project, context={"request": request}).data)

    @extend_schema(request=ProjectUpdateSerializer, responses=ProjectSerializer)
    def patch(self, request: Request, pk: int) -> Response:
        project = load_project(request, pk, Capability.MANAGE)
        project = services.project_update(project=project, **validated(ProjectUpdateSerializer, request.data))
        return Response(ProjectSerializer(project, context={"request": request}).data)

    @extend_schema(
        parameters=[OpenApiParameter("confirm", str, description="The project's name, exactly (or in a JSON body)")],
        responses={202: JobSerializer},
    )
    def delete(self, request: Request, pk: int) -> Response:
        """Delete the project with all its rows and files: a job. ``confirm`` (body or query) must be its name."""
        project = load_project(request, pk, Capability.ARCHIVE)
        body = request.data if isinstance(request.data, dict) else {}
        confirm = body.get("confirm") or request.query_params.get("confirm") or ""
        job = services.project_delete_start(project=project, confirm=str(confirm), user=request.user)
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)


class ProjectArchiveApi(APIView):
    @extend_schema(request=None, responses=ProjectSerializer)
    def post(self, request: Request, pk: int) -> Response:
        """Archive: read-only for everybody (still exportable and backed up) until unarchived."""
        project = services.project_archive(project=load_project(request, pk, Capability.ARCHIVE), user=request.user)
        return Response(ProjectSerializer(project, context={"request": request}).data)


class ProjectUnarchiveApi(APIView):
    @extend_schema(request=None, responses=ProjectSerializer)
    def post(self, request: Request, pk: int) -> Response:
        project = services.project_unarchive(project=load_project(request, pk, Capability.ARCHIVE))
        return Response(ProjectSerializer(project, context={"request": request}).data)


class ProjectStatsApi(APIView):
    @extend_schema(responses=dict)
    def get(self, request: Request, pk: int) -> Response:
        return Response(project_stats(load_project(request, pk)))


class LabelListApi(APIView):
    @extend_schema(responses=LabelSerializer(many=True))
    def get(self, request: Request, pk: int) -> Response:
        project = load_project(request, pk)
        return Response(LabelSerializer(project.labels.all(), many=True).data)

    @extend_schema(request=LabelSerializer, responses={201: LabelSerializer})
    def post(self, request: Request, pk: int) -> Response:
        project = load_project(request, pk, Capability.MANAGE)
        label = services.label_create(project=project, **validated(LabelSerializer, request.data))
        return Response(LabelSerializer(label).data, status=status.HTTP_201_CREATED)


class LabelDetailApi(APIView):
    @extend_schema(responses=LabelSerializer)
    def get(self, request: Request, pk: int) -> Response:
        return Response(LabelSerializer(load_in_project(request, Label, pk, Capability.VIEW)).data)

    @extend_schema(request=LabelSerializer, responses=LabelSerializer)
    def patch(self, request: Request, pk: int) -> Response:
        label = load_in_project(request, Label, pk, Capability.MANAGE)
        changes = validated(LabelSerializer, request.data, partial=True)
        return Response(LabelSerializer(services.label_update(label=label, **changes)).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, pk: int) -> Response:
        services.label_delete(label=load_in_project(request, Label, pk, Capability.MANAGE))
        return Response(status=status.HTTP_204_NO_CONTENT)


class MemberListApi(APIView):
    @extend_schema(responses=MembershipSerializer(many=True))
    def get(self, request: Request, pk: int) -> Response:
        project = load_project(request, pk)
        return Response(MembershipSerializer(project.memberships.select_related("user"), many=True).data)

    @extend_schema(request=MembershipInputSerializer, responses={201: MembershipSerializer})
    def post(self, request: Request, pk: int) -> Response:
        project = load_project(request, pk, Capability.MANAGE)
        membership = services.membership_set(project=project, **validated(MembershipInputSerializer, request.data))
        return Response(MembershipSerializer(membership).data, status=status.HTTP_201_CREATED)


class MemberDetailApi(APIView):
    @extend_schema(request=RoleInputSerializer, responses=MembershipSerializer)
    def patch(self, request: Request, pk: int) -> Response:
        membership = load_in_project(request, Membership, pk, Capability.MANAGE)
        role = validated(RoleInputSerializer, request.data)["role"]
        membership = services.membership_set(project=membership.project, username=membership.user.username, role=role)
        return Response(MembershipSerializer(membership).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, pk: int) -> Response:
        services.membership_remove(membership=load_in_project(request, Membership, pk, Capability.MANAGE))
        return Response(status=status.HTTP_204_NO_CONTENT)
