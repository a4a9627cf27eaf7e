"""Reads on people: the accounts an admin sees."""
from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db.models import Count, QuerySet


def users_list() -> QuerySet:
    return get_user_model().objects.annotate(project_count=Count("memberships")).order_by("username")


def is_admin(user: object) -> bool:
    """Admins create projects and accounts (Django superusers and staff)."""
    return bool(getattr(user, "is_authenticated", False) and (getattr(user, "is_superuser", False) or getattr(user, "is_staff", False)))
