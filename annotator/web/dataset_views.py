"""Pages for review and datasets: "review next image", the Datasets (export) page and the Import page.

Thin like views.py: access checks, one service call, render. The forms post to the REST API from
the page's script, so progress comes from the job API as for every other job.
"""
from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from annotator.core.access import Capability
from annotator.datasets.importers import IMPORTERS
from annotator.datasets.models import DatasetVersion, ExportFormat
from annotator.jobs.selectors import jobs_visible_to
from annotator.review.services import review_next as review_next_service

from .views import _context, _project


@login_required
@require_POST
def review_next(request: HttpRequest, pk: int) -> HttpResponse:
    project = _project(request, pk, Capability.REVIEW)
    image = review_next_service(project=project, user=request.user)
    if image is None:
        messages.info(request, "Nothing to review: no submitted images that you did not annotate or already accept.")
        return redirect("project-dashboard", pk=pk)
    return redirect(reverse("editor", args=[image.pk]) + "?mode=review")


@login_required
def datasets_page(request: HttpRequest, pk: int) -> HttpResponse:
    project = _project(request, pk)
    versions = DatasetVersion.objects.filter(project=project).select_related("created_by").order_by("-created_at", "-id")[:200]
    jobs = jobs_visible_to(request.user, project=project.pk, kind="export")[:10]
    labels = project.labels.all()
    return render(request, "web/datasets.html", _context(
        request, project, versions=versions, jobs=jobs, labels=labels, formats=ExportFormat.choices,
    ))


@login_required
def import_page(request: HttpRequest, pk: int) -> HttpResponse:
    project = _project(request, pk, Capability.MANAGE)
    jobs = jobs_visible_to(request.user, project=project.pk, kind="import")[:10]
    formats = [f for f in sorted(IMPORTERS) if f != "images"]
    return render(request, "web/import.html", _context(request, project, jobs=jobs, formats=formats))
