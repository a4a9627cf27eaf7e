"""The models page of a project: versions, metrics and charts, the box tool's learned shape, and forms that start
pre-annotation, training and shape learning."""
from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render

from annotator.core.access import Capability, can, denied_reason
from annotator.core.errors import DomainError
from annotator.jobs.models import JobKind
from annotator.jobs.selectors import jobs_visible_to
from annotator.projects.models import Project
from annotator.web.views import _context  # the pages' one context (role, what the user may do)

from . import charts, services
from .forms import PreannotateForm, TrainForm
from .models import ModelVersion, ProjectShape
from .params import EvaluateParams, PreannotateParams, TrainParams
from .selectors import model_versions_corrections, model_versions_of
from .services.shapes import SHAPE_FIRST_OBJECTS, SHAPE_MIN_OBJECTS


def _project(request: HttpRequest, pk: int, capability: Capability = Capability.VIEW) -> Project:
    project = get_object_or_404(Project, pk=pk)
    if not can(request.user, project, Capability.VIEW):
        raise Http404("Not found")  # outsiders must not learn that the project exists
    reason = denied_reason(request.user, project, capability)
    if reason is not None:
        raise PermissionDenied(reason)  # the role, or the project's state (archived)
    return project


@login_required
def models_page(request: HttpRequest, pk: int) -> HttpResponse:
    project = _project(request, pk)
    versions = list(model_versions_of(project))
    preannotate_form = PreannotateForm(versions=versions)
    train_form = TrainForm()
    if request.method == "POST":
        project = _project(request, pk, Capability.MANAGE)
        action = request.POST.get("action")
        try:
            if action == "preannotate":
                preannotate_form = PreannotateForm(request.POST, versions=versions)
                if preannotate_form.is_valid():
                    params = PreannotateParams.from_dict(preannotate_form.cleaned_data)
                    job = services.preannotate_start(project=project, user=request.user, params=params)
                    messages.success(request, f"Pre-annotation started (job #{job.pk}).")
                    return redirect("project-models", pk=pk)
            elif action == "train":
                train_form = TrainForm(request.POST)
                if train_form.is_valid():
                    data = train_form.cleaned_data
                    held = data["held_out"] if data["held_out"] is not None else 20
                    params = TrainParams(epochs=data["epochs"], held_out=held / 100)
                    job = services.train_start(project=project, user=request.user, params=params)
                    messages.success(request, f"Training started (job #{job.pk}).")
                    return redirect("project-models", pk=pk)
            elif action == "learn_shape":
                job = services.shape_learn_start(project=project, user=request.user)
                messages.success(request, f"Learning the box tool's shape from the accepted masks (job #{job.pk}).")
                return redirect("project-models", pk=pk)
            elif action in ("activate", "evaluate"):
                version = get_object_or_404(ModelVersion, pk=request.POST.get("version"), project=project)
                if action == "activate":
                    services.model_version_activate(version=version)
                    messages.success(request, f"{version.name} is now the active model.")
                else:
                    job = services.evaluate_start(version=version, user=request.user, params=EvaluateParams())
                    messages.success(request, f"Evaluation of {version.name} started (job #{job.pk}).")
                return redirect("project-models", pk=pk)
            else:
                messages.error(request, "Unknown action.")
        except DomainError as exc:
            messages.error(request, exc.detail)
    jobs = jobs_visible_to(request.user, project=project.pk).filter(
        kind__in=[JobKind.PREANNOTATE, JobKind.TRAIN, JobKind.EVALUATE, JobKind.LEARN_SHAPE]
    ).select_related("created_by")[:10]
    corrections = model_versions_corrections([v for v in versions if v.prediction_count])  # type: ignore[attr-defined]
    # The pages' one context: the header's menu is the same on every page (Backups included).
    return render(request, "learning/models.html", _context(
        request, project, versions=[_version_row(v, corrections.get(v.pk)) for v in versions],
        preannotate_form=preannotate_form, train_form=train_form, jobs=jobs,
        shape=_shape_card(project),
    ))


def _shape_card(project: Project) -> dict[str, Any]:
    engines = services.box_engines(project)
    return {
        "learned": ProjectShape.objects.filter(project=project).first(), "source": engines["shape_source"],
        "default": engines["names"][engines["best"]], "first_at": SHAPE_FIRST_OBJECTS, "min_objects": SHAPE_MIN_OBJECTS,
    }


def _version_row(version: ModelVersion, corrections: dict[str, Any] | None) -> dict[str, Any]:
    metrics = version.metrics or {}
    return {
        "version": version,
        "metrics": metrics,
        "corrections": corrections,
        "ap_chart": charts.ap_bars(metrics.get("per_class") or {}),
        "pr_chart": charts.pr_plot(metrics.get("pr_curve") or []),
        "loss_chart": charts.loss_plot(version.curve or []),
    }
