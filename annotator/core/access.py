"""Per-project access rules: who may see, annotate, review or manage a project.

Outsiders get 404 (a project they are not in does not exist for them); members without the
needed role get 403. Django superusers are admins everywhere.

Everything reached through a project (jobs and their results, dataset versions, revisions,
comments, predictions, model versions) is checked here against the caller's *current* role:
having created an object gives no access of its own, so a member who is removed or demoted
loses what the role gave at once. Roles are cached for one request only.
"""
from __future__ import annotations

from contextvars import ContextVar
from enum import Enum
from typing import Any, TypeVar

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.signals import request_finished, request_started
from django.db.models import Model, QuerySet

from annotator.projects.models import Membership, Project, Role

from .errors import Forbidden, NotFound


class Capability(str, Enum):
    VIEW = "view"
    ANNOTATE = "annotate"
    REVIEW = "review"
    MANAGE = "manage"


_ROLES_FOR: dict[Capability, set[str]] = {
    Capability.VIEW: {Role.ANNOTATOR, Role.REVIEWER, Role.MANAGER},
    Capability.ANNOTATE: {Role.ANNOTATOR, Role.MANAGER},
    Capability.REVIEW: {Role.REVIEWER, Role.MANAGER},
    Capability.MANAGE: {Role.MANAGER},
}


# (user id, project id) -> role, for the request being handled; None outside requests (workers,
# shells), where a role is always read afresh. A cache on the user object would outlive the
# request wherever that object does (test clients, long-running code) and keep a removed role.
_request_roles: ContextVar[dict[tuple[int, int], str | None] | None] = ContextVar("annotator_roles", default=None)


def _start_request_cache(**_: object) -> None:
    _request_roles.set({})


def _end_request_cache(**_: object) -> None:
    _request_roles.set(None)


request_started.connect(_start_request_cache, dispatch_uid="annotator.access.roles.start")
request_finished.connect(_end_request_cache, dispatch_uid="annotator.access.roles.end")


def role_of(user: AbstractBaseUser | AnonymousUser, project: Project | int) -> str | None:
    if not user.is_authenticated:
        return None
    project_id = project if isinstance(project, int) else project.pk
    cache = _request_roles.get()
    key = (user.pk, project_id)
    if cache is not None and key in cache:
        return cache[key]
    role = Membership.objects.filter(project_id=project_id, user=user).values_list("role", flat=True).first()
    if cache is not None:
        cache[key] = role
    return role


def can(user: AbstractBaseUser | AnonymousUser, project: Project | int, capability: Capability) -> bool:
    if not user.is_authenticated:
        return False
    if user.is_superuser:
        return True
    role = role_of(user, project)
    return role is not None and role in _ROLES_FOR[capability]


def check(user: AbstractBaseUser | AnonymousUser, project: Project | int, capability: Capability) -> None:
    """Raise NotFound for outsiders and Forbidden for members without the capability."""
    if not can(user, project, Capability.VIEW):
        raise NotFound("Not found.")
    if not can(user, project, capability):
        raise Forbidden(f"Your role in this project does not allow you to {capability.value} it.")


def effective_role(user: AbstractBaseUser | AnonymousUser, project: Project | int) -> str | None:
    if user.is_authenticated and user.is_superuser:
        return "admin"
    return role_of(user, project)


_M = TypeVar("_M", bound=Model)


def visible(user: AbstractBaseUser | AnonymousUser, queryset: QuerySet[_M], *, via: str = "project") -> QuerySet[_M]:
    """The rows of `queryset` that belong to a project the user is a member of now.

    `via` is the lookup path from the rows to their project ("project", "image__project").
    Rows without a project (jobs started from the command line) are the admins' only.
    """
    if not user.is_authenticated:
        return queryset.none()
    if user.is_superuser:
        return queryset
    member_of = Membership.objects.filter(user=user).values("project_id")
    return queryset.filter(**{f"{via}__in": member_of})


def check_object(user: AbstractBaseUser | AnonymousUser, obj: Any, capability: Capability, *, via: str = "project") -> None:
    """`check` for an object reached through a project: its creator or author gets nothing extra."""
    project_id = _project_id(obj, via)
    if project_id is None:
        # Not in any project: only admins may reach it (a 404 for everyone else, as for outsiders).
        if not (user.is_authenticated and user.is_superuser):
            raise NotFound("Not found.")
        return
    check(user, project_id, capability)


def _project_id(obj: Any, via: str) -> int | None:
    *path, last = via.split("__")
    for step in path:
        obj = getattr(obj, step)
        if obj is None:
            return None
    return getattr(obj, f"{last}_id")
