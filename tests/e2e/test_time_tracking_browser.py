"""Active time in the browser: leaving the editor reports the time spent, and a long work session
brings a break reminder that does not block work and stays dismissed."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from annotator.quality.models import TimeRecord
from annotator.quality.services import time_record_add
from tests.e2e.pages import EditorPage, LoginPage
from tests.factories import make_images

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_leaving_the_editor_reports_the_active_time(world, page) -> None:
    image = make_images(world.project, 1, width=200, height=100)[0]
    LoginPage(page).login("annotator")
    editor = EditorPage(page).open(image.pk)
    editor.page.mouse.move(200, 200)
    page.wait_for_timeout(1500)
    page.goto("/")  # the beacon goes on pagehide
    page.wait_for_function("() => document.readyState === 'complete'")
    deadline = timezone.now() + timedelta(seconds=10)
    while not TimeRecord.objects.filter(image=image).exists() and timezone.now() < deadline:
        page.wait_for_timeout(100)
    record = TimeRecord.objects.get(image=image)
    assert record.user == world.users["annotator"]
    assert 1 <= record.seconds < 30


def test_a_long_session_brings_a_break_reminder_that_stays_dismissed(world, page) -> None:
    world.project.break_reminder_minutes = 60
    world.project.save()
    first, second = make_images(world.project, 2, width=200, height=100)
    now = timezone.now()
    user = world.users["annotator"]
    # an hour and a quarter of work with short pauses, the last span just ended
    for minutes in range(75, 0, -5):
        time_record_add(image=first, user=user, seconds=240, now=now - timedelta(minutes=minutes - 4))
    LoginPage(page).login("annotator")
    editor = EditorPage(page).open(second.pk)
    banner = page.get_by_test_id("break-banner")
    expect(banner).to_be_visible()
    expect(banner).to_contain_text("1 h")
    # the editor goes on working under it
    editor.use_tool("polygon")
    page.get_by_test_id("break-dismiss").click()
    expect(banner).to_be_hidden()
    # the next image of the same session does not bring it back
    EditorPage(page).open(first.pk)
    page.wait_for_timeout(500)
    expect(page.get_by_test_id("break-banner")).to_have_count(0)


def test_no_break_reminder_when_the_project_turns_it_off(world, page) -> None:
    world.project.break_reminder_minutes = 0
    world.project.save()
    image = make_images(world.project, 1, width=200, height=100)[0]
    time_record_add(image=image, user=world.users["annotator"], seconds=3600, now=timezone.now())
    LoginPage(page).login("annotator")
    EditorPage(page).open(image.pk)
    page.wait_for_timeout(500)
    expect(page.get_by_test_id("break-banner")).to_have_count(0)


def test_the_manager_reads_the_time_page_from_the_project_nav(world, page) -> None:
    image = make_images(world.project, 1, width=200, height=100)[0]
    time_record_add(image=image, user=world.users["annotator"], seconds=95, now=timezone.now())
    LoginPage(page).login("manager")
    page.goto(f"/projects/{world.project.pk}/")
    nav = page.get_by_test_id("project-nav")
    link = nav.get_by_test_id("nav-time")
    if not link.is_visible():  # moved into "More" on a narrow window
        page.get_by_test_id("nav-more").click()
        link = page.get_by_test_id("nav-more-menu").get_by_test_id("nav-time")
    link.click()
    row = page.get_by_test_id("time-row").filter(has_text="annotator")
    expect(row).to_be_visible()
    expect(row.get_by_test_id("time-total")).to_have_text("1 min 35 s")
