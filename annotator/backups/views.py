"""Pages of the backups app: a project's Backups page (backups, schedule, duplicate, archive, delete) and the Restore page.

Thin like the other pages: access checks and a render. The forms post to the REST API from
web/static/web/backups.js, so progress comes from the job API as for every other job.
"""
from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from annotator.core.access import Capability
from annotator.jobs.models import Job, JobKind
from annotator.jobs.selectors import jobs_visible_to
from annotator.web.views import _context, _project  # the pages' one access check and context

from .models import BackupSchedule, ProjectBackup

_KINDS = (JobKind.BACKUP, JobKind.DUPLICATE, JobKind.RESTORE, JobKind.DELETE_PROJECT)


def _may_create(request: HttpRequest) -> bool:
    return bool(request.user.is_superuser or request.user.is_staff)


@login_required
def backups_page(request: HttpRequest, pk: int) -> HttpResponse:
    project = _project(request, pk, Capability.EXPORT)
    backups = ProjectBackup.objects.filter(project=project).select_related("created_by").order_by("-created_at", "-id")[:200]
    schedule = BackupSchedule.objects.filter(project=project).first() or BackupSchedule(project=project, enabled=False)
    jobs = jobs_visible_to(request.user, project=project.pk).filter(kind__in=_KINDS)[:10]
    return render(request, "backups/backups.html", _context(
        request, project, backups=backups, schedule=schedule, jobs=jobs, can_create=_may_create(request),
    ))


@login_required
def restore_page(request: HttpRequest) -> HttpResponse:
    if not _may_create(request):
        raise PermissionDenied("Only administrators can restore projects (it creates a project).")
    jobs = Job.objects.filter(kind=JobKind.RESTORE, created_by=request.user).select_related("project").order_by("-created_at")[:10]
    return render(request, "backups/restore.html", {"jobs": jobs})
