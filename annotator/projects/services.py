"""Writes on projects, labels and memberships."""
from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import Max

from annotator.core.errors import DomainError

from .models import Label, Membership, Project, Role

LABEL_PALETTE = ["#e6194b", "#3cb44b", "#ffe119", "#4363d8", "#f58231", "#911eb4", "#46f0f0", "#f032e6", "#bcf60c", "#fabebe"]


@transaction.atomic
def project_create(
    *,
    name: str,
    creator: AbstractBaseUser | None,
    description: str = "",
    guidelines: str = "",
    required_accepts: int = 1,
    queue_order: str = "priority",
    labels: list[dict[str, Any]] | None = None,
) -> Project:
    if Project.objects.filter(name=name).exists():
        raise DomainError(f"A project named {name!r} already exists.")
    project = Project.objects.create(
        name=name, description=description, guidelines=guidelines, required_accepts=required_accepts,
        queue_order=queue_order, created_by=creator,
    )
    if creator is not None:
        Membership.objects.create(project=project, user=creator, role=Role.MANAGER)
    for spec in labels or []:
        label_create(project=project, **spec)
    return project


@transaction.atomic
def project_update(*, project: Project, **changes: Any) -> Project:
    if "name" in changes and Project.objects.exclude(pk=project.pk).filter(name=changes["name"]).exists():
        raise DomainError(f"A project named {changes['name']!r} already exists.")
    for field, value in changes.items():
        setattr(project, field, value)
    project.save()
    return project


def project_delete(*, project: Project) -> None:
    """Delete a project with everything in it: images, annotations, revisions, jobs, and their files."""
    from annotator.annotations.models import Annotation
    from annotator.images.models import Image
    from annotator.jobs.models import Job

    with transaction.atomic():
        files = [
            name
            for pair in Image.objects.filter(project=project).values_list("file", "thumbnail")
            for name in pair
            if name
        ]
        files += [name for name in Job.objects.filter(project=project).values_list("result_file", flat=True) if name]
        # Annotation.label is PROTECT (a label in use must not vanish from under its objects), and
        # Django's collector refuses the cascade even though the annotations go too: delete them first.
        Annotation.objects.filter(image__project=project).delete()
        project.delete()
        # Files only go once the rows are gone for good; a rolled-back delete keeps them.
        transaction.on_commit(lambda: _storage_delete(files))


def _storage_delete(names: list[str]) -> None:
    from django.core.files.storage import default_storage

    for name in names:
        default_storage.delete(name)


@transaction.atomic
def label_create(
    *, project: Project, name: str, color: str | None = None, attributes_schema: dict | None = None, order: int | None = None
) -> Label:
    if project.labels.filter(name=name).exists():
        raise DomainError(f"The project already has a label named {name!r}.")
    if order is None:
        highest = project.labels.aggregate(m=Max("order"))["m"]
        order = 0 if highest is None else highest + 1
    elif project.labels.filter(order=order).exists():
        # Make room: shift later labels down so the order stays unique and stable.
        for label in project.labels.filter(order__gte=order).order_by("-order"):
            label.order += 1
            label.save(update_fields=["order"])
    color = color or LABEL_PALETTE[project.labels.count() % len(LABEL_PALETTE)]
    return Label.objects.create(project=project, name=name, color=color, order=order, attributes_schema=attributes_schema or {})


@transaction.atomic
def label_update(*, label: Label, **changes: Any) -> Label:
    if "name" in changes and label.project.labels.exclude(pk=label.pk).filter(name=changes["name"]).exists():
        raise DomainError(f"The project already has a label named {changes['name']!r}.")
    if "order" in changes and changes["order"] != label.order:
        other = label.project.labels.filter(order=changes["order"]).first()
        if other is not None:
            # Swap places with the label that holds the wanted position.
            old = label.order
            # Park the label past the end first so the (project, order) unique constraint holds at
            # every step (order is unsigned: a negative placeholder breaks its CHECK constraint).
            label.order = label.project.labels.aggregate(m=Max("order"))["m"] + 1
            label.save(update_fields=["order"])
            other.order = old
            other.save(update_fields=["order"])
    for field, value in changes.items():
        setattr(label, field, value)
    label.save()
    return label


@transaction.atomic
def label_delete(*, label: Label) -> None:
    used = label.annotations.count()
    if used:
        raise DomainError(f"The label {label.name!r} is used by {used} annotations; relabel or delete them first.", status=409)
    label.delete()


@transaction.atomic
def membership_set(*, project: Project, username: str, role: str) -> Membership:
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise DomainError(f"There is no user named {username!r}.")
    if role not in Role.values:
        raise DomainError(f"role must be one of {', '.join(Role.values)}")
    current = Membership.objects.select_for_update().filter(project=project, user=user).first()
    if (
        current is not None
        and current.role == Role.MANAGER
        and role != Role.MANAGER
        and project.memberships.filter(role=Role.MANAGER).count() == 1
    ):
        # Demoting the last manager would leave nobody (but admins) able to manage the project.
        raise DomainError("A project needs at least one manager.", status=409)
    membership, _ = Membership.objects.update_or_create(project=project, user=user, defaults={"role": role})
    return membership


@transaction.atomic
def membership_remove(*, membership: Membership) -> None:
    project = membership.project
    if membership.role == Role.MANAGER and project.memberships.filter(role=Role.MANAGER).count() == 1:
        raise DomainError("A project needs at least one manager.", status=409)
    membership.delete()


def user_create(*, username: str, password: str, is_superuser: bool = False, email: str = "") -> AbstractBaseUser:
    User = get_user_model()
    try:
        if is_superuser:
            return User.objects.create_superuser(username=username, password=password, email=email)
        return User.objects.create_user(username=username, password=password, email=email)
    except IntegrityError:
        raise DomainError(f"The user {username!r} already exists.") from None
