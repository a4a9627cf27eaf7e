"""Views of the server-rendered pages: thin, they check access and call services and selectors."""
from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_POST

from annotator.accounts.services import member_invite
from annotator.accounts.views import pop_access, remember_access
from annotator.annotations.attributes import attribute_schema_clean
from annotator.consensus.selectors import replicas_as_seen
from annotator.core.access import Capability, can, denied_reason, effective_role
from annotator.core.errors import DomainError
from annotator.groundtruth.selectors import images_as_seen
from annotator.images.models import Image, ImageStatus
from annotator.images.selectors import EditAccess, ImageFilters, edit_access, image_neighbours, images_of
from annotator.images.services import queue_next as queue_next_service
from annotator.jobs.selectors import jobs_visible_to
from annotator.projects import services as project_services
from annotator.projects.api import guidelines_html
from annotator.projects.models import Label, Membership, Project, Role
from annotator.projects.selectors import project_stats, projects_visible_to

from .forms import AttributeSpecForm, AttributeSpecFormSet, LabelForm, MemberForm, ProjectForm


def _project(request: HttpRequest, pk: int, capability: Capability = Capability.VIEW) -> Project:
    project = get_object_or_404(Project, pk=pk)
    if not can(request.user, project, Capability.VIEW):
        # Outsiders must not learn that the project exists.
        raise _not_found()
    reason = denied_reason(request.user, project, capability)
    if reason is not None:
        from django.core.exceptions import PermissionDenied

        raise PermissionDenied(reason)  # the role, or the project's state (archived)
    return project


def _not_found() -> Exception:
    from django.http import Http404

    return Http404("Not found")


def _in_project(model: type[Label] | type[Membership], project: Project, pk: str | None) -> Label | Membership:
    """A label or membership of this project named by a form field; 404 for anything else (or junk)."""
    if not (pk or "").isdigit():
        raise _not_found()
    return get_object_or_404(model, pk=int(pk), project=project)


def _context(request: HttpRequest, project: Project, **extra: object) -> dict:
    return {
        "project": project,
        "role": effective_role(request.user, project),
        "can_manage": can(request.user, project, Capability.MANAGE),
        "can_annotate": can(request.user, project, Capability.ANNOTATE),
        "can_review": can(request.user, project, Capability.REVIEW),
        "can_export": can(request.user, project, Capability.EXPORT),
        "can_archive": can(request.user, project, Capability.ARCHIVE),
        **extra,
    }


@login_required
def project_list(request: HttpRequest) -> HttpResponse:
    projects = projects_visible_to(request.user)
    rows = [{"project": p, "role": effective_role(request.user, p), "stats": project_stats(p)} for p in projects]
    return render(request, "web/project_list.html", {"rows": rows, "can_create": request.user.is_superuser or request.user.is_staff})


@login_required
def project_create(request: HttpRequest) -> HttpResponse:
    if not (request.user.is_superuser or request.user.is_staff):
        # The site's error page (403.html), not a bare text response.
        raise DjangoPermissionDenied("Only administrators can create projects.")
    form = ProjectForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            project = project_services.project_create(creator=request.user, **data)
        except DomainError as exc:
            form.add_error("name", exc.detail)
        else:
            messages.success(request, f"Project {project.name} created.")
            return redirect("project-dashboard", pk=project.pk)
    return render(request, "web/project_form.html", {"form": form, "creating": True})


@login_required
def project_edit(request: HttpRequest, pk: int) -> HttpResponse:
    project = _project(request, pk, Capability.MANAGE)
    initial = {
        "name": project.name, "description": project.description, "guidelines": project.guidelines,
        "required_accepts": project.required_accepts, "queue_order": project.queue_order,
        "break_reminder_minutes": project.break_reminder_minutes,
        "consensus_annotators": project.consensus_annotators, "consensus_timeout_hours": project.consensus_timeout_hours,
        "ground_truth_feedback": project.ground_truth_feedback,
    }
    form = ProjectForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = {k: v for k, v in form.cleaned_data.items() if k != "labels"}
        try:
            project_services.project_update(project=project, **data)
        except DomainError as exc:
            form.add_error("name", exc.detail)
        else:
            messages.success(request, "Project saved.")
            return redirect("project-dashboard", pk=project.pk)
    return render(request, "web/project_form.html", _context(request, project, form=form, creating=False))


@login_required
def project_dashboard(request: HttpRequest, pk: int) -> HttpResponse:
    project = _project(request, pk)
    jobs = jobs_visible_to(request.user, project=project.pk)[:10]
    return render(
        request,
        "web/dashboard.html",
        _context(request, project, stats=project_stats(project), jobs=jobs, statuses=ImageStatus.choices,
                 guidelines_html=guidelines_html(project.guidelines)),
    )


@login_required
def project_labels(request: HttpRequest, pk: int) -> HttpResponse:
    project = _project(request, pk)
    form = LabelForm(request.POST or None)
    if request.method == "POST":
        _project(request, pk, Capability.MANAGE)  # 403 with the reason (role, or an archived project)
        action = request.POST.get("action", "add")
        try:
            if action == "delete":
                project_services.label_delete(label=_in_project(Label, project, request.POST.get("label")))
                messages.success(request, "Label deleted.")
                return redirect("project-labels", pk=pk)
            if action in ("up", "down"):
                label = _in_project(Label, project, request.POST.get("label"))
                ordered = list(project.labels.all())
                index = ordered.index(label)
                swap = index - 1 if action == "up" else index + 1
                if 0 <= swap < len(ordered):
                    project_services.label_update(label=label, order=ordered[swap].order)
                return redirect("project-labels", pk=pk)
            if action == "edit":
                label = _in_project(Label, project, request.POST.get("label"))
                edit = LabelForm(request.POST)
                if edit.is_valid():
                    project_services.label_update(label=label, **edit.cleaned_data)
                    messages.success(request, "Label saved.")
                else:
                    messages.error(request, "; ".join(f"{k}: {' '.join(v)}" for k, v in edit.errors.items()))
                return redirect("project-labels", pk=pk)
            if form.is_valid():
                project_services.label_create(project=project, **form.cleaned_data)
                messages.success(request, "Label added.")
                return redirect("project-labels", pk=pk)
        except DomainError as exc:
            messages.error(request, exc.detail)
    return render(request, "web/labels.html", _context(request, project, form=form, labels=project.labels.all()))


@login_required
def label_attributes(request: HttpRequest, pk: int, label_pk: int) -> HttpResponse:
    """Edit one label's attribute schema in words (kind, choices, range, default, required)."""
    project = _project(request, pk, Capability.MANAGE)
    label = _in_project(Label, project, str(label_pk))
    schema = label.attributes_schema if isinstance(label.attributes_schema, dict) else {}
    errors: list[str] = []
    if request.method == "POST":
        formset = AttributeSpecFormSet(request.POST)
        if formset.is_valid():
            specs: dict = {}
            try:
                for form in formset.forms:
                    name = (form.cleaned_data.get("name") or "").strip()
                    if not name or form.cleaned_data.get("DELETE"):
                        continue
                    if name in specs:
                        raise forms.ValidationError(f"{name}: two attributes have this name.")
                    specs[name] = form.spec()
                project_services.label_update(label=label, attributes_schema=attribute_schema_clean(specs))
            except forms.ValidationError as exc:
                errors += exc.messages
            except DomainError as exc:
                errors.append(exc.detail)
            else:
                messages.success(request, f"Attributes of {label.name} saved.")
                return redirect("project-labels", pk=pk)
        else:
            errors += [f"{k}: {' '.join(v)}" for form in formset.forms for k, v in form.errors.items()] + list(formset.non_form_errors())
    else:
        formset = AttributeSpecFormSet(initial=[AttributeSpecForm.initial_for(name, spec) for name, spec in sorted(schema.items()) if isinstance(spec, dict)])
    return render(request, "web/label_attributes.html", _context(request, project, label=label, formset=formset, errors=errors))


@login_required
def project_members(request: HttpRequest, pk: int) -> HttpResponse:
    project = _project(request, pk)
    form = MemberForm(request.POST or None)
    if request.method == "POST":
        _project(request, pk, Capability.MANAGE)  # 403 with the reason (role, or an archived project)
        try:
            action = request.POST.get("action")
            if action == "remove":
                membership = _in_project(Membership, project, request.POST.get("membership"))
                project_services.membership_remove(membership=membership)
                messages.success(request, f"{membership.user.username} removed.")
                return redirect("project-members", pk=pk)
            if action == "role":
                membership = _in_project(Membership, project, request.POST.get("membership"))
                role = request.POST.get("role", "")
                if role not in Role.values:
                    raise DomainError(f"role must be one of {', '.join(Role.values)}")
                project_services.membership_set(project=project, username=membership.user.username, role=role)
                messages.success(request, f"{membership.user.username} is now {role}.")
                return redirect("project-members", pk=pk)
            if form.is_valid():
                invitation = member_invite(project=project, invitee=form.cleaned_data["username"], role=form.cleaned_data["role"])
                name = invitation.membership.user.username
                if invitation.account is not None:
                    messages.success(request, f"Account {name} created for {form.cleaned_data['username']}; {name} is now {form.cleaned_data['role']}.")
                    remember_access(request, username=name, password=None, path=invitation.account.set_password_path)
                else:
                    messages.success(request, f"{name} is now {form.cleaned_data['role']}.")
                return redirect("project-members", pk=pk)
        except DomainError as exc:
            messages.error(request, exc.detail)
    members = project.memberships.select_related("user")
    return render(request, "web/members.html", _context(request, project, form=form, members=members, roles=Role.choices,
                                                       new_access=pop_access(request)))


_FILTER_KEYS = ("status", "assignee", "q")


def _filters_key(project: Project) -> str:
    return f"image-filters:{project.pk}"


def saved_filters(request: HttpRequest, project: Project) -> ImageFilters:
    """The image list's filters as this person last set them for the project (kept in the session)."""
    saved = request.session.get(_filters_key(project)) or {}
    return {key: str(saved[key]) for key in _FILTER_KEYS if saved.get(key)}  # type: ignore[return-value]


@login_required
def image_list(request: HttpRequest, pk: int) -> HttpResponse:
    project = _project(request, pk)
    if any(key in request.GET for key in _FILTER_KEYS):
        # The list remembers its filters: the editor's previous / next follow them, and coming back
        # to the list (from the menu, after the editor) shows the same selection.
        request.session[_filters_key(project)] = {key: request.GET.get(key, "")[:200] for key in _FILTER_KEYS}
    elif "page" not in request.GET:
        saved = saved_filters(request, project)
        if saved:
            return redirect(f"{reverse('image-list', args=[pk])}?{urlencode(saved)}")
    status = request.GET.get("status") or None
    assignee = request.GET.get("assignee") or None
    qs = images_of(project, status=status, assignee=assignee, search=request.GET.get("q") or None, viewer=request.user)
    page = Paginator(qs, 60).get_page(request.GET.get("page"))
    # ground-truth attempts and consensus versions as their own work
    page.object_list = replicas_as_seen(request.user, images_as_seen(request.user, page.object_list))
    query = urlencode({key: request.GET.get(key, "") for key in _FILTER_KEYS})
    return render(
        request,
        "web/image_list.html",
        _context(request, project, page=page, status=status or "", assignee=assignee or "", q=request.GET.get("q", ""),
                 query=query, statuses=ImageStatus.choices, members=project.memberships.select_related("user")),
    )


@login_required
def image_upload(request: HttpRequest, pk: int) -> HttpResponse:
    project = _project(request, pk, Capability.MANAGE)
    return render(request, "web/upload.html", _context(request, project))


@login_required
@require_POST
def queue_next(request: HttpRequest, pk: int) -> HttpResponse:
    project = _project(request, pk, Capability.ANNOTATE)
    image = queue_next_service(project=project, user=request.user)
    if image is None:
        messages.info(request, "Your queue is empty: there are no new images to annotate.")
        return redirect("project-dashboard", pk=pk)
    return redirect("editor", pk=image.pk)


@login_required
def editor(request: HttpRequest, pk: int) -> HttpResponse:
    image = get_object_or_404(Image.objects.select_related("project"), pk=pk)
    project = _project(request, image.project_id)
    mode = "review" if request.GET.get("mode") == "review" or image.status == ImageStatus.IN_REVIEW else "annotate"
    # With a SAM checkpoint configured, the box tool prompts SAM instead of GrabCut.
    sam = bool(settings.ANNOTATOR_SAM_CHECKPOINT)
    access = edit_access(request.user, image)
    if not access.can_edit and mode == "review" and image.status == ImageStatus.SUBMITTED and can(request.user, project, Capability.REVIEW):
        # The review editor takes a submitted image first; if that fails it turns read-only itself.
        access = EditAccess(True, None, None)
    filters = saved_filters(request, project)
    neighbours = image_neighbours(project, image, filters, viewer=request.user)
    return render(
        request,
        "web/editor.html",
        _context(request, project, image=image, mode=mode, sam=sam, access=access, neighbours=neighbours,
                 list_filters=", ".join(f"{key}: {value}" for key, value in filters.items())),
    )
