"""Active annotation time: the editor's reports, work sessions, the break reminder and the time report."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client

from annotator.quality.models import TimeRecord
from annotator.quality.selectors import minutes_into_session, time_session
from annotator.quality.services import time_record_add
from tests.factories import make_images, polygon_geometry, square

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def _save_objects(world, image, count: int) -> None:
    """`count` squares on the image, saved through the API as the annotator."""
    objects = [
        {"label": world.labels[0].pk, "geometry": polygon_geometry(square(5 + 12 * k, 5, 10))} for k in range(count)
    ]
    response = world.client("annotator").put(
        f"/api/images/{image.pk}/annotations/", {"version": image.version, "annotations": objects}, format="json"
    )
    assert response.status_code == 200, response.json()
    image.refresh_from_db()


# --------------------------------------------------------------------------------------------
# Reporting time
# --------------------------------------------------------------------------------------------


def test_annotator_reports_active_time_and_gets_the_session_back(world, image) -> None:
    _save_objects(world, image, 3)
    response = world.client("annotator").post(f"/api/images/{image.pk}/time/", {"seconds": 42.5}, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["seconds"] == 42.5
    assert body["break_reminder_minutes"] == 90
    assert body["session"]["active_seconds"] == 42.5
    assert body["session"]["minutes"] == pytest.approx(42.5 / 60, abs=0.05)
    again = world.client("annotator").post(f"/api/images/{image.pk}/time/", {"seconds": 7.5}, format="json").json()
    assert again["seconds"] == 50.0 and again["session"]["active_seconds"] == 50.0
    record = TimeRecord.objects.order_by("ended_at").first()
    assert (record.user, record.image, record.seconds, record.object_count) == (world.users["annotator"], image, 42.5, 3)
    assert record.ended_at - record.started_at == timedelta(seconds=42.5)
    assert record.session_started_at == record.started_at


def test_the_editor_reads_the_session_when_it_opens(world, image) -> None:
    url = f"/api/images/{image.pk}/time/"
    assert world.client("annotator").get(url).json() == {"seconds": 0.0, "session": None, "break_reminder_minutes": 90}
    world.client("annotator").post(url, {"seconds": 30}, format="json")
    state = world.client("annotator").get(url).json()
    assert state["seconds"] == 30.0 and state["session"]["active_seconds"] == 30.0
    # somebody else's time is theirs
    assert world.client("manager").get(url).json()["session"] is None
    assert not TimeRecord.objects.filter(user=world.users["manager"]).exists()


@pytest.mark.parametrize("seconds", [0, -5, 3601, "soon", None, "nan", "inf"])
def test_a_report_of_no_time_or_of_more_than_an_hour_is_refused(world, image, seconds) -> None:
    response = world.client("annotator").post(f"/api/images/{image.pk}/time/", {"seconds": seconds}, format="json")
    assert response.status_code == 400
    assert "seconds" in response.json()["detail"]
    assert not TimeRecord.objects.exists()


@pytest.mark.parametrize(("persona", "status"), [("outsider", 404), ("reviewer", 403), ("anonymous", 401)])
def test_only_people_who_may_annotate_report_time(world, image, persona, status) -> None:
    response = world.client(persona).post(f"/api/images/{image.pk}/time/", {"seconds": 10}, format="json")
    assert response.status_code == status
    assert not TimeRecord.objects.exists()


def test_the_page_hide_beacon_is_a_form_post_with_the_csrf_token(world, image) -> None:
    # navigator.sendBeacon cannot set headers: the token travels in the form body
    client = Client(enforce_csrf_checks=True)
    client.force_login(world.users["annotator"])
    token = "a" * 32
    client.cookies["csrftoken"] = token
    refused = client.post(f"/api/images/{image.pk}/time/", {"seconds": "12"})
    assert refused.status_code == 403
    accepted = client.post(f"/api/images/{image.pk}/time/", {"seconds": "12", "csrfmiddlewaretoken": token})
    assert accepted.status_code == 201, accepted.content
    assert TimeRecord.objects.get().seconds == 12.0


def test_no_time_is_recorded_on_an_archived_project(world, image) -> None:
    assert world.client("manager").post(f"/api/projects/{world.project.pk}/archive/").status_code == 200
    response = world.client("annotator").post(f"/api/images/{image.pk}/time/", {"seconds": 10}, format="json")
    assert response.status_code == 403
    assert "archived" in response.json()["detail"]


# --------------------------------------------------------------------------------------------
# Work sessions
# --------------------------------------------------------------------------------------------


def test_a_session_goes_on_across_images_until_a_pause_of_thirty_minutes(world) -> None:
    first, second = make_images(world.project, 2)
    user = world.users["annotator"]
    a = time_record_add(image=first, user=user, seconds=60, now=at(1))
    b = time_record_add(image=second, user=user, seconds=60, now=at(30))  # starts 28 min after a ended
    c = time_record_add(image=first, user=user, seconds=60, now=at(61))  # starts exactly 30 min after b
    assert a.session_started_at == b.session_started_at == at(0)
    assert c.session_started_at == c.started_at == at(60)
    session = time_session(user=user, now=at(61))
    assert session == {"started_at": at(60), "minutes": 1.0, "active_seconds": 60.0}
    # after a pause of the session gap there is no session going on
    assert time_session(user=user, now=at(90)) is not None
    assert time_session(user=user, now=at(91)) is None
    assert minutes_into_session(image_id=second.pk, user_id=user.pk) == 30.0
    assert minutes_into_session(image_id=second.pk, user_id=world.users["annotator2"].pk) is None


def test_sessions_belong_to_each_person(world, image) -> None:
    time_record_add(image=image, user=world.users["annotator"], seconds=60, now=at(1))
    other = time_record_add(image=image, user=world.users["manager"], seconds=60, now=at(2))
    assert other.session_started_at == at(1)


def test_overlapping_spans_from_two_tabs_keep_the_session_start_before_the_span(world) -> None:
    first, second = make_images(world.project, 2)
    user = world.users["annotator"]
    time_record_add(image=first, user=user, seconds=60, now=at(10))
    # a late tab reports ten minutes that began before the first span's session
    late = time_record_add(image=second, user=user, seconds=600, now=at(11))
    assert late.session_started_at == late.started_at == at(1)


# --------------------------------------------------------------------------------------------
# Break reminder setting
# --------------------------------------------------------------------------------------------


def test_manager_sets_the_break_reminder_and_the_editor_reads_it(world, image) -> None:
    url = f"/api/projects/{world.project.pk}/"
    assert world.client("annotator").get(url).json()["break_reminder_minutes"] == 90
    assert world.client("manager").patch(url, {"break_reminder_minutes": 45}, format="json").status_code == 200
    assert world.client("annotator").get(url).json()["break_reminder_minutes"] == 45
    response = world.client("annotator").post(f"/api/images/{image.pk}/time/", {"seconds": 5}, format="json")
    assert response.json()["break_reminder_minutes"] == 45
    assert world.client("manager").patch(url, {"break_reminder_minutes": 0}, format="json").json()["break_reminder_minutes"] == 0


@pytest.mark.parametrize("value", [-1, 1441, "long", 1.5])
def test_a_break_reminder_out_of_range_is_refused(world, value) -> None:
    response = world.client("manager").patch(f"/api/projects/{world.project.pk}/", {"break_reminder_minutes": value}, format="json")
    assert response.status_code == 400
    assert "break_reminder_minutes" in response.json()["detail"]


def test_annotators_cannot_change_the_break_reminder(world) -> None:
    response = world.client("annotator").patch(f"/api/projects/{world.project.pk}/", {"break_reminder_minutes": 5}, format="json")
    assert response.status_code == 403


def test_time_records_and_the_break_reminder_survive_a_backup_and_restore(world, tmp_path) -> None:
    from annotator.backups.services import BackupOptions, RestoreOptions, backup_write, restore

    world.project.break_reminder_minutes = 50
    world.project.save()
    first, second = make_images(world.project, 2)
    time_record_add(image=first, user=world.users["annotator"], seconds=60, now=at(1))
    time_record_add(image=second, user=world.users["annotator"], seconds=30, now=at(2))
    time_record_add(image=second, user=world.users["annotator2"], seconds=45.5, now=at(3))
    path = tmp_path / "project.zip"
    backup_write(project=world.project, out=path, options=BackupOptions())
    restored = restore(path=path, archive_name=path.name, options=RestoreOptions(name="Copy")).project
    assert restored.break_reminder_minutes == 50

    def records(project):  # type: ignore[no-untyped-def]
        return list(
            TimeRecord.objects.filter(image__project=project).order_by("ended_at").values_list(
                "image__original_name", "user__username", "seconds", "object_count", "started_at", "ended_at", "session_started_at"
            )
        )

    assert len(records(restored)) == 3
    assert records(restored) == records(world.project)


# --------------------------------------------------------------------------------------------
# The time report
# --------------------------------------------------------------------------------------------


@pytest.fixture
def worked(world):
    """The annotator worked on two images (one twice), annotator2 on one; every span ends at a known time."""
    first, second = make_images(world.project, 2)
    _save_objects(world, first, 4)
    annotator, other = world.users["annotator"], world.users["annotator2"]
    time_record_add(image=first, user=annotator, seconds=100, now=at(2))
    time_record_add(image=first, user=annotator, seconds=20, now=at(3))
    _save_objects(world, second, 2)
    time_record_add(image=second, user=annotator, seconds=60, now=at(64))  # a new session
    time_record_add(image=second, user=other, seconds=30, now=at(5))
    return first, second


def test_manager_sees_time_per_image_per_object_and_per_hour_for_each_annotator(world, worked) -> None:
    response = world.client("manager").get(f"/api/projects/{world.project.pk}/quality/time/")
    assert response.status_code == 200
    body = response.json()
    assert body["session_gap_minutes"] == 30
    rows = {row["username"]: row for row in body["annotators"]}
    assert set(rows) == {"annotator", "annotator2"}
    mine = rows["annotator"]
    # 120 s on 4 objects and 60 s on 2: 180 s, 2 images, 6 objects
    assert (mine["images"], mine["objects"], mine["seconds"]) == (2, 6, 180.0)
    assert (mine["seconds_per_image"], mine["seconds_per_object"], mine["objects_per_hour"]) == (90.0, 30.0, 120.0)
    assert mine["sessions"] == 2
    # the first image was started at minute 0 of its session and the second at minute 0 of another
    assert mine["pace"] == [{"start": 0.0, "end": 30.0, "count": 2, "mean": 30.0}]
    assert rows["annotator2"]["objects"] == 2 and rows["annotator2"]["seconds_per_object"] == 15.0


def test_pace_bins_by_minutes_into_the_session(world) -> None:
    images = make_images(world.project, 2)
    _save_objects(world, images[0], 1)
    _save_objects(world, images[1], 1)
    user = world.users["annotator"]
    time_record_add(image=images[0], user=user, seconds=60, now=at(1))
    for minute in range(2, 50):  # keep the session going
        time_record_add(image=images[0], user=user, seconds=60, now=at(minute))
    time_record_add(image=images[1], user=user, seconds=90, now=at(51.5))
    response = world.client("manager").get(f"/api/projects/{world.project.pk}/quality/time/?bin_minutes=25")
    [row] = response.json()["annotators"]
    assert row["pace"] == [
        {"start": 0.0, "end": 25.0, "count": 1, "mean": 49 * 60.0},
        {"start": 25.0, "end": 50.0, "count": 0, "mean": None},
        {"start": 50.0, "end": 75.0, "count": 1, "mean": 90.0},
    ]


def test_pace_of_overlapping_spans_starts_at_the_earliest_span(world) -> None:
    # a one-second span, then a late tab's hour that began long before it: the image was started
    # an hour before the first span ended, at minute 0 of the session
    image = make_images(world.project, 1)[0]
    _save_objects(world, image, 2)
    user = world.users["annotator"]
    time_record_add(image=image, user=user, seconds=1, now=at(60))
    time_record_add(image=image, user=user, seconds=3600, now=at(60) + timedelta(seconds=1))
    [row] = world.client("manager").get(f"/api/projects/{world.project.pk}/quality/time/").json()["annotators"]
    assert row["pace"] == [{"start": 0.0, "end": 30.0, "count": 1, "mean": 3601 / 2}]


def test_ground_truth_accuracy_bins_by_minutes_into_the_session(world) -> None:
    from annotator.groundtruth.models import GroundTruthAttempt

    early, late, unscored = make_images(world.project, 3)
    user = world.users["annotator"]
    for minute in range(1, 70):  # one long session on three images
        image = early if minute < 20 else late if minute < 60 else unscored
        time_record_add(image=image, user=user, seconds=60, now=at(minute))
    for image, f1 in ((early, 1.0), (late, 0.6)):
        GroundTruthAttempt.objects.create(
            image=image, annotator=user, status="submitted", submitted_at=at(70), scores={"f1": f1}, drawn=[]
        )
    # an attempt still in progress has no score yet
    GroundTruthAttempt.objects.create(image=unscored, annotator=user, drawn=[])
    [row] = world.client("manager").get(f"/api/projects/{world.project.pk}/quality/time/").json()["annotators"]
    # last worked on: the early image at minute 19, the late one at minute 59
    assert row["accuracy"] == [
        {"start": 0.0, "end": 30.0, "count": 1, "mean": 1.0},
        {"start": 30.0, "end": 60.0, "count": 1, "mean": 0.6},
    ]
    html = _page_client(world, "manager").get(f"/projects/{world.project.pk}/time/").content.decode()
    assert "0–30 min: 1.00 (1)" in html and "30–60 min: 0.60 (1)" in html


def test_annotators_see_only_their_own_time(world, worked) -> None:
    rows = world.client("annotator2").get(f"/api/projects/{world.project.pk}/quality/time/").json()["annotators"]
    assert [row["username"] for row in rows] == ["annotator2"]


def test_time_report_refuses_outsiders_and_bad_bins(world, worked) -> None:
    url = f"/api/projects/{world.project.pk}/quality/time/"
    assert world.client("outsider").get(url).status_code == 404
    response = world.client("manager").get(url + "?bin_minutes=0")
    assert response.status_code == 400 and "bin_minutes" in response.json()["detail"]


def test_time_report_of_a_project_without_records_is_empty(world) -> None:
    assert world.client("manager").get(f"/api/projects/{world.project.pk}/quality/time/").json()["annotators"] == []


# --------------------------------------------------------------------------------------------
# Pages
# --------------------------------------------------------------------------------------------


def _page_client(world, persona: str) -> Client:
    client = Client()
    client.force_login(world.users[persona])
    return client


def test_the_time_page_shows_each_annotator_to_managers(world, worked) -> None:
    response = _page_client(world, "manager").get(f"/projects/{world.project.pk}/time/")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-username="annotator"' in html and 'data-username="annotator2"' in html
    # the annotator: 3 min of active time, 30 s per object, 120 objects an hour
    assert "3 min 00 s" in html and "30 s" in html and "120.0" in html
    assert "0–30 min: 30 s (2)" in html


def test_the_time_page_shows_members_their_own_time_only(world, worked) -> None:
    html = _page_client(world, "annotator2").get(f"/projects/{world.project.pk}/time/").content.decode()
    assert 'data-username="annotator2"' in html and 'data-username="annotator"' not in html
    assert _page_client(world, "outsider").get(f"/projects/{world.project.pk}/time/").status_code == 404


def test_the_time_page_without_records_says_so(world) -> None:
    html = _page_client(world, "manager").get(f"/projects/{world.project.pk}/time/").content.decode()
    assert 'data-testid="time-empty"' in html


def test_the_settings_page_sets_the_break_reminder(world) -> None:
    client = _page_client(world, "manager")
    url = f"/projects/{world.project.pk}/edit/"
    assert 'name="break_reminder_minutes"' in client.get(url).content.decode()
    form = {"name": world.project.name, "required_accepts": 1, "queue_order": "priority", "break_reminder_minutes": 120}
    assert client.post(url, form).status_code == 302
    world.project.refresh_from_db()
    assert world.project.break_reminder_minutes == 120
    refused = client.post(url, {**form, "break_reminder_minutes": -3})
    assert refused.status_code == 200 and "greater than or equal to 0" in refused.content.decode()
    world.project.refresh_from_db()
    assert world.project.break_reminder_minutes == 120
    # left empty: the default
    assert client.post(url, {**form, "break_reminder_minutes": ""}).status_code == 302
    world.project.refresh_from_db()
    assert world.project.break_reminder_minutes == 90
