"""Consensus in the review editor: the reviewer sees every annotator's version next to the merge,
can show any of them over the image, and accepts the merge as any other image."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from annotator.annotations.models import Annotation
from annotator.images.models import Image, ImageStatus
from tests.e2e.pages import EditorPage, LoginPage, ReviewPanel
from tests.factories import make_images, polygon_geometry, square

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _draw(world, who: str, image: Image, rings: list) -> None:
    client = world.client(who)
    assert client.post(f"/api/projects/{world.project.pk}/queue/next/").json()["image"]["id"] == image.pk
    items = [{"label": world.labels[0].pk, "geometry": polygon_geometry(ring)} for ring in rings]
    assert client.put(f"/api/images/{image.pk}/annotations/", {"version": 0, "annotations": items}, format="json").status_code == 200
    assert client.post(f"/api/images/{image.pk}/submit/").status_code == 200


def _static_canvas(page) -> str:  # type: ignore[no-untyped-def]
    return page.evaluate("() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame("
                         "() => done(window.__editor.renderer.staticCanvas.toDataURL()))))")


def test_the_reviewer_sees_each_annotators_version_and_accepts_the_merge(page, world) -> None:
    manager = world.client("manager")
    assert manager.patch(f"/api/projects/{world.project.pk}/", {"consensus_annotators": 2}, format="json").status_code == 200
    image = make_images(world.project, 1, width=200, height=100)[0]
    _draw(world, "annotator", image, [square(20, 20, 60), square(120, 20, 40)])
    _draw(world, "annotator2", image, [square(24, 22, 60)])
    image.refresh_from_db()
    assert image.status == ImageStatus.SUBMITTED and image.agreement is not None

    page.context.clear_cookies()
    LoginPage(page).login("reviewer")
    editor = EditorPage(page).open(image.pk, mode="review")
    panel = page.get_by_test_id("consensus-panel")
    expect(panel).to_be_visible()
    versions = panel.get_by_test_id("consensus-version")
    expect(versions).to_have_count(2)
    expect(versions.nth(0)).to_have_attribute("data-annotator", "annotator")
    expect(versions.nth(0)).to_contain_text("2 objects")
    expect(versions.nth(1)).to_contain_text("1 objects")
    expect(panel.get_by_test_id("consensus-agreement")).to_contain_text(f"{round(image.agreement * 100)}%")
    expect(panel.get_by_test_id("consensus-merged")).to_have_count(1)  # the square both drew

    # Showing a version draws its outlines over the image; hiding it takes them away again.
    before = _static_canvas(page)
    versions.nth(0).get_by_test_id("consensus-version-toggle").check()
    shown = _static_canvas(page)
    assert shown != before
    versions.nth(0).get_by_test_id("consensus-version-toggle").uncheck()
    assert _static_canvas(page) == before

    ReviewPanel(editor).accept()
    image.refresh_from_db()
    assert image.status == ImageStatus.ACCEPTED


def test_an_annotator_draws_their_own_version_in_the_editor(page, world) -> None:
    from annotator.consensus.models import Replica

    manager = world.client("manager")
    assert manager.patch(f"/api/projects/{world.project.pk}/", {"consensus_annotators": 2}, format="json").status_code == 200
    image = make_images(world.project, 1, width=200, height=100)[0]
    _draw(world, "annotator2", image, [square(20, 20, 60)])  # the other version: not shown to this annotator
    assert world.client("annotator").post(f"/api/projects/{world.project.pk}/queue/next/").json()["image"]["id"] == image.pk

    page.context.clear_cookies()
    LoginPage(page).login("annotator")
    editor = EditorPage(page).open(image.pk)
    expect(editor.instance_rows).to_have_count(0)
    editor.draw_polygon([(30.0, 30.0), (90.0, 30.0), (90.0, 80.0), (30.0, 80.0)])
    editor.wait_saved()
    mine = Replica.objects.get(image=image, annotator=world.users["annotator"])
    assert mine.version == 1 and len(mine.drawn) == 1
    assert not Annotation.objects.filter(image=image).exists()  # the image's own set waits for the merge
    editor.submit()
    # The second version in: the two overlapping squares merge into one object on the image.
    for _ in range(100):
        image.refresh_from_db()
        if image.status == ImageStatus.SUBMITTED:
            break
        page.wait_for_timeout(100)
    assert image.status == ImageStatus.SUBMITTED
    assert Annotation.objects.filter(image=image).count() == 1
