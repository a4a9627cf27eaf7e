"""Work is never blocked or lost: the editor clamps to the image, saves what the server accepts while
holding back what it refuses, takes over the server's repairs, and restores edits kept in the
browser's journal after the tab was closed."""
from __future__ import annotations

import io
import re

import numpy as np
import pytest
from PIL import Image as PILImage
from PIL import ImageDraw
from playwright.sync_api import expect
from shapely.geometry import Point as ShapelyPoint
from shapely.geometry import Polygon

from annotator.annotations.models import Annotation, Revision
from annotator.images.models import Image
from annotator.images.services import images_add
from ml.geometry import mask_to_rle, rle_to_mask
from tests.e2e.pages import EditorPage, LoginPage
from tests.factories import make_images, square

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

UUID_PATTERN = r"[0-9a-f]{8}-[0-9a-f]{4}-"


def open_editor(page, image, persona: str = "annotator") -> EditorPage:
    LoginPage(page).login(persona)
    return EditorPage(page).open(image.pk)


def seed_square(world, image) -> str:
    """One 60x60 square saved through the API; returns its uid."""
    response = world.client("annotator").put(
        f"/api/images/{image.pk}/annotations/",
        {"version": image.version, "annotations": [{"label": world.labels[0].pk, "geometry": {"type": "polygons", "polygons": [{"exterior": square(20, 20, 60), "holes": []}]}}]},
        format="json",
    )
    assert response.status_code == 200, response.content
    image.refresh_from_db()
    return response.json()["annotations"][0]["uid"]


def inject_object(page, geometry: dict, label: int) -> str:
    """Put an object into the editor's store as it is, past the tools' normalisation: what an old
    journal, a broken import or a future bug could hand the editor. Returns its uid."""
    return page.evaluate(
        """([geometry, label]) => {
            const e = window.__editor;
            const a = { ...e.newAnnotation(geometry), label };
            e.store.execute({ name: "inject", do: (s) => s.put(a), undo: (s) => s.delete(a.uid) });
            return a.uid;
        }""",
        [geometry, label],
    )


def stored_uids(image) -> set[str]:
    return {str(u) for u in Annotation.objects.filter(image=image).values_list("uid", flat=True)}


# ---------------------------------------------------------------------------------------------- clamping


def test_polygon_vertices_on_the_border_and_in_the_margin_land_on_the_edge_and_save(page, world):
    (image,) = make_images(world.project, 1, width=640, height=480)
    editor = open_editor(page, image)
    editor.zoom_out(2)  # a wide dark margin around the image

    # (300, 480) is a click on the bottom border; (80, 496) is one in the margin below it.
    editor.draw_polygon([(100, 100), (300, 100), (300, 480), (80, 496)])
    editor.wait_saved()

    saved = Annotation.objects.get(image=image)
    exterior = saved.polygons[0]["exterior"]
    assert all(0 <= x <= 640 and 0 <= y <= 480 for x, y in exterior)
    ys = sorted(y for _, y in exterior)
    assert ys[-1] == 480 and ys[-2] == pytest.approx(480, abs=1)
    assert [x for x, y in exterior if y == 480] and min(x for x, y in exterior if y >= 479) == pytest.approx(80, abs=1.5)
    assert Revision.objects.filter(image=image, version=1).exists()
    expect(editor.save_state).to_have_attribute("data-state", "saved")


def test_an_autosave_after_one_drag_sends_that_object_only(page, world, image):
    seeded = seed_square(world, image)
    others = world.client("annotator").patch(
        f"/api/images/{image.pk}/annotations/",
        {"version": image.version, "changed": [
            {"label": world.labels[1].pk, "geometry": {"type": "polygons", "polygons": [{"exterior": square(x, 60, 25), "holes": []}]}}
            for x in (100, 130, 160)
        ]},
        format="json",
    )
    assert others.status_code == 200, others.content
    editor = open_editor(page, image)
    saves = []
    page.on("request", lambda r: saves.append((r.method, r.post_data_json)) if r.url.endswith(f"/images/{image.pk}/annotations/") and r.method != "GET" else None)

    editor.select_at((50, 50))
    editor.drag_vertex((80, 20), (90, 20))
    editor.wait_saved()

    ((method, body),) = saves
    assert method == "PATCH" and body["version"] == 2 and body["removed"] == []
    assert [o["uid"] for o in body["changed"]] == [seeded] and len(body["order"]) == 4
    stored = Annotation.objects.get(uid=seeded)
    assert max(x for x, _ in stored.polygons[0]["exterior"]) == pytest.approx(90, abs=1)
    assert Annotation.objects.filter(image=image).count() == 4 and Image.objects.get(pk=image.pk).version == 3


# ---------------------------------------------------------------------------------------------- repairs


def test_an_outline_dragged_across_itself_is_repaired_by_the_server_in_place(page, world, image):
    seeded = seed_square(world, image)
    editor = open_editor(page, image)

    editor.select_at((50, 50))
    # The top-right corner dragged down past the bottom edge: the outline crosses itself.
    editor.drag_vertex((80, 20), (50, 95))
    editor.wait_saved()

    stored = Annotation.objects.get(uid=seeded)
    assert all(Polygon(p["exterior"], p["holes"]).is_valid for p in stored.polygons)
    (shown,) = editor.annotations()
    assert shown["geometry"]["polygons"] == stored.polygons  # the server's repair, taken over in place
    expect(editor.status_message).to_contain_text("1 object repaired: outline crossed itself")
    assert Image.objects.get(pk=image.pk).version == 2  # taking it over is not a new edit to save
    page.wait_for_timeout(1500)
    assert Image.objects.get(pk=image.pk).version == 2

    # The repair is no undo step of its own: one undo takes the drag back.
    editor.undo()
    editor.wait_saved()
    assert ring_is_square(Annotation.objects.get(uid=seeded).polygons[0]["exterior"])


def ring_is_square(ring) -> bool:
    return sorted(map(tuple, ring)) == sorted(map(tuple, square(20, 20, 60)))


# ---------------------------------------------------------------------------------------------- held back


def test_an_object_the_server_refuses_is_held_back_while_the_others_save(page, world, image):
    seeded = seed_square(world, image)
    page.set_viewport_size({"width": 1024, "height": 768})
    editor = open_editor(page, image)
    # A mask made for another image (50x50 on this 200x100 one): no repair can make it fit.
    wrong_size = np.zeros((50, 50), dtype=np.uint8)
    wrong_size[10:30, 10:30] = 1
    bad = inject_object(page, {"type": "mask", "rle": mask_to_rle(wrong_size)}, world.labels[1].pk)
    editor.draw_polygon([(120, 20), (180, 20), (150, 80)])
    editor.wait_held()

    # Everything else is saved, as one new revision.
    drawn = {a["uid"] for a in editor.annotations()} - {seeded, bad}
    assert stored_uids(image) == {seeded} | drawn and len(drawn) == 1
    assert Image.objects.get(pk=image.pk).version == 2
    assert Revision.objects.get(image=image, version=2).object_count == 2

    # The refused object is kept, marked unsaved, selected, and its reason is shown plainly.
    expect(editor.row(bad)).to_have_attribute("data-held", "true")
    expect(editor.row(bad).get_by_test_id("instance-held")).to_be_visible()
    expect(editor.row(seeded)).to_have_attribute("data-held", "false")
    assert editor.selected_uid() == bad
    expect(editor.held_notice).to_be_visible()
    reason = editor.held_notice.get_by_test_id("held-reason")
    expect(reason).to_contain_text("Dog not saved")
    expect(reason).to_contain_text("does not match")
    for text in (reason.inner_text(), editor.held_notice.get_attribute("title") or "", editor.save_state.inner_text()):
        assert "part 0" not in text and not re.search(UUID_PATTERN, text), text
    expect(editor.save_state).to_contain_text("1 object not saved")

    # At 1024 px the notice does not push the view controls off the status bar.
    bar = editor.status_bar.bounding_box()
    for control in ("btn-zoom-out", "btn-zoom-in", "btn-fit", "btn-one-to-one", "zoom-level"):
        box = page.get_by_test_id(control).bounding_box()
        assert box is not None and box["x"] >= bar["x"] and box["x"] + box["width"] <= bar["x"] + bar["width"] + 0.5, control

    # Later edits of other objects keep saving.
    editor.select_at((50, 50))
    editor.drag_vertex((80, 20), (90, 10))
    editor.wait_held()
    assert Image.objects.get(pk=image.pk).version == 3
    assert Annotation.objects.get(uid=seeded).polygons[0]["exterior"][1] == pytest.approx([90, 10], abs=1)

    # "Fix it" selects it with the vertex tool; "Delete it" removes it, and then all is saved.
    editor.deselect()
    editor.fix_held_object()
    assert editor.selected_uid() == bad
    expect(page.get_by_test_id("stage")).to_have_attribute("data-tool", "edit")
    editor.delete_held_object()
    editor.wait_saved()
    expect(editor.held_notice).to_be_hidden()
    assert bad not in {a["uid"] for a in editor.annotations()}
    assert stored_uids(image) == {seeded} | drawn


def test_a_held_back_object_is_saved_once_it_is_fixed(page, world, image):
    editor = open_editor(page, image)
    broken = {"type": "polygons", "polygons": [{"exterior": [[120, 20], [180, 20], [180, 80], [float("nan"), 50], [120, 80]], "holes": []}]}
    uid = inject_object(page, broken, world.labels[0].pk)
    editor.wait_held()
    expect(editor.held_notice.get_by_test_id("held-reason")).to_contain_text("not all finite numbers")
    assert not Annotation.objects.filter(image=image).exists()

    editor.fix_held_object()
    editor.drag_vertex((180, 80), (185, 85))
    editor.wait_saved()

    expect(editor.held_notice).to_be_hidden()
    expect(editor.row(uid)).to_have_attribute("data-held", "false")
    stored = Annotation.objects.get(uid=uid)
    assert stored.polygons[0]["exterior"] == [[120, 20], [180, 20], [pytest.approx(185, abs=1), pytest.approx(85, abs=1)], [120, 80]]


def test_a_long_error_never_pushes_the_view_controls_off_the_status_bar(page, world, image):
    page.set_viewport_size({"width": 1024, "height": 768})
    editor = open_editor(page, image)
    long = "The server could not store this image because " + "something went wrong " * 20
    page.evaluate("(text) => window.__editor.ui.onSaveState('error', text)", long)
    page.evaluate("(text) => window.__editor.ui.message(text, 'error')", long)

    expect(editor.save_state).to_have_attribute("title", f"Not saved: {long}")
    expect(editor.status_message).to_have_attribute("title", long)
    bar = editor.status_bar.bounding_box()
    for control in ("btn-zoom-out", "btn-zoom-in", "btn-fit", "btn-one-to-one", "brightness", "contrast"):
        box = page.get_by_test_id(control).bounding_box()
        assert box is not None and box["x"] + box["width"] <= bar["x"] + bar["width"] + 0.5, control


# ---------------------------------------------------------------------------------------------- scissors


def u_shaped_image(project) -> Image:
    """A white U on black: the notch makes edge-following outlines touch themselves."""
    picture = PILImage.new("RGB", (200, 120), (0, 0, 0))
    draw = ImageDraw.Draw(picture)
    draw.rectangle([40, 20, 159, 99], fill=(255, 255, 255))
    draw.rectangle([80, 20, 119, 74], fill=(0, 0, 0))
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    data = buffer.getvalue()
    return images_add(project=project, sources=[("u.png", lambda: data)]).created[0]


def test_scissors_around_a_concave_object_saves_a_valid_outline(page, world):
    image = u_shaped_image(world.project)
    editor = open_editor(page, image)

    editor.cut_with_scissors([(42, 22), (100, 78), (158, 22), (158, 98), (42, 98)])
    editor.wait_saved()

    expect(editor.status_message).to_contain_text("repaired")
    saved = Annotation.objects.get(image=image)
    assert saved.kind == "polygons"
    shape = Polygon(saved.polygons[0]["exterior"], saved.polygons[0]["holes"])
    assert shape.is_valid
    # The U (9,600 px² less the 2,200 px² notch), not its box.
    assert 6800 < saved.area < 8000
    assert shape.contains(ShapelyPoint(60, 60)) and not shape.contains(ShapelyPoint(100, 40))
    (shown,) = editor.annotations()
    assert Polygon(shown["geometry"]["polygons"][0]["exterior"]).is_valid


# ---------------------------------------------------------------------------------------------- journal


def _edit_offline_and_close(page, world, image) -> tuple[EditorPage, set[str]]:
    """Draw a polygon and paint a mask while saves cannot reach the server, then close the tab."""
    editor = open_editor(page, image)
    page.route("**/api/images/*/annotations/", lambda route: route.abort() if route.request.method == "PUT" else route.continue_())
    editor.draw_polygon([(120, 20), (180, 20), (150, 80)])
    editor.deselect()
    editor.paint([(30, 90), (90, 90)], size=6)
    editor.wait_journaled()
    uids = {a["uid"] for a in editor.annotations()}
    assert Image.objects.get(pk=image.pk).version == 1  # nothing reached the server
    context = page.context
    page.close()
    context.unroute("**/api/images/*/annotations/")
    return EditorPage(context.new_page()), uids


def test_edits_of_a_closed_tab_are_restored_on_reopening_and_saved(page, world, image):
    seeded = seed_square(world, image)
    editor, uids = _edit_offline_and_close(page, world, image)
    assert len(uids) == 3

    editor.open(image.pk)
    expect(editor.restore_dialog).to_be_visible()
    expect(editor.instance_rows).to_have_count(1)  # the server's set, until the user chooses
    editor.restore_unsaved_edits()
    editor.wait_saved()

    assert stored_uids(image) == uids and seeded in uids
    image.refresh_from_db()
    assert image.version == 2 and Revision.objects.get(image=image, version=2).object_count == 3
    mask = Annotation.objects.get(image=image, kind="mask")
    assert rle_to_mask(mask.rle)[90, 60] and mask.area > 200
    # Restoring was one undoable step.
    editor.undo()
    editor.wait_saved()
    assert stored_uids(image) == {seeded}
    editor.redo()
    editor.wait_saved()
    # Saved: the journal is empty and the next open offers nothing.
    editor.wait_journaled()
    editor.reload()
    editor.page.wait_for_timeout(300)
    expect(editor.restore_dialog).to_have_count(0)
    assert {a["uid"] for a in editor.annotations()} == uids


def test_restoring_after_someone_else_saved_meets_the_conflict_dialog(page, world, image):
    seed_square(world, image)
    editor, uids = _edit_offline_and_close(page, world, image)
    theirs = world.client("manager").put(
        f"/api/images/{image.pk}/annotations/",
        {"version": 1, "annotations": [{"label": world.labels[1].pk, "geometry": {"type": "polygons", "polygons": [{"exterior": square(150, 60, 30), "holes": []}]}}]},
        format="json",
    )
    assert theirs.status_code == 200

    editor.open(image.pk)
    editor.restore_unsaved_edits()

    expect(editor.conflict_dialog).to_be_visible()
    expect(editor.conflict_dialog).to_contain_text("manager")
    editor.page.get_by_test_id("conflict-keep-mine").click()
    editor.wait_saved()
    assert stored_uids(image) == uids
    assert Image.objects.get(pk=image.pk).version == 3


def test_discarded_edits_are_not_offered_again(page, world, image):
    seeded = seed_square(world, image)
    editor, _ = _edit_offline_and_close(page, world, image)

    editor.open(image.pk)
    editor.discard_unsaved_edits()
    editor.wait_journaled()
    editor.reload()
    editor.page.wait_for_timeout(300)

    expect(editor.restore_dialog).to_have_count(0)
    assert [a["uid"] for a in editor.annotations()] == [seeded]
    assert stored_uids(image) == {seeded}
