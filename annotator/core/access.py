"""Per-project access rules: who may see, annotate, review or manage a project.

Outsiders get 404 (a project they are not in does not exist for them); members without the
needed role get 403. Django superusers are admins everywhere.

Everything reached through a project (jobs and their results, dataset versions, revisions,
comments, predictions, model versions) is checked here against the caller's *current* role:
having created an object gives no access of its own, so a member who is removed or demoted
loses what the role gave at once. Roles are cached for one request only.

This is also the one place where an archived project is read-only: every capability that changes
the project (comment, annotate, review, manage) is refused to everybody, admins included, with a
403 that says so; viewing, exporting and backing up (``EXPORT``) and archiving, unarchiving and
deleting (``ARCHIVE``) still work. A project being deleted refuses everything but viewing.
"""
from __future__ import annotations

from contextvars import ContextVar
from enum import Enum
from typing import Any, TypeVar

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.signals import request_finished, request_started
from django.db import connection
from django.db.models import CharField, Model, QuerySet
from django.db.models.expressions import RawSQL

from annotator.projects.models import Membership, Project, Role

from .errors import Forbidden, NotFound


class Capability(str, Enum):
    VIEW = "view"
    COMMENT = "comment"  # any member; a write, so refused on an archived project
    ANNOTATE = "annotate"
    REVIEW = "review"
    MANAGE = "manage"
    # Managers, also on an archived project: reading the whole project out (exports, backups,
    # duplicates, their jobs and schedules) changes nothing in it.
    EXPORT = "export"
    # Managers: archive, unarchive, delete (the way out of the read-only state).
    ARCHIVE = "archive"


_ROLES_FOR: dict[Capability, set[str]] = {
    Capability.VIEW: {Role.ANNOTATOR, Role.REVIEWER, Role.MANAGER},
    Capability.COMMENT: {Role.ANNOTATOR, Role.REVIEWER, Role.MANAGER},
    Capability.ANNOTATE: {Role.ANNOTATOR, Role.MANAGER},
    Capability.REVIEW: {Role.REVIEWER, Role.MANAGER},
    Capability.MANAGE: {Role.MANAGER},
    Capability.EXPORT: {Role.MANAGER},
    Capability.ARCHIVE: {Role.MANAGER},
}

# What an archived project still allows; a project being deleted allows VIEW only.
_ALLOWED_WHEN_ARCHIVED = {Capability.VIEW, Capability.EXPORT, Capability.ARCHIVE}
ARCHIVED_REASON = "This project is archived: it is read-only. A manager can unarchive it to change it."
DELETING_REASON = "This project is being deleted."


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


def state_reason(project: Project | int, capability: Capability) -> str | None:
    """Why the project's state (archived, being deleted) refuses `capability` to everybody, or None."""
    if capability == Capability.VIEW:
        return None
    if isinstance(project, Project):
        archived, deleting = project.archived_at is not None, project.delete_requested_at is not None
    else:
        state = Project.objects.filter(pk=project).values_list("archived_at", "delete_requested_at").first()
        if state is None:
            return None
        archived, deleting = state[0] is not None, state[1] is not None
    if deleting:
        return DELETING_REASON
    if archived and capability not in _ALLOWED_WHEN_ARCHIVED:
        return ARCHIVED_REASON
    return None


def role_of(user: AbstractBaseUser | AnonymousUser, project: Project | int) -> str | None:
    if not user.is_authenticated:
        return None
    project_id = project if isinstance(project, int) else project.pk
    cache = _request_roles.get()
    key = (user.pk, project_id)
    if cache is not None and key in cache:
        return cache[key]
    # One row at most (unique per project and user): without the model's ORDER BY, which joins
    # projects and users on every request.
    role = Membership.objects.filter(project_id=project_id, user=user).order_by().values_list("role", flat=True).first()
    if cache is not None:
        cache[key] = role
    return role


def role_column(user: AbstractBaseUser | AnonymousUser, project_id_column: str) -> RawSQL | None:
    """The user's role in the project of each row, as a column (their membership's role, or NULL),
    for a query that reads the rows they ask for; None for the anonymous. With role_known after,
    the access check of one object costs no query of its own. ``project_id_column``: the quoted
    column holding the project id in that query (``"images_image"."project_id"``)."""
    if not user.is_authenticated:
        return None
    quote = connection.ops.quote_name
    table = quote(Membership._meta.db_table)
    project, member = (quote(Membership._meta.get_field(name).column) for name in ("project", "user"))
    return RawSQL(
        f"(SELECT {table}.{quote(Membership._meta.get_field('role').column)} FROM {table}"
        f" WHERE {table}.{project} = {project_id_column} AND {table}.{member} = %s)",
        (user.pk,), output_field=CharField(),
    )


def role_known(user: AbstractBaseUser | AnonymousUser, project_id: int, role: str | None) -> None:
    """Remember for this request the role read with role_column (role_of then asks no query)."""
    cache = _request_roles.get()
    if cache is not None and user.is_authenticated:
        cache[(user.pk, project_id)] = role


def _role_allows(user: AbstractBaseUser | AnonymousUser, project: Project | int, capability: Capability) -> bool:
    if not user.is_authenticated:
        return False
    if user.is_superuser:
        return True
    role = role_of(user, project)
    return role is not None and role in _ROLES_FOR[capability]


def roles_capabilities(user: AbstractBaseUser | AnonymousUser, project: Project | int) -> frozenset[Capability]:
    """What the user's role (one look-up) allows in the project, leaving out its state (archived)."""
    if not user.is_authenticated:
        return frozenset()
    if user.is_superuser:
        return frozenset(Capability)
    role = role_of(user, project)
    return frozenset(c for c, roles in _ROLES_FOR.items() if role in roles)


def can(user: AbstractBaseUser | AnonymousUser, project: Project | int, capability: Capability) -> bool:
    return _role_allows(user, project, capability) and state_reason(project, capability) is None


def denied_reason(user: AbstractBaseUser | AnonymousUser, project: Project | int, capability: Capability) -> str | None:
    """Why a member may not do `capability` now (their role, or the project's state), or None."""
    if not _role_allows(user, project, capability):
        return f"Your role in this project does not allow you to {capability.value} it."
    return state_reason(project, capability)


def check(user: AbstractBaseUser | AnonymousUser, project: Project | int, capability: Capability) -> None:
    """Raise NotFound for outsiders and Forbidden (with the reason) for members who may not do it now."""
    if not _role_allows(user, project, Capability.VIEW):
        raise NotFound("Not found.")
    reason = denied_reason(user, project, capability)
    if reason is not None:
        raise Forbidden(reason)


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
