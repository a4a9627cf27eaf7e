"""REST endpoints for people: accounts (admins), invitations into a project (managers), the caller's own account."""
from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotator.core.access import Capability
from annotator.core.api import load_project, validated
from annotator.core.errors import Forbidden
from annotator.projects.api import MembershipSerializer
from annotator.projects.models import Role

from . import services
from .selectors import is_admin, users_list


class UserSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    email = serializers.CharField(allow_blank=True)
    is_admin = serializers.SerializerMethodField()
    has_password = serializers.SerializerMethodField(help_text="False until the person has chosen a password.")
    last_login = serializers.DateTimeField(allow_null=True)
    date_joined = serializers.DateTimeField()

    def get_is_admin(self, user) -> bool:  # type: ignore[no-untyped-def]
        return is_admin(user)

    def get_has_password(self, user) -> bool:  # type: ignore[no-untyped-def]
        return user.has_usable_password()


class UserCreateSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    email = serializers.CharField(max_length=254, required=False, allow_blank=True, default="")
    is_admin = serializers.BooleanField(required=False, default=False)
    access = serializers.ChoiceField(
        choices=["link", "password"], default="link",
        help_text='"link": a set-password link to pass on; "password": a generated password, shown once.',
    )


class NewAccountSerializer(serializers.Serializer):
    user = UserSerializer()
    password = serializers.CharField(allow_null=True, help_text="The one-time password (access=password), shown only here.")
    set_password_url = serializers.CharField(allow_null=True, help_text="The set-password link (access=link), valid once.")


def _new_account(request: Request, account: services.NewAccount) -> dict:
    url = request.build_absolute_uri(account.set_password_path) if account.set_password_path else None
    return {"user": UserSerializer(account.user).data, "password": account.password, "set_password_url": url}


class UserListApi(APIView):
    """Accounts (admins only): list them, create one without the Django admin."""

    @extend_schema(responses=UserSerializer(many=True))
    def get(self, request: Request) -> Response:
        if not is_admin(request.user):
            raise Forbidden("Only administrators can list accounts.")
        return Response(UserSerializer(users_list()[:1000], many=True).data)

    @extend_schema(request=UserCreateSerializer, responses={201: NewAccountSerializer})
    def post(self, request: Request) -> Response:
        if not is_admin(request.user):
            raise Forbidden("Only administrators can create accounts.")
        account = services.account_create(**validated(UserCreateSerializer, request.data))
        return Response(_new_account(request, account), status=status.HTTP_201_CREATED)


class MeApi(APIView):
    @extend_schema(responses=UserSerializer)
    def get(self, request: Request) -> Response:
        return Response(UserSerializer(request.user).data)


class PasswordChangeSerializer(serializers.Serializer):
    old_password = serializers.CharField()
    new_password = serializers.CharField(max_length=128)


class PasswordApi(APIView):
    """Change your own password."""

    @extend_schema(request=PasswordChangeSerializer, responses={204: None})
    def post(self, request: Request) -> Response:
        data = validated(PasswordChangeSerializer, request.data)
        services.password_change(user=request.user, old_password=data["old_password"], new_password=data["new_password"])
        return Response(status=status.HTTP_204_NO_CONTENT)


class InvitationSerializer(serializers.Serializer):
    invitee = serializers.CharField(max_length=254, help_text="A username, or an e-mail address (creates the account if nobody uses it).")
    role = serializers.ChoiceField(choices=Role.choices)


class InvitationResultSerializer(serializers.Serializer):
    membership = MembershipSerializer()
    created_account = serializers.BooleanField()
    set_password_url = serializers.CharField(allow_null=True, help_text="For a new account: the link to pass on (valid once).")


class InvitationApi(APIView):
    """Invite someone into a project with a role (managers)."""

    @extend_schema(request=InvitationSerializer, responses={201: InvitationResultSerializer})
    def post(self, request: Request, pk: int) -> Response:
        project = load_project(request, pk, Capability.MANAGE)
        invitation = services.member_invite(project=project, **validated(InvitationSerializer, request.data))
        account = invitation.account
        return Response(
            {
                "membership": MembershipSerializer(invitation.membership).data,
                "created_account": account is not None,
                "set_password_url": request.build_absolute_uri(account.set_password_path) if account and account.set_password_path else None,
            },
            status=status.HTTP_201_CREATED,
        )
