"""Per-project access rules: who may see, annotate, review or manage a project.

Outsiders get 404 (a project they are not in does not exist for them); members without the
needed role get 403. Django superusers are admins everywhere.
"""
from __future__ import annotations

from enum import Enum

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

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


def role_of(user: AbstractBaseUser | AnonymousUser, project: Project | int) -> str | None:
    if not user.is_authenticated:
        return None
    project_id = project if isinstance(project, int) else project.pk
    cache = getattr(user, "_annotator_roles", None)
    if cache is None:
        cache = {}
        user._annotator_roles = cache  # type: ignore[union-attr]
    if project_id not in cache:
        cache[project_id] = (
            Membership.objects.filter(project_id=project_id, user=user).values_list("role", flat=True).first()
        )
    return cache[project_id]


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
