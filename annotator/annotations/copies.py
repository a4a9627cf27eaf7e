"""A person's own copy of an image's set: a ground-truth attempt or a consensus version.

Both stand for the image in the workflow table (they carry `status`, `assignee_id`, `reviewer_id`)
and are saved like the image's own set: refused when saved since the version the person edited,
checked and repaired by the same rules, and never written into the image's annotations.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from django.contrib.auth.models import AbstractBaseUser
from django.db import models, transaction

from annotator.core.errors import Conflict
from annotator.images import workflow
from annotator.projects.models import Project

from .services import ObjectRepair, annotations_clean_drawn

C = TypeVar("C", bound=models.Model)


def copy_apply(copy: Any, action: workflow.Action, user: AbstractBaseUser, project: Project | int) -> None:
    """The workflow's decision on the copy, as on the image it stands for (WorkflowError when refused)."""
    decision = workflow.decide(copy, action, workflow.Actor.of(user, project))
    if not decision.allowed:
        raise workflow.WorkflowError(decision)
    for name in ("status", "submitted_at"):
        if name in decision.changes:
            setattr(copy, name, decision.changes[name])


def copy_save(
    copy: C, *, user: AbstractBaseUser, base_version: int, items: list[dict[str, Any]],
    apply: Callable[[C, workflow.Action, AbstractBaseUser, Project | int], None] = copy_apply,
) -> tuple[C, list[dict[str, Any]], list[ObjectRepair]]:
    """Replace the copy's objects, if it was not saved since `base_version` (as an image's save)."""
    with transaction.atomic():
        copy = type(copy)._default_manager.select_for_update(of=("self",)).select_related("image__project").get(pk=copy.pk)
        if copy.version != base_version:
            raise Conflict(
                f"Someone else saved this image (version {copy.version}) after the version {base_version} you edited.",
                extra={"current_version": copy.version, "updated_by": user.get_username(),
                       "updated_at": copy.updated_at.isoformat()},
            )
        apply(copy, workflow.Action.SAVE, user, copy.image.project)
        copy.drawn, repaired = annotations_clean_drawn(image=copy.image, items=items, author=user)
        copy.version += 1
        copy.save()
    return copy, copy.drawn, repaired
