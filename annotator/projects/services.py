"""Writes on projects, labels and memberships."""
from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from annotator.core.errors import Conflict, DomainError

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
    break_reminder_minutes: int = 90,
    consensus_annotators: int = 1,
    consensus_timeout_hours: int = 24,
    ground_truth_feedback: bool = False,
    labels: list[dict[str, Any]] | None = None,
) -> Project:
    if Project.objects.filter(name=name).exists():
        raise DomainError(f"A project named {name!r} already exists.")
    project = Project.objects.create(
        name=name, description=description, guidelines=guidelines, required_accepts=required_accepts,
        queue_order=queue_order, break_reminder_minutes=break_reminder_minutes, created_by=creator,
        consensus_annotators=consensus_annotators, consensus_timeout_hours=consensus_timeout_hours,
        ground_truth_feedback=ground_truth_feedback,
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


# Jobs that only read the project: they may go on while it is archived.
READ_ONLY_JOB_KINDS = ("export", "backup", "duplicate")
DELETE_CHUNK = 500  # images (with everything on them) per transaction of a delete


def _unfinished_jobs(project: Project, *, exclude_kinds: tuple[str, ...] = ()) -> list[Any]:
    from annotator.jobs.models import FINISHED_STATES, Job

    return list(Job.objects.filter(project=project).exclude(state__in=FINISHED_STATES).exclude(kind__in=exclude_kinds)[:5])


def _busy(jobs: list[Any], then: str) -> Conflict:
    job = jobs[0]
    return Conflict(
        f"Job #{job.pk} ({job.get_kind_display().lower()}) is still {job.state}: wait for it to finish or cancel it, then {then}.",
        extra={"jobs": [j.pk for j in jobs]},
    )


@transaction.atomic
def project_archive(*, project: Project, user: AbstractBaseUser | None) -> Project:
    """Make the project read-only for everybody (core.access refuses every change); exports and backups go on."""
    project = Project.objects.select_for_update().get(pk=project.pk)
    if project.delete_requested_at is not None:
        raise Conflict("The project is being deleted.")
    if project.archived_at is not None:
        raise Conflict("The project is archived already.")
    busy = _unfinished_jobs(project, exclude_kinds=READ_ONLY_JOB_KINDS)
    if busy:
        raise _busy(busy, "archive the project")
    project.archived_at = timezone.now()
    project.archived_by = user if user is not None and user.is_authenticated else None
    project.save(update_fields=["archived_at", "archived_by", "updated_at"])
    return project


@transaction.atomic
def project_unarchive(*, project: Project) -> Project:
    project = Project.objects.select_for_update().get(pk=project.pk)
    if project.archived_at is None:
        raise Conflict("The project is not archived.")
    project.archived_at = None
    project.archived_by = None
    project.save(update_fields=["archived_at", "archived_by", "updated_at"])
    return project


def project_delete_start(*, project: Project, confirm: str, user: AbstractBaseUser | None, enqueue: bool = True) -> Any:
    """Start deleting a project (a job): ``confirm`` must be its name. From now on it is hidden and refuses all but viewing."""
    from annotator.jobs.models import Job, JobKind, JobState
    from annotator.jobs.services import job_start

    if (confirm or "").strip() != project.name:
        raise DomainError(f"To delete the project, confirm with its name, {project.name!r}, exactly.",
                          extra={"field": "confirm"})
    with transaction.atomic():
        locked = Project.objects.select_for_update().get(pk=project.pk)
        if locked.delete_requested_at is not None:
            raise Conflict("The project is being deleted already.")
        # Its other jobs stop: queued ones never start, running ones stop at their next progress report.
        Job.objects.filter(project=locked, state=JobState.QUEUED).update(
            state=JobState.CANCELLED, cancel_requested=True, finished_at=timezone.now(), message="Cancelled: the project is being deleted")
        Job.objects.filter(project=locked, state=JobState.RUNNING).update(cancel_requested=True)
        locked.delete_requested_at = timezone.now()
        locked.save(update_fields=["delete_requested_at", "updated_at"])
        return job_start(kind=JobKind.DELETE_PROJECT, project=locked, params={"project": locked.pk, "name": locked.name},
                         user=user, enqueue=enqueue)


def project_delete(*, project_id: int, job_id: int | None = None, progress: Callable[[int, int, str], None] | None = None) -> dict[str, Any]:
    """Delete a project with all its rows and all its files in storage, a chunk of images per transaction.

    Rows go before files: a delete stopped half-way (a killed worker) leaves a consistent, hidden
    project that the job's next attempt finishes, and at worst files no row references, which
    ``sweep_orphans`` removes. The job itself is detached from the project at the end, so that it
    outlives it (its creator still sees it).
    """
    from annotator.annotations.models import Annotation, Prediction, Revision
    from annotator.images.models import Image
    from annotator.jobs.models import Job
    from annotator.review.models import ObjectDecision, ReviewComment, ReviewDecision, ReviewTask

    project = Project.objects.filter(pk=project_id).first()
    if project is None:
        return {"project": project_id, "images": 0, "files": 0}
    name = project.name
    total = Image.objects.filter(project_id=project_id).count() + 1
    done = files = 0
    if progress:
        progress(0, total, "Deleting images")
    while True:
        chunk = list(Image.objects.filter(project_id=project_id).order_by("id").values_list("id", "file", "thumbnail")[:DELETE_CHUNK])
        if not chunk:
            break
        ids = [pk for pk, _, _ in chunk]
        with transaction.atomic():
            # Children first, so that no delete has to load rows to null or cascade references.
            ObjectDecision.objects.filter(decision__image_id__in=ids).delete()
            ReviewComment.objects.filter(image_id__in=ids).only("id").delete()
            ReviewDecision.objects.filter(image_id__in=ids).only("id").delete()
            ReviewTask.objects.filter(image_id__in=ids).only("id").delete()
            Annotation.objects.filter(image_id__in=ids).delete()
            Revision.objects.filter(image_id__in=ids).delete()
            Prediction.objects.filter(image_id__in=ids).only("id").delete()
            Image.objects.filter(pk__in=ids).only("id").delete()
        names = [n for _, file, thumb in chunk for n in (file, thumb) if n]
        _storage_delete(names)
        files += len(names)
        done += len(ids)
        if progress:
            progress(done, total, "Deleting images")
    from annotator.backups.models import ProjectBackup
    from annotator.datasets.models import DatasetVersion

    names = [n for n in Job.objects.filter(project_id=project_id).values_list("result_file", flat=True) if n]
    names += [p["upload"] for p in Job.objects.filter(project_id=project_id).values_list("params", flat=True)
              if isinstance(p, dict) and isinstance(p.get("upload"), str)]
    names += [n for n in DatasetVersion.objects.filter(project_id=project_id).values_list("file", flat=True) if n]
    names += [n for n in ProjectBackup.objects.filter(project_id=project_id).values_list("file", flat=True) if n]
    with transaction.atomic():
        if job_id is not None:
            Job.objects.filter(pk=job_id).update(project=None)
        Project.objects.filter(pk=project_id).delete()
    _storage_delete(names)
    files += len(names) + _storage_delete_folder(f"projects/{project_id}") + _model_files_delete(project_id)
    if progress:
        progress(total, total, "Deleted")
    return {"project": project_id, "name": name, "images": done, "files": files}


def _storage_delete(names: list[str]) -> None:
    from django.core.files.storage import default_storage

    for name in names:
        default_storage.delete(name)


def _storage_delete_folder(folder: str) -> int:
    """Remove every stored file under ``folder`` (what no row named: leftovers of killed jobs); returns how many."""
    from django.core.files.storage import default_storage

    if not default_storage.exists(folder):
        return 0
    count = 0
    subfolders, names = default_storage.listdir(folder)
    for name in names:
        default_storage.delete(f"{folder}/{name}")
        count += 1
    for sub in subfolders:
        count += _storage_delete_folder(f"{folder}/{sub}")
    try:
        local = Path(default_storage.path(folder))
    except NotImplementedError:
        return count  # object stores have no folders to remove
    shutil.rmtree(local, ignore_errors=True)
    return count


def _model_files_delete(project_id: int) -> int:
    """Remove the project's model folder, except checkpoints another project's model versions use."""
    from annotator.learning.models import ModelVersion

    folder = Path(settings.ANNOTATOR_MODEL_DIR) / f"project-{project_id}"
    if not folder.is_dir():
        return 0
    used = set(ModelVersion.objects.filter(checkpoint__startswith=str(folder)).values_list("checkpoint", flat=True))
    count = 0
    for path in sorted(folder.rglob("*"), reverse=True):
        if path.is_file() and str(path) not in used:
            path.unlink(missing_ok=True)
            count += 1
        elif path.is_dir() and not any(path.iterdir()):
            path.rmdir()
    if not any(folder.iterdir()):
        folder.rmdir()
    return count


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
