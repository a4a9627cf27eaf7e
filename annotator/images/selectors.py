"""Reads on images: filtered listings, neighbours in a listing, and who may edit an image right now."""
from __future__ import annotations

from typing import Any, NamedTuple, TypedDict

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import BooleanField, Case, ExpressionWrapper, F, Q, QuerySet, Sum, Value, When

from annotator.consensus.models import LIVE
from annotator.consensus.selectors import own_version_needed, replica_of, replicas_shown
from annotator.core.access import Capability, can, state_reason
from annotator.groundtruth.selectors import attempt_of, attempts_shown
from annotator.projects.models import Project

from . import workflow
from .models import Image, ImageCount, ImageStatus

# The statuses in which an annotator may change an image (theirs or nobody's), from the workflow table.
EDITABLE_BY_ANNOTATOR = tuple(
    status for status, rule in workflow.TABLE[workflow.Action.SAVE].rules.items() if workflow.Who.ANNOTATOR in rule.who
)


Viewer = AbstractBaseUser | AnonymousUser | None


def _stand_ins(project: Project, viewer: Viewer) -> list[QuerySet[Any]]:
    """The viewer's own work that lists show in place of images: ground-truth attempts and
    consensus versions, each row with `seen_status` and `seen_mine` (whether the image shows them
    as its annotator), as the list's rows show them (an abandoned version: a new image, nobody's)."""
    attempts, replicas = attempts_shown(project, viewer), replicas_shown(project, viewer)
    out: list[QuerySet[Any]] = []
    if attempts is not None:
        out.append(attempts.annotate(seen_status=F("status"), seen_mine=Value(True)))
    if replicas is not None:
        live = Q(status__in=LIVE)
        out.append(replicas.annotate(
            seen_status=Case(When(live, then=F("status")), default=Value(ImageStatus.NEW.value)),
            seen_mine=ExpressionWrapper(live, output_field=BooleanField()),
        ))
    return out


def _as_seen(on_image: Q, stand_ins: list[QuerySet[Any]], matching: Q | None) -> Q:
    """A filter on images as the viewer sees them: an image their own work stands in for matches
    when that row does (`matching`, on `seen_status` / `seen_mine`), whatever the image itself holds."""
    seen = on_image
    for rows in stand_ins:
        seen &= ~Q(pk__in=rows.values("image_id"))
    for rows in stand_ins if matching is not None else ():
        seen |= Q(pk__in=rows.filter(matching).values("image_id"))
    return seen


def images_of(project: Project, *, status: str | None = None, assignee: str | None = None, reviewer: str | None = None,
              search: str | None = None, viewer: Viewer = None) -> QuerySet[Image]:
    """The project's images under the list's filters. With `viewer`, filtered as that person sees
    them: a ground-truth image they try, or an image they draw their own consensus version of, has
    their attempt's (version's) status, them as its annotator and no reviewer
    (groundtruth.selectors.images_as_seen, consensus.selectors.replicas_by_image), so "in progress"
    or "mine" lists it."""
    qs = Image.objects.filter(project=project).select_related("assignee", "reviewer")
    stand_ins = _stand_ins(project, viewer)
    if status:
        statuses = status.split(",")
        qs = qs.filter(_as_seen(Q(status__in=statuses), stand_ins, Q(seen_status__in=statuses)))
    if assignee == "none":
        qs = qs.filter(_as_seen(Q(assignee__isnull=True), stand_ins, Q(seen_mine=False)))
    elif assignee:
        own = viewer is not None and assignee == viewer.get_username()
        qs = qs.filter(_as_seen(Q(assignee__username=assignee), stand_ins, Q(seen_mine=True) if own else None))
    if reviewer:
        qs = qs.filter(_as_seen(Q(reviewer__username=reviewer), stand_ins, None))
    if search:
        qs = qs.filter(original_name__icontains=search)
    return qs.order_by("id")


def image_status_counts(project: Project | int) -> dict[str, int]:
    """How many images the project has in each status (every status present, 0 when none).

    Read from the trigger-kept ImageCount rows: a few rows whatever the project's size.
    """
    counts = {status.value: 0 for status in ImageStatus}
    rows = ImageCount.objects.filter(project=project).order_by().values("status").annotate(n=Sum("count"))
    for row in rows:
        counts[row["status"]] = row["n"]
    return counts


def images_count(project: Project, *, status: str | None = None, assignee: str | None = None,
                 reviewer: str | None = None, search: str | None = None, viewer: Viewer = None) -> int | None:
    """The length of `images_of(...)` with the same filters from the kept counts, or None when a
    filter needs the rows counted (a name search; a filter the viewer's own attempts or versions change)."""
    if search or ((status or assignee or reviewer) and _stand_ins(project, viewer)):
        return None
    qs = ImageCount.objects.filter(project=project)
    if status:
        qs = qs.filter(status__in=status.split(","))
    users = get_user_model().objects
    if assignee == "none":
        qs = qs.filter(assignee_pk=0)
    elif assignee:
        qs = qs.filter(assignee_pk=users.filter(username=assignee).values("pk")[:1])
    if reviewer:
        qs = qs.filter(reviewer_pk=users.filter(username=reviewer).values("pk")[:1])
    return qs.aggregate(n=Sum("count"))["n"] or 0


def edit_denied_reason(user: AbstractBaseUser, image: Image) -> str | None:
    """Why `user` may not change this image's annotations now, or None when they may: the
    workflow's decision on "save" for them (on their attempt, when it is a ground-truth image they try)."""
    replica = replica_of(image, user)
    if replica is not None and replica.status not in LIVE:
        return "Your time on this image ran out; it went to someone else."
    if replica is None and (reason := own_version_needed(image)):
        return reason
    subject: workflow.Subject = attempt_of(image, user) or replica or image
    return workflow.decide(subject, workflow.Action.SAVE, workflow.Actor.of(user, image.project)).reason


class EditAccess(NamedTuple):
    """Whether a person may edit an image now; if not, why (`reason`) and what to do about it (`hint`)."""

    can_edit: bool
    reason: str | None
    hint: str | None


def edit_access(user: AbstractBaseUser, image: Image) -> EditAccess:
    """edit_denied_reason with a hint in plain words for the read-only editor."""
    reason = edit_denied_reason(user, image)
    if reason is None:
        return EditAccess(True, None, None)
    project = image.project
    status = (attempt_of(image, user) or replica_of(image, user) or image).status  # as the person sees the image
    annotator = can(user, project, Capability.ANNOTATE)
    reviewer = can(user, project, Capability.REVIEW)
    if state_reason(project, Capability.ANNOTATE) is not None:
        hint = "A manager can unarchive the project (on its Backups page) to change it again." if project.archived_at else None
    elif annotator and status in EDITABLE_BY_ANNOTATOR:
        hint = "Ask a manager to reassign it to you, or take the next image from your queue."
    elif status == ImageStatus.IN_REVIEW and reviewer:
        hint = "Wait for their decision, or ask a manager to give it back to the review queue."
    elif status == ImageStatus.ACCEPTED:
        hint = "Accepted images are training data: ask a manager to reopen it if something needs fixing."
    elif status in (ImageStatus.SUBMITTED, ImageStatus.IN_REVIEW) and annotator:
        hint = "It is waiting for review; if a reviewer rejects it, it comes back to you with their comments."
    elif reviewer and not annotator:
        hint = "Reviewers correct images in review: open it from the review queue once it is submitted."
    else:
        hint = "Ask a manager if it needs changing."
    return EditAccess(False, reason, hint)


class ImageFilters(TypedDict, total=False):
    """The image list's filters (the same names as its query parameters)."""

    status: str
    assignee: str
    q: str


class Neighbours(TypedDict):
    previous: int | None
    next: int | None
    position: int | None
    count: int


def image_neighbours(project: Project, image: Image, filters: ImageFilters, *, viewer: Viewer = None) -> Neighbours:
    """The images before and after `image` in the project's image list filtered by `filters` (list order).

    `position` (1-based) is None when the image itself is not in the filtered list; its neighbours
    are then those it would sit between.
    """
    qs = images_of(project, status=filters.get("status") or None, assignee=filters.get("assignee") or None,
                   search=filters.get("q") or None, viewer=viewer)
    previous = qs.filter(id__lt=image.pk).order_by("-id").values_list("id", flat=True).first()
    following = qs.filter(id__gt=image.pk).values_list("id", flat=True).first()
    inside = qs.filter(id=image.pk).exists()
    return {
        "previous": previous,
        "next": following,
        "position": qs.filter(id__lte=image.pk).count() if inside else None,
        "count": qs.count(),
    }
