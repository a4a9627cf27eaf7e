"""Temporary: screenshots (deleted after use)."""
from __future__ import annotations

import pytest
from django.core.management import call_command

from annotator.annotations.models import Annotation
from annotator.images.models import Image, ImageStatus
from tests.e2e.pages import EditorPage, LoginPage, ReviewPanel

pytestmark = [pytest.mark.django_db(transaction=True)]


def test_shots(page, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    call_command("seed_demo", password="pass-word-123")
    page.set_viewport_size({"width": 1400, "height": 850})
    counts = sorted(((Annotation.objects.filter(image=i).count(), i.pk) for i in Image.objects.all()), reverse=True)
    print(counts)
    busy = Image.objects.get(pk=counts[0][1])
    LoginPage(page).login("annotator")
    ed = EditorPage(page).open(busy.pk)
    page.wait_for_timeout(800)
    page.screenshot(path="/tmp/shots/annotate.png")
    rows = ed.instance_rows
    rows.nth(2).click()
    rows.nth(4).get_by_test_id("instance-visibility").click()
    rows.nth(5).get_by_test_id("instance-lock").click()
    page.wait_for_timeout(300)
    page.screenshot(path="/tmp/shots/annotate_selected.png")
    page.screenshot(path="/tmp/shots/panel.png", clip={"x": 1100, "y": 0, "width": 300, "height": 400})
    page.screenshot(path="/tmp/shots/toolbar.png", clip={"x": 0, "y": 0, "width": 1400, "height": 80})
    # review mode
    Image.objects.filter(pk=busy.pk).update(status=ImageStatus.SUBMITTED, assignee=None)
    page.context.clear_cookies()
    LoginPage(page).login("reviewer")
    ed = EditorPage(page).open(busy.pk, mode="review")
    rv = ReviewPanel(ed)
    first = ed.annotations()[-1]
    rv.pin_comment((100, 100), "Something is missing here")
    uid = ed.annotations()[0]["uid"]
    rv.object_verdict(uid, "reject")
    ed.select_row(3)
    ed.delete_selected()
    rv.diff("submitted")
    ed.deselect()
    page.wait_for_timeout(500)
    page.screenshot(path="/tmp/shots/review.png")
