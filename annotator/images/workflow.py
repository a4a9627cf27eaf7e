"""The image workflow: every change of an image's status, who may make it, and why not.

One table answers, for an image in a given status, an action (take from the queue, save, submit,
review, import…) and the acting user: the status it moves to and the assignee / reviewer it gets,
or the reason it is refused in plain words. Every writer of ``Image.status`` in every app goes
through `decide` / `apply`; `edit_denied_reason` is the table's answer for "save".

The acting user is an `Actor`: what their role in the project allows now (annotate, review,
manage) and why the project refuses changes to everybody (archived). Whether they are the image's
annotator or its reviewer is read from the image. Refusals come in two kinds: *who* (the role, or
the image is someone else's: 403) and *state* (the action does not apply to an image in this
status: 409). Both raise `WorkflowError`, which the API answers with
``{"detail": reason, "code": ..., "action": ..., "status": ...}``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Protocol

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.utils import timezone

from annotator.core.access import Capability, roles_capabilities, state_reason
from annotator.core.errors import DomainError
from annotator.projects.models import Project

from .models import ImageStatus

S = ImageStatus


class Action(str, Enum):
    CLAIM = "claim"  # the annotate queue hands a new image to an annotator
    SAVE = "save"  # change the annotations
    SUBMIT = "submit"
    RELEASE = "release"  # the annotator gives an unfinished image back to the queue
    START_REVIEW = "start_review"  # the review queue, or taking one image from the list
    ACCEPT = "accept"  # the last accept the project's policy needs
    ACCEPT_PARTLY = "accept_partly"  # an accept that another reviewer must follow
    REJECT = "reject"
    RELEASE_REVIEW = "release_review"  # back to the review queue without a decision
    REOPEN = "reopen"  # a manager sends reviewed work back to its annotator
    RESET = "reset"  # a manager makes it a new, unassigned image again
    ASSIGN = "assign"  # a manager changes the assignee or the reviewer
    IMPORT_AS_NEW = "import_as_new"
    IMPORT_AS_SUBMITTED = "import_as_submitted"
    IMPORT_AS_ACCEPTED = "import_as_accepted"
    MARK_GROUND_TRUTH = "mark_ground_truth"  # a manager freezes an accepted image as ground truth
    UNMARK_GROUND_TRUTH = "unmark_ground_truth"
    # Consensus (annotator.consensus): the image's own status while N annotators draw it.
    CLAIM_REPLICA = "claim_replica"  # the queue hands one more annotator their own version of it
    REQUEUE_REPLICA = "requeue_replica"  # a version not submitted in time is abandoned: a slot is free
    CONSENSUS_COMPLETE = "consensus_complete"  # the last version is in: the merge goes to review


class Hold(Enum):
    """What an allowed action does to the image's assignee or reviewer."""

    KEEP = "keep"
    ACTOR = "actor"  # the acting user holds it now
    ACTOR_IF_FREE = "actor_if_free"  # the acting user, unless someone holds it already
    # An annotator who saves an image nobody holds takes it (it joins their queue); a manager
    # correcting an image does not.
    CLAIM = "claim"
    CLEAR = "clear"


class Who(Enum):
    """Who may act: a capability of their role, and how they must stand to the image."""

    MANAGER = "manager"
    ANNOTATOR = "annotator"  # annotates; the image is theirs or nobody's
    ASSIGNEE = "assignee"  # annotates; the image is theirs
    REVIEWER = "reviewer"  # reviews; did not annotate it; nobody else reviews it
    REVIEWING = "reviewing"  # the image's reviewer


_CAPABILITY = {
    Who.MANAGER: Capability.MANAGE,
    Who.ANNOTATOR: Capability.ANNOTATE,
    Who.ASSIGNEE: Capability.ANNOTATE,
    Who.REVIEWER: Capability.REVIEW,
    Who.REVIEWING: Capability.REVIEW,
}


@dataclass(frozen=True)
class Rule:
    """An action allowed from one status: where it leads, who may take it, what it holds."""

    to: ImageStatus | None  # None: the status stays
    who: tuple[Who, ...]
    assignee: Hold = Hold.KEEP
    reviewer: Hold = Hold.KEEP
    needs_assignee: bool = False  # the image must have an annotator to go back to
    # Whether the image may (None: either), must (True) or must not (False) be ground truth: a
    # ground-truth image is frozen until a manager unmarks it.
    ground_truth: bool | None = None
    # Whether the image must be collecting annotators' versions (Image.replicas_open): only the
    # consensus actions apply then, every other one waits until the versions are merged.
    replicas: bool = False


@dataclass(frozen=True)
class Step:
    """One action: the statuses it applies to, and why it is refused in the others."""

    verb: str  # for the role refusal: "your role cannot <verb> it now"
    rules: dict[ImageStatus, Rule]
    refused: str  # why another status refuses it; {status} is the image's status in words


_WORK = (S.NEW, S.IN_PROGRESS, S.REJECTED)  # what an annotator may still change and submit
_MANAGER = (Who.MANAGER,)


def _from(statuses: tuple[ImageStatus, ...] | type[ImageStatus], rule: Rule) -> dict[ImageStatus, Rule]:
    return {status: rule for status in statuses}


TABLE: dict[Action, Step] = {
    Action.CLAIM: Step(
        "take", {S.NEW: Rule(S.IN_PROGRESS, (Who.ANNOTATOR,), assignee=Hold.ACTOR)},
        "The image is {status}; only new images are handed out by the queue.",
    ),
    Action.SAVE: Step(
        "change",
        {
            S.NEW: Rule(S.IN_PROGRESS, (Who.MANAGER, Who.ANNOTATOR), assignee=Hold.CLAIM),
            S.IN_PROGRESS: Rule(None, (Who.MANAGER, Who.ANNOTATOR)),
            S.REJECTED: Rule(None, (Who.MANAGER, Who.ANNOTATOR)),
            S.SUBMITTED: Rule(None, _MANAGER),
            S.IN_REVIEW: Rule(None, (Who.MANAGER, Who.REVIEWING)),
            S.ACCEPTED: Rule(None, _MANAGER, ground_truth=False),
        },
        "The image is {status}; it cannot be changed.",
    ),
    Action.SUBMIT: Step(
        "submit", _from(_WORK, Rule(S.SUBMITTED, (Who.ANNOTATOR, Who.MANAGER), assignee=Hold.ACTOR_IF_FREE)),
        "The image is {status}; only work in progress can be submitted.",
    ),
    Action.RELEASE: Step(
        "give back", {S.IN_PROGRESS: Rule(S.NEW, (Who.ASSIGNEE, Who.MANAGER), assignee=Hold.CLEAR)},
        "The image is {status}; only an image in progress can be given back to the queue.",
    ),
    Action.START_REVIEW: Step(
        "review",
        {
            S.SUBMITTED: Rule(S.IN_REVIEW, (Who.REVIEWER,), reviewer=Hold.ACTOR),
            S.IN_REVIEW: Rule(None, (Who.REVIEWER,)),  # already theirs
        },
        "The image is {status}; only submitted images can be reviewed.",
    ),
    Action.ACCEPT: Step(
        "accept", _from((S.SUBMITTED, S.IN_REVIEW), Rule(S.ACCEPTED, (Who.REVIEWER,), reviewer=Hold.ACTOR)),
        "The image is {status}; only submitted images can be reviewed.",
    ),
    Action.ACCEPT_PARTLY: Step(
        "accept", _from((S.SUBMITTED, S.IN_REVIEW), Rule(S.SUBMITTED, (Who.REVIEWER,), reviewer=Hold.CLEAR)),
        "The image is {status}; only submitted images can be reviewed.",
    ),
    Action.REJECT: Step(
        "reject", _from((S.SUBMITTED, S.IN_REVIEW), Rule(S.REJECTED, (Who.REVIEWER,), reviewer=Hold.CLEAR)),
        "The image is {status}; only submitted images can be reviewed.",
    ),
    Action.RELEASE_REVIEW: Step(
        "give back", {S.IN_REVIEW: Rule(S.SUBMITTED, (Who.REVIEWING, Who.MANAGER), reviewer=Hold.CLEAR)},
        "The image is {status}, not in review.",
    ),
    Action.REOPEN: Step(
        "reopen",
        _from((S.SUBMITTED, S.IN_REVIEW, S.ACCEPTED, S.REJECTED),
              Rule(S.IN_PROGRESS, _MANAGER, reviewer=Hold.CLEAR, needs_assignee=True, ground_truth=False)),
        "The image is {status}; only submitted, reviewed or rejected work can be reopened.",
    ),
    Action.RESET: Step(
        "reset", _from(ImageStatus, Rule(S.NEW, _MANAGER, assignee=Hold.CLEAR, reviewer=Hold.CLEAR, ground_truth=False)),
        "The image is {status}; it cannot be reset.",
    ),
    Action.ASSIGN: Step("assign", _from(ImageStatus, Rule(None, _MANAGER)), "The image is {status}; it cannot be assigned."),
    # Imports bring annotations from elsewhere: an image imported as new keeps its place in the
    # workflow; one imported as submitted or accepted starts a fresh review round.
    Action.IMPORT_AS_NEW: Step("import", _from(ImageStatus, Rule(None, _MANAGER)), "The image is {status}."),
    Action.IMPORT_AS_SUBMITTED: Step(
        "import", _from(ImageStatus, Rule(S.SUBMITTED, _MANAGER, reviewer=Hold.CLEAR, ground_truth=False)), "The image is {status}.",
    ),
    Action.IMPORT_AS_ACCEPTED: Step(
        "import", _from(ImageStatus, Rule(S.ACCEPTED, _MANAGER, reviewer=Hold.CLEAR, ground_truth=False)), "The image is {status}.",
    ),
    Action.MARK_GROUND_TRUTH: Step(
        "mark", {S.ACCEPTED: Rule(None, _MANAGER, ground_truth=False)},
        "The image is {status}; only accepted images can become ground truth.",
    ),
    Action.UNMARK_GROUND_TRUTH: Step(
        "unmark", {S.ACCEPTED: Rule(None, _MANAGER, ground_truth=True)}, "The image is {status}; it is not ground truth.",
    ),
    # The image itself nobody holds (assignee stays empty): each annotator holds their own version.
    Action.CLAIM_REPLICA: Step(
        "take",
        {
            S.NEW: Rule(S.IN_PROGRESS, (Who.ANNOTATOR,), ground_truth=False),
            S.IN_PROGRESS: Rule(None, (Who.ANNOTATOR,), ground_truth=False, replicas=True),
        },
        "The image is {status}; only new images are handed out by the queue.",
    ),
    Action.REQUEUE_REPLICA: Step(
        "requeue", {S.IN_PROGRESS: Rule(None, _MANAGER, replicas=True)}, "The image is {status}; nobody draws a version of it.",
    ),
    Action.CONSENSUS_COMPLETE: Step(
        "submit", {S.IN_PROGRESS: Rule(S.SUBMITTED, (Who.MANAGER, Who.ANNOTATOR), replicas=True)},
        "The image is {status}; it is not collecting annotators' versions.",
    ),
}

# Where a manager's PATCH of `status` leads: each target is one of the table's actions.
STATUS_ACTIONS: dict[ImageStatus, Action] = {
    S.NEW: Action.RESET,
    S.IN_PROGRESS: Action.REOPEN,
    S.SUBMITTED: Action.RELEASE_REVIEW,
}
# How an import leaves the images it brings, by the status it was asked for.
IMPORT_ACTIONS: dict[ImageStatus, Action] = {
    S.NEW: Action.IMPORT_AS_NEW,
    S.SUBMITTED: Action.IMPORT_AS_SUBMITTED,
    S.ACCEPTED: Action.IMPORT_AS_ACCEPTED,
}
# An annotator's own queue: unfinished work assigned to them, before anything new.
ANNOTATOR_WORK = (S.IN_PROGRESS, S.REJECTED)


class Subject(Protocol):
    """What the table reads of an image (or of anything in the workflow's states: an annotator's
    attempt at a ground-truth image). `is_ground_truth` is read where it is there."""

    status: str
    assignee_id: int | None
    reviewer_id: int | None


@dataclass(frozen=True)
class Actor:
    """Who acts, as the table sees them: their user id, what their role allows, whether the
    project refuses every change (archived, being deleted). `user_id` None is the system
    (a command line import), which may do what a manager may."""

    user_id: int | None
    capabilities: frozenset[Capability]
    blocked: str | None = None

    @classmethod
    def of(cls, user: AbstractBaseUser | AnonymousUser | Actor | None, project: Project | int) -> Actor:
        if isinstance(user, Actor):
            return user
        blocked = state_reason(project, Capability.ANNOTATE)
        if user is None:
            return cls(None, frozenset(Capability), blocked)
        return cls(user.pk, roles_capabilities(user, project), blocked)


@dataclass(frozen=True)
class Decision:
    """The table's answer: allowed (`to`, `changes`) or refused (`reason`, `http_status`)."""

    action: Action
    status: ImageStatus
    to: ImageStatus | None = None
    changes: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None
    http_status: int = 200
    by: Who | None = None

    @property
    def allowed(self) -> bool:
        return self.reason is None


class WorkflowError(DomainError):
    """An action the workflow refuses: 409 for the image's state, 403 for who asks."""

    def __init__(self, decision: Decision):
        code = "invalid_transition" if decision.http_status == 409 else "not_allowed"
        super().__init__(
            decision.reason or "", status=decision.http_status,
            extra={"code": code, "action": decision.action.value, "status": decision.status.value},
        )
        self.decision = decision


def decide(subject: Subject, action: Action, actor: Actor) -> Decision:
    """What `action` by `actor` does to `subject` now (nothing is changed)."""
    status = ImageStatus(subject.status)
    if actor.blocked is not None:
        return Decision(action, status, reason=actor.blocked, http_status=403)
    step = TABLE[action]
    if not actor.capabilities & set(_CAPABILITY.values()):
        return Decision(action, status, reason="Your role in this project does not allow you to change its images.", http_status=403)
    rule = step.rules.get(status)
    if rule is None:
        return Decision(action, status, reason=step.refused.format(status=_words(status)), http_status=409)
    by, refusal = _who(subject, rule.who, actor)
    if by is None:
        reason, http_status = refusal or (f"The image is {_words(status)}; your role cannot {step.verb} it now.", 403)
        return Decision(action, status, reason=reason, http_status=http_status)
    if rule.needs_assignee and subject.assignee_id is None:
        return Decision(action, status, reason="Nobody annotated this image; reset it to new instead.", http_status=409)
    truth = bool(getattr(subject, "is_ground_truth", False))
    if rule.ground_truth is not None and rule.ground_truth != truth:
        reason = "The image is not ground truth." if rule.ground_truth else (
            "This image is ground truth: it stays as it is until a manager unmarks it."
        )
        return Decision(action, status, reason=reason, http_status=409)
    if rule.replicas != bool(getattr(subject, "replicas_open", False)):
        reason = "The image is not collecting annotators' versions." if rule.replicas else (
            "Several annotators are drawing their own versions of this image; it changes when all of them have submitted."
        )
        return Decision(action, status, reason=reason, http_status=409)
    to = rule.to or status
    changes: dict[str, Any] = {"status": to}
    if action in (Action.MARK_GROUND_TRUTH, Action.UNMARK_GROUND_TRUTH):
        changes["is_ground_truth"] = action == Action.MARK_GROUND_TRUTH
    if action in (Action.CLAIM_REPLICA, Action.CONSENSUS_COMPLETE):
        changes["replicas_open"] = action == Action.CLAIM_REPLICA
    assignee = _hold(rule.assignee, subject.assignee_id, actor, by)
    if assignee != subject.assignee_id:
        changes["assignee_id"] = assignee
    reviewer = _hold(rule.reviewer, subject.reviewer_id, actor, by)
    if reviewer != subject.reviewer_id:
        changes["reviewer_id"] = reviewer
    if to == S.SUBMITTED and action in (Action.SUBMIT, Action.IMPORT_AS_SUBMITTED, Action.CONSENSUS_COMPLETE):
        changes["submitted_at"] = timezone.now()  # a new review round (kept by a partial accept)
    return Decision(action, status, to=to, changes=changes, by=by)


def apply(image: Any, action: Action, user: AbstractBaseUser | AnonymousUser | Actor | None) -> list[str]:
    """Decide and set the image's fields (the caller saves them, under its lock); raise
    WorkflowError when refused. Returns the fields to save."""
    decision = decide(image, action, Actor.of(user, image.project_id))
    if not decision.allowed:
        raise WorkflowError(decision)
    for name, value in decision.changes.items():
        setattr(image, name, value)
    return [name.removesuffix("_id") for name in decision.changes] + ["updated_at"]


def sources(action: Action) -> tuple[ImageStatus, ...]:
    """The statuses `action` applies to (the queues' filters)."""
    return tuple(TABLE[action].rules)


def _who(subject: Subject, who: tuple[Who, ...], actor: Actor) -> tuple[Who | None, tuple[str, int] | None]:
    """The first of `who` the actor is, or None and the refusal of the first one their role allows."""
    refusal: tuple[str, int] | None = None
    for candidate in who:
        if _CAPABILITY[candidate] not in actor.capabilities:
            continue
        reason = _relation(subject, candidate, actor)
        if reason is None:
            return candidate, None
        refusal = refusal or reason
    return None, refusal


def _relation(subject: Subject, who: Who, actor: Actor) -> tuple[str, int] | None:
    me = actor.user_id
    if who == Who.ANNOTATOR and subject.assignee_id not in (None, me):
        return "This image is assigned to another annotator.", 403
    if who == Who.ASSIGNEE and subject.assignee_id != me:
        return "This image is assigned to someone else.", 403
    if who == Who.REVIEWER:
        if me is not None and subject.assignee_id == me:
            return "You annotated this image; someone else must review it.", 403
        if subject.reviewer_id not in (None, me):
            return "Someone else is reviewing this image.", 409
    if who == Who.REVIEWING and subject.reviewer_id != me:
        return "This image is being reviewed by someone else.", 403
    return None


def _hold(hold: Hold, current: int | None, actor: Actor, by: Who) -> int | None:
    if hold == Hold.ACTOR:
        return actor.user_id
    if hold == Hold.ACTOR_IF_FREE:
        return current if current is not None else actor.user_id
    if hold == Hold.CLAIM:
        return current if current is not None or by == Who.MANAGER else actor.user_id
    if hold == Hold.CLEAR:
        return None
    return current


def _words(status: ImageStatus) -> str:
    return str(status.label).lower()
