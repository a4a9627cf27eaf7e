"""Reads on images: filtered listings and who may edit an image right now."""
from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet

from annotator.core.access import Capability, can
from annotator.projects.models import Project

from .models import Image, ImageStatus

EDITABLE_BY_ANNOTATOR = (ImageStatus.NEW, ImageStatus.IN_PROGRESS, ImageStatus.REJECTED)


def images_of(project: Project, *, status: str | None = None, assignee: str | None = None, reviewer: str | None = None, search: str | None = None) -> QuerySet[Image]:
    qs = Image.objects.filter(project=project).select_related("assignee", "reviewer")
    if status:
        qs = qs.filter(status__in=status.split(","))
    if assignee == "none":
        qs = qs.filter(assignee__isnull=True)
    elif assignee:
        qs = qs.filter(assignee__username=assignee)
    if reviewer:
        qs = qs.filter(reviewer__username=reviewer)
    if search:
        qs = qs.filter(original_name__icontains=search)
    return qs.order_by("id")


def edit_denied_reason(user: AbstractBaseUser, image: Image) -> str | None:
    """Why `user` may not change this image's annotations now, or None when they may."""
    if can(user, image.project, Capability.MANAGE):
        return None
    if can(user, image.project, Capability.ANNOTATE) and image.status in EDITABLE_BY_ANNOTATOR:
        if image.assignee_id in (None, user.pk):
            return None
        return "This image is assigned to another annotator."
    if can(user, image.project, Capability.REVIEW) and image.status == ImageStatus.IN_REVIEW:
        if image.reviewer_id == user.pk:
            return None
        return "This image is being reviewed by someone else."
    return f"The image is {image.get_status_display().lower()}; your role cannot change it now."
