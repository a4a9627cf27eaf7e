"""The Quality page in the browser: a manager reads each annotator's numbers and charts, downloads
the CSV, and opens a conflict in the editor; the page fits at 1024 px (screenshots in
$QUALITY_SHOTS, default /tmp/shots13)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.annotator.test_quality_report import scored  # noqa: F401  the fixture: two scored attempts
from tests.e2e.pages import LoginPage

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHOTS = Path(os.environ.get("QUALITY_SHOTS", "/tmp/shots13"))


def _static_canvas(page) -> str:  # type: ignore[no-untyped-def]
    """The editor's static layer once it has redrawn (two frames later)."""
    return page.evaluate("() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame("
                         "() => done(window.__editor.renderer.staticCanvas.toDataURL()))))")


def test_a_manager_reads_the_quality_page_and_opens_a_conflict(world, scored, page) -> None:  # noqa: F811
    LoginPage(page).login("manager")
    page.goto(f"/projects/{world.project.pk}/")
    page.get_by_test_id("nav-quality").click()
    expect(page.get_by_role("heading", name="Quality", exact=True)).to_be_visible()
    rows = page.get_by_test_id("quality-row")
    expect(rows).to_have_count(2)
    good = page.locator('[data-testid="quality-row"][data-username="annotator"]')
    expect(good.get_by_test_id("quality-f1")).to_have_text("1.000")
    expect(good.get_by_test_id("quality-per-object")).to_have_text("10 s")
    loose = page.locator('[data-testid="quality-row"][data-username="admin"]')
    expect(loose.get_by_test_id("quality-f1")).to_have_text("0.400")
    for chart in ("chart-scores", "chart-over-time", "chart-fatigue"):
        expect(page.get_by_test_id(chart)).to_be_visible()
    expect(page.get_by_test_id("conflict-row")).to_have_count(3)

    SHOTS.mkdir(parents=True, exist_ok=True)
    for width, height in ((1024, 700), (1400, 900)):
        page.set_viewport_size({"width": width, "height": height})
        page.wait_for_timeout(200)
        # nothing wider than the window: the header, the tables and the charts fit
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"), width
        page.screenshot(path=str(SHOTS / f"quality-{width}x{height}.png"), full_page=True)

    with page.expect_download() as download:
        page.get_by_test_id("download-csv").click()
    text = Path(download.value.path()).read_text()
    assert text.splitlines()[0].startswith("username,attempts,tp,fp,fn,precision,recall,f1,mean_iou")
    assert len(text.splitlines()) == 3

    page.locator('[data-testid="conflict-row"][data-kind="wrong_label"]').get_by_test_id("conflict-link").click()
    page.wait_for_url(f"**/images/{scored.pk}/edit/?attempt=*")
    expect(page.locator("#editor-root")).to_have_attribute("data-image-id", str(scored.pk))
    # the ground truth is the image's objects (a cat and a dog); the admin's attempt is drawn over it, on at first
    expect(page.get_by_test_id("instance-row")).to_have_count(2)
    panel = page.get_by_test_id("attempt-panel")
    expect(panel).to_have_attribute("data-annotator", "admin")
    expect(panel).to_contain_text("(3)")
    expect(page.get_by_test_id("attempt-scores")).to_contain_text("F1 0.40")
    with_attempt = _static_canvas(page)
    page.get_by_test_id("attempt-toggle").uncheck()
    without = _static_canvas(page)
    assert without != with_attempt
    page.get_by_test_id("attempt-toggle").check()
    assert _static_canvas(page) == with_attempt
    page.set_viewport_size({"width": 1400, "height": 900})
    page.screenshot(path=str(SHOTS / "editor-attempt-overlay.png"))


def test_an_annotator_has_no_quality_link_and_no_page(world, scored, page) -> None:  # noqa: F811
    LoginPage(page).login("annotator")
    page.goto(f"/projects/{world.project.pk}/")
    expect(page.get_by_test_id("project-nav")).to_be_visible()
    expect(page.get_by_test_id("nav-quality")).to_have_count(0)
    response = page.goto(f"/projects/{world.project.pk}/quality/")
    assert response is not None and response.status == 403
