"""The image workflow table, walked whole: every status × action × person.

The expectations below are written out by hand (what each person may do to an image in each
situation and where it leads), not read from the table: a change to the table that this
specification does not make is a failing test. Everything not listed is refused, with a reason,
and leaves the image exactly as it was.
"""
from __future__ import annotations

import pytest

from annotator.images import workflow
from annotator.images.models import Image, ImageStatus
from annotator.images.workflow import Action, Actor, WorkflowError
from tests.factories import MembershipFactory, UserFactory, make_images

S = ImageStatus
PERSONS = ("annotator", "annotator2", "reviewer", "reviewer2", "manager", "admin")
MANAGERS = ("manager", "admin")

# Situations: (status, assignee, reviewer) of the image before the action; "ground truth" is an
# accepted image a manager marked.
SITUATIONS: dict[str, tuple[ImageStatus, str | None, str | None]] = {
    "new, free": (S.NEW, None, None),
    "new, assigned": (S.NEW, "annotator", None),
    "in progress": (S.IN_PROGRESS, "annotator", None),
    "rejected": (S.REJECTED, "annotator", None),
    "submitted": (S.SUBMITTED, "annotator", None),
    "in review": (S.IN_REVIEW, "annotator", "reviewer"),
    "accepted": (S.ACCEPTED, "annotator", "reviewer"),
    "ground truth": (S.ACCEPTED, "annotator", "reviewer"),
    # Several annotators draw their own versions of it (consensus): the image itself nobody holds.
    "collecting": (S.IN_PROGRESS, None, None),
}
ALL = tuple(s for s in SITUATIONS if s not in ("ground truth", "collecting"))
ACTOR = "<actor>"  # the acting person
KEPT = "<kept>"  # as before


def _allowed(situations: tuple[str, ...], persons: tuple[str, ...], to: ImageStatus | None,
             assignee: str | None = KEPT, reviewer: str | None = KEPT) -> dict[tuple[str, str], tuple]:
    return {(s, p): (to, assignee, reviewer) for s in situations for p in persons}


REVIEWERS = ("reviewer", "reviewer2", *MANAGERS)
# action -> {(situation, person): (status after (None: unchanged), assignee after, reviewer after)}
SPEC: dict[Action, dict[tuple[str, str], tuple]] = {
    Action.CLAIM: {
        **_allowed(("new, free",), ("annotator", "annotator2", *MANAGERS), S.IN_PROGRESS, assignee=ACTOR),
        **_allowed(("new, assigned",), ("annotator",), S.IN_PROGRESS),
    },
    Action.SAVE: {
        **_allowed(("new, free",), ("annotator", "annotator2"), S.IN_PROGRESS, assignee=ACTOR),
        **_allowed(("new, free",), MANAGERS, S.IN_PROGRESS),  # a manager's correction takes nothing
        **_allowed(("new, assigned",), ("annotator", *MANAGERS), S.IN_PROGRESS),
        **_allowed(("in progress", "rejected"), ("annotator", *MANAGERS), None),
        **_allowed(("submitted", "accepted"), MANAGERS, None),
        **_allowed(("in review",), ("reviewer", *MANAGERS), None),
    },
    Action.SUBMIT: {
        **_allowed(("new, free",), ("annotator", "annotator2", *MANAGERS), S.SUBMITTED, assignee=ACTOR),
        **_allowed(("new, assigned", "in progress", "rejected"), ("annotator", *MANAGERS), S.SUBMITTED),
    },
    Action.RELEASE: _allowed(("in progress",), ("annotator", *MANAGERS), S.NEW, assignee=None),
    Action.START_REVIEW: {
        **_allowed(("submitted",), REVIEWERS, S.IN_REVIEW, reviewer=ACTOR),
        **_allowed(("in review",), ("reviewer",), None),
    },
    Action.ACCEPT: {
        **_allowed(("submitted",), REVIEWERS, S.ACCEPTED, reviewer=ACTOR),
        **_allowed(("in review",), ("reviewer",), S.ACCEPTED, reviewer=ACTOR),
    },
    Action.ACCEPT_PARTLY: _allowed(("submitted",), REVIEWERS, S.SUBMITTED, reviewer=None)
    | _allowed(("in review",), ("reviewer",), S.SUBMITTED, reviewer=None),
    Action.REJECT: _allowed(("submitted",), REVIEWERS, S.REJECTED, reviewer=None)
    | _allowed(("in review",), ("reviewer",), S.REJECTED, reviewer=None),
    Action.RELEASE_REVIEW: _allowed(("in review",), ("reviewer", *MANAGERS), S.SUBMITTED, reviewer=None),
    Action.REOPEN: _allowed(("rejected", "submitted", "in review", "accepted"), MANAGERS, S.IN_PROGRESS, reviewer=None),
    Action.RESET: _allowed(ALL, MANAGERS, S.NEW, assignee=None, reviewer=None),
    Action.ASSIGN: _allowed((*ALL, "ground truth"), MANAGERS, None),
    Action.IMPORT_AS_NEW: _allowed((*ALL, "ground truth"), MANAGERS, None),
    Action.IMPORT_AS_SUBMITTED: _allowed(ALL, MANAGERS, S.SUBMITTED, reviewer=None),
    Action.IMPORT_AS_ACCEPTED: _allowed(ALL, MANAGERS, S.ACCEPTED, reviewer=None),
    Action.MARK_GROUND_TRUTH: _allowed(("accepted",), MANAGERS, None),
    Action.UNMARK_GROUND_TRUTH: _allowed(("ground truth",), MANAGERS, None),
    Action.CLAIM_REPLICA: {
        **_allowed(("new, free", "collecting"), ("annotator", "annotator2", *MANAGERS), S.IN_PROGRESS),
        **_allowed(("new, assigned",), ("annotator",), S.IN_PROGRESS),
    },
    Action.REQUEUE_REPLICA: _allowed(("collecting",), MANAGERS, None),
    Action.CONSENSUS_COMPLETE: _allowed(("collecting",), ("annotator", "annotator2", *MANAGERS), S.SUBMITTED),
}
# Where the image is ground truth after the action (before it: the situation says).
GROUND_TRUTH_AFTER = {Action.MARK_GROUND_TRUTH: True, Action.UNMARK_GROUND_TRUTH: False}
# Whether it collects annotators' versions after the action.
REPLICAS_AFTER = {Action.CLAIM_REPLICA: True, Action.CONSENSUS_COMPLETE: False}


@pytest.fixture
def people(world) -> dict:
    world.users["reviewer2"] = UserFactory(username="reviewer2")
    MembershipFactory(project=world.project, user=world.users["reviewer2"], role="reviewer")
    return world.users


def test_the_specification_names_every_action_of_the_table() -> None:
    assert set(SPEC) == set(Action) == set(workflow.TABLE)


def _situation(world, people, image: Image, name: str) -> Image:
    status, assignee, reviewer = SITUATIONS[name]
    Image.objects.filter(pk=image.pk).update(
        status=status, assignee=people.get(assignee), reviewer=people.get(reviewer), submitted_at=None,
        is_ground_truth=name == "ground truth", replicas_open=name == "collecting",
    )
    image.refresh_from_db()
    return image


@pytest.mark.parametrize("action", list(Action), ids=lambda a: a.value)
def test_every_status_and_person_gets_what_the_specification_says(world, people, action: Action) -> None:
    image = make_images(world.project, 1)[0]
    expected = SPEC[action]
    for situation in SITUATIONS:
        for person in PERSONS:
            image = _situation(world, people, image, situation)
            before = (image.status, image.assignee_id, image.reviewer_id, image.is_ground_truth, image.replicas_open)
            where = f"{action.value} on {situation} by {person}"
            try:
                fields = workflow.apply(image, action, people[person])
            except WorkflowError as exc:
                assert (situation, person) not in expected, f"{where}: refused ({exc.detail})"
                assert exc.detail and exc.status in (403, 409), where
                assert exc.extra["action"] == action.value and exc.extra["status"] == before[0], where
                image.refresh_from_db()
                assert (image.status, image.assignee_id, image.reviewer_id, image.is_ground_truth, image.replicas_open) == before, (
                    f"{where}: changed on refusal"
                )
                continue
            assert (situation, person) in expected, f"{where}: allowed, the specification refuses it"
            image.save(update_fields=fields)
            image.refresh_from_db()
            to, assignee, reviewer = expected[(situation, person)]
            ids = {ACTOR: people[person].pk, KEPT: None, None: None}
            assert image.status == (to or before[0]), where
            assert image.assignee_id == (before[1] if assignee == KEPT else ids[assignee]), where
            assert image.reviewer_id == (before[2] if reviewer == KEPT else ids[reviewer]), where
            assert image.is_ground_truth == GROUND_TRUTH_AFTER.get(action, before[3]), where
            assert image.replicas_open == REPLICAS_AFTER.get(action, before[4]), where
            if image.status == S.SUBMITTED and action in (Action.SUBMIT, Action.IMPORT_AS_SUBMITTED, Action.CONSENSUS_COMPLETE):
                assert image.submitted_at is not None, where


@pytest.mark.parametrize("action", list(Action), ids=lambda a: a.value)
def test_a_status_no_one_may_leave_by_an_action_is_a_409_for_everyone(world, people, action: Action) -> None:
    image = make_images(world.project, 1)[0]
    statuses = {SITUATIONS[s][0] for s, _ in SPEC[action]}  # where someone may take the action
    for situation in ALL:
        if SITUATIONS[situation][0] in statuses:
            continue
        image = _situation(world, people, image, situation)
        for person in PERSONS:
            decision = workflow.decide(image, action, Actor.of(people[person], world.project))
            assert decision.http_status == 409, f"{action.value} on {situation} by {person}: {decision}"


@pytest.mark.parametrize("action", [
    Action.SAVE, Action.REOPEN, Action.RESET, Action.IMPORT_AS_SUBMITTED, Action.IMPORT_AS_ACCEPTED, Action.MARK_GROUND_TRUTH,
], ids=lambda a: a.value)
def test_a_ground_truth_image_stays_as_it_is_even_for_managers(world, people, action: Action) -> None:
    image = _situation(world, people, make_images(world.project, 1)[0], "ground truth")
    decision = workflow.decide(image, action, Actor.of(people["manager"], world.project))
    assert decision.http_status == 409
    expected = "is ground truth" if action != Action.MARK_GROUND_TRUTH else "ground truth"
    assert expected in (decision.reason or "")


@pytest.mark.parametrize("action", [
    Action.SAVE, Action.SUBMIT, Action.RELEASE, Action.RESET, Action.ASSIGN, Action.IMPORT_AS_NEW, Action.IMPORT_AS_ACCEPTED,
], ids=lambda a: a.value)
def test_an_image_collecting_versions_waits_for_them_even_for_managers(world, people, action: Action) -> None:
    image = _situation(world, people, make_images(world.project, 1)[0], "collecting")
    decision = workflow.decide(image, action, Actor.of(people["manager"], world.project))
    assert decision.http_status == 409 and "when all of them have submitted" in (decision.reason or "")


def test_outsiders_and_an_archived_project_may_do_nothing(world, people) -> None:
    from django.utils import timezone

    image = make_images(world.project, 1)[0]
    for action in Action:
        decision = workflow.decide(image, action, Actor.of(people["outsider"], world.project))
        assert not decision.allowed and decision.http_status == 403, action
    world.project.archived_at = timezone.now()
    world.project.save()
    for action in Action:
        decision = workflow.decide(image, action, Actor.of(people["admin"], world.project))
        assert decision.http_status == 403 and "archived" in (decision.reason or ""), action


def test_reopen_needs_an_annotator_to_send_the_image_back_to(world, people) -> None:
    image = make_images(world.project, 1)[0]
    Image.objects.filter(pk=image.pk).update(status=S.SUBMITTED)
    image.refresh_from_db()
    with pytest.raises(WorkflowError, match="Nobody annotated this image") as caught:
        workflow.apply(image, Action.REOPEN, people["manager"])
    assert caught.value.status == 409


# The API answers refusals with the reason, a code, the action and the status.


def _accepted(world) -> Image:
    image = make_images(world.project, 1)[0]
    Image.objects.filter(pk=image.pk).update(status=S.ACCEPTED, assignee=world.users["annotator"], reviewer=world.users["reviewer"])
    image.refresh_from_db()
    return image


def test_submitting_an_accepted_image_is_a_409_that_says_why(world) -> None:
    image = _accepted(world)
    response = world.client("annotator").post(f"/api/images/{image.pk}/submit/")
    assert response.status_code == 409
    assert response.json() == {
        "detail": "The image is accepted; only work in progress can be submitted.",
        "code": "invalid_transition", "action": "submit", "status": "accepted",
    }
    image.refresh_from_db()
    assert image.status == S.ACCEPTED


@pytest.mark.parametrize("target", ["accepted", "rejected", "in_review"])
def test_a_manager_cannot_patch_an_image_into_a_review_outcome(world, target: str) -> None:
    image = make_images(world.project, 1)[0]
    response = world.client("manager").patch(f"/api/images/{image.pk}/", {"status": target}, format="json")
    assert response.status_code == 409
    assert response.json()["code"] == "invalid_transition"
    assert "through the workflow" in response.json()["detail"]
    image.refresh_from_db()
    assert image.status == S.NEW


def test_a_manager_resets_an_accepted_image_to_new_and_unassigned(world) -> None:
    image = _accepted(world)
    response = world.client("manager").patch(f"/api/images/{image.pk}/", {"status": "new", "priority": 4}, format="json")
    assert response.status_code == 200, response.json()
    assert (response.json()["status"], response.json()["assignee"], response.json()["reviewer"]) == ("new", None, None)
    image.refresh_from_db()
    assert (image.status, image.assignee_id, image.reviewer_id, image.priority) == (S.NEW, None, None, 4)


def test_a_manager_reopens_accepted_work_for_its_annotator(world) -> None:
    image = _accepted(world)
    response = world.client("manager").patch(f"/api/images/{image.pk}/", {"status": "in_progress"}, format="json")
    assert response.status_code == 200
    assert (response.json()["status"], response.json()["assignee"], response.json()["reviewer"]) == ("in_progress", "annotator", None)
    # It is the annotator's unfinished work again: their queue gives it back first.
    answer = world.client("annotator").post(f"/api/projects/{world.project.pk}/queue/next/")
    assert answer.json()["image"]["id"] == image.pk


def test_giving_back_a_new_image_to_the_review_queue_is_refused(world) -> None:
    image = make_images(world.project, 1)[0]
    response = world.client("manager").patch(f"/api/images/{image.pk}/", {"status": "submitted"}, format="json")
    assert response.status_code == 409
    assert response.json()["detail"] == "The image is new, not in review."
    assert response.json()["action"] == "release_review"


def test_an_annotator_gives_an_unfinished_image_back_to_the_queue(world) -> None:
    make_images(world.project, 1)
    annotator = world.client("annotator")
    image_id = annotator.post(f"/api/projects/{world.project.pk}/queue/next/").json()["image"]["id"]
    assert world.client("annotator2").post(f"/api/images/{image_id}/release/").status_code == 403
    response = annotator.post(f"/api/images/{image_id}/release/")
    assert response.status_code == 200
    assert (response.json()["image"]["status"], response.json()["image"]["assignee"]) == ("new", None)
    # Given back, it is anybody's again.
    assert world.client("annotator2").post(f"/api/projects/{world.project.pk}/queue/next/").json()["image"]["id"] == image_id
    again = annotator.post(f"/api/images/{image_id}/release/")
    assert again.status_code == 403 and again.json()["code"] == "not_allowed"


def test_only_its_reviewer_or_a_manager_gives_a_review_back(world, people) -> None:
    image = _accepted(world)
    Image.objects.filter(pk=image.pk).update(status=S.IN_REVIEW)
    refused = world.client("reviewer2").post(f"/api/images/{image.pk}/review/release/")
    assert refused.status_code == 403
    assert refused.json()["detail"] == "This image is being reviewed by someone else."
    client = world.client("reviewer")
    assert client.post(f"/api/images/{image.pk}/review/release/").status_code == 200
    response = client.post(f"/api/images/{image.pk}/review/release/")
    assert response.status_code == 409
    assert response.json()["detail"] == "The image is submitted, not in review."


def test_edit_access_is_the_tables_answer_on_saving(world, people) -> None:
    image = _accepted(world)
    for person in PERSONS:
        access = world.client(person).get(f"/api/images/{image.pk}/access/").json()
        decision = workflow.decide(image, Action.SAVE, Actor.of(people[person], world.project))
        assert access["can_edit"] == decision.allowed and access["reason"] == decision.reason, person
    assert world.client("annotator").get(f"/api/images/{image.pk}/access/").json()["reason"] == (
        "The image is accepted; your role cannot change it now."
    )
