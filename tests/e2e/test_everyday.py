"""Everyday completeness in a real browser: attributes, history, read-only mode, moving between images,
people, and the editor's toolbar and cheat sheet at the sizes people use.

Screenshots of each new panel at 1400 x 900 and 1024 x 700 are written to $ANNOTATOR_SCREENSHOT_DIR
when it is set (docs/screenshots/ holds a few of them); without it the tests only check.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from playwright.sync_api import expect
from shapely.geometry import shape

from annotator.annotations.models import Annotation, Revision
from annotator.datasets.services import ExportOptions, ImportOptions, dataset_import, export_write
from annotator.images.models import Image, ImageStatus
from annotator.projects.models import Label, Membership
from tests.e2e.pages import AccountPages, EditorPage, LoginPage, MembersPage, PeoplePage, UploadPage
from tests.factories import LabelFactory, MembershipFactory, ProjectFactory, make_images, png_bytes, polygon_geometry, square

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHOTS = os.environ.get("ANNOTATOR_SCREENSHOT_DIR")
SIZES = {"1400": {"width": 1400, "height": 900}, "1024": {"width": 1024, "height": 700}}

SCHEMA = {
    "occluded": {"type": "boolean", "default": False},
    "colour": {"type": "string", "choices": ["red", "green", "blue"], "required": True},
    "parts": {"type": "string", "choices": ["head", "tail", "paws"], "multiple": True},
    "count": {"type": "integer", "min": 0, "max": 10},
    "note": {"type": "string"},
}


def shoot(page, name: str, locator=None) -> None:  # type: ignore[no-untyped-def]
    """Screenshots at both sizes (only when ANNOTATOR_SCREENSHOT_DIR is set); the page ends at 1400 x 900."""
    if not SHOTS:
        return
    Path(SHOTS).mkdir(parents=True, exist_ok=True)
    for size, viewport in SIZES.items():
        page.set_viewport_size(viewport)
        page.wait_for_timeout(250)  # the editor re-fits its canvas after a resize
        target = locator if locator is not None else page
        target.screenshot(path=str(Path(SHOTS) / f"{name}-{size}.png"))
    page.set_viewport_size(SIZES["1400"])


def with_schema(world, schema: dict = SCHEMA) -> Label:
    label = world.labels[0]
    label.attributes_schema = schema
    label.save()
    return label


def save_objects(world, image, objects: list[dict], persona: str = "annotator") -> dict:
    image.refresh_from_db()
    response = world.client(persona).put(f"/api/images/{image.pk}/annotations/", {"version": image.version, "annotations": objects}, format="json")
    assert response.status_code == 200, response.content
    image.refresh_from_db()
    return response.json()


def cat(world, x: float, y: float, size: float, **attributes: object) -> dict:
    return {"label": world.labels[0].pk, "geometry": polygon_geometry(square(x, y, size)), "attributes": attributes}


# ------------------------------------------------------------------------------------ attributes


def test_attributes_are_set_in_the_panel_and_required_ones_are_flagged_before_submit(page, world, image):
    with_schema(world)
    LoginPage(page).login("annotator")
    editor = EditorPage(page).open(image.pk)
    panel = editor.attributes

    editor.draw_polygon([(20, 20), (80, 20), (80, 80), (20, 80)])
    expect(panel.panel).to_be_visible()
    expect(panel.panel).to_contain_text("cat #1")
    expect(panel.field("occluded").get_by_test_id("attribute-input")).not_to_be_checked()  # the default
    expect(panel.field("colour")).to_have_attribute("data-missing", "true")

    # Submitting with a required attribute unset is refused, and says which object needs what.
    editor.submit()
    expect(editor.status_message).to_contain_text("cat #1 needs colour")
    row = editor.instance_rows.first
    expect(row).to_have_attribute("data-missing", "true")
    expect(row.get_by_test_id("instance-missing")).to_contain_text("needs colour")
    assert Image.objects.get(pk=image.pk).status != ImageStatus.SUBMITTED

    panel.type("count", "11")
    expect(panel.error("count")).to_have_text("must be at most 10")
    panel.type("count", "7")
    panel.choose("colour", "red")
    panel.tick("parts", "head", "tail")
    panel.type("note", "behind the fence")
    panel.set_yes_no("occluded", True)
    expect(row).to_have_attribute("data-missing", "false")
    editor.wait_saved()
    stored = Annotation.objects.get(image=image).attributes
    assert stored == {"occluded": True, "count": 7, "colour": "red", "parts": ["head", "tail"], "note": "behind the fence"}

    # Every change is one undo step.
    editor.undo()
    expect(panel.field("occluded").get_by_test_id("attribute-input")).not_to_be_checked()
    editor.redo()
    expect(panel.field("occluded").get_by_test_id("attribute-input")).to_be_checked()
    shoot(page, "attribute-panel")

    # The objects list filters by attribute.
    editor.deselect()
    editor.draw_polygon([(110, 20), (170, 20), (170, 80), (110, 80)])
    panel.choose("colour", "green")
    expect(editor.instance_rows).to_have_count(2)
    editor.filter_objects("colour", "red")
    expect(editor.visible_rows).to_have_count(1)
    expect(editor.visible_rows.first.get_by_test_id("instance-number")).to_have_text("#1")
    expect(page.get_by_test_id("instance-count")).to_have_text("(1 of 2)")
    editor.filter_objects("note", "-")
    expect(editor.visible_rows).to_have_count(1)
    expect(editor.visible_rows.first.get_by_test_id("instance-number")).to_have_text("#2")
    shoot(page, "objects-filter", page.get_by_test_id("side-panel"))
    editor.filter_objects("")
    expect(editor.visible_rows).to_have_count(2)

    editor.wait_saved()
    editor.submit()
    expect(page.get_by_test_id("queue-empty-dialog")).to_be_visible()
    assert Image.objects.get(pk=image.pk).status == ImageStatus.SUBMITTED


def test_attributes_set_in_the_editor_survive_a_voc_export_and_import(page, world, image, tmp_path):
    with_schema(world)
    save_objects(world, image, [cat(world, 20, 20, 60, occluded=True, colour="blue", parts=["paws"], count=2)])
    image.status = ImageStatus.ACCEPTED
    image.save()
    out = tmp_path / "voc.zip"
    with open(out, "wb") as fh:
        export_write(project=world.project, options=ExportOptions.from_dict({"format": "voc", "include_images": True}), out=fh)
    other = ProjectFactory(name="Copy")
    LabelFactory(project=other, name="cat", order=0, attributes_schema=SCHEMA)
    MembershipFactory(project=other, user=world.users["manager"], role="manager")
    report = dataset_import(project=other, fmt="voc", path=out, options=ImportOptions.from_dict({}), user=None)
    assert report["annotation_count"] == 1 and not report["warnings"]
    copy = Image.objects.get(project=other)

    LoginPage(page).login("manager")
    editor = EditorPage(page).open(copy.pk)
    editor.select_row(0)
    panel = editor.attributes
    expect(panel.field("occluded").get_by_test_id("attribute-input")).to_be_checked()
    expect(panel.field("colour").get_by_test_id("attribute-input")).to_have_value("blue")
    expect(panel.field("count").get_by_test_id("attribute-input")).to_have_value("2")
    expect(panel.field("parts").locator('[data-value="paws"] input')).to_be_checked()
    expect(panel.field("parts").locator('[data-value="head"] input')).not_to_be_checked()


# ------------------------------------------------------------------------------------ history


def test_history_shows_who_changed_what_previews_a_version_and_restores_it(page, world, image):
    first = save_objects(world, image, [cat(world, 20, 20, 40)])
    uid = Annotation.objects.get(image=image).uid
    save_objects(world, image, [{**cat(world, 20, 20, 40), "uid": str(uid)}, cat(world, 120, 20, 40)], persona="manager")
    save_objects(world, image, [cat(world, 120, 20, 40) | {"uid": str(Annotation.objects.exclude(uid=uid).get(image=image).uid)}])
    assert first["version"] == 1 and image.version == 3

    LoginPage(page).login("annotator")
    editor = EditorPage(page).open(image.pk)
    history = editor.history
    history.open()
    expect(history.rows).to_have_count(3)
    expect(history.row(3)).to_contain_text("current")
    expect(history.row(2)).to_contain_text("manager")
    expect(history.row(2).get_by_test_id("revision-changes")).to_have_text("+1−0~0")
    expect(history.row(3).get_by_test_id("revision-changes")).to_have_text("+0−1~0")

    history.preview(1)
    expect(history.preview_bar).to_contain_text("Previewing v1 (1 object")
    shoot(page, "history-preview")
    history.restore_previewed()
    expect(history.row(4)).to_be_visible()
    expect(history.row(4).get_by_test_id("revision-restored-from")).to_contain_text("from v1")
    expect(history.preview_bar).to_be_hidden()
    editor.wait_saved()
    assert editor.version() == 4
    assert [a["uid"] for a in editor.annotations()] == [str(uid)]
    restored = Revision.objects.get(image=image, version=4)
    assert restored.action == "restore" and restored.restored_from == 1
    shoot(page, "history-panel", page.get_by_test_id("side-panel"))

    # Someone else saves meanwhile: restoring is refused by the conflict check, nothing is overwritten.
    save_objects(world, image, [], persona="manager")
    history.restore(2)
    expect(editor.status_message).to_contain_text("Not restored: manager saved version 5")
    assert Image.objects.get(pk=image.pk).version == 5 and not Annotation.objects.filter(image=image).exists()


# ------------------------------------------------------------------------------------ read-only


def test_an_image_assigned_to_someone_else_opens_read_only_with_the_reason_and_what_to_do(page, world, image):
    save_objects(world, image, [cat(world, 20, 20, 60)])
    assert image.assignee == world.users["annotator"] and image.status == ImageStatus.IN_PROGRESS
    LoginPage(page).login("annotator2")
    editor = EditorPage(page).open(image.pk)

    expect(editor.readonly_banner).to_be_visible()
    expect(editor.readonly_banner).to_contain_text("This image is assigned to another annotator.")
    expect(editor.readonly_banner).to_contain_text("Ask a manager to reassign it")
    expect(page.get_by_test_id("tool-polygon")).to_be_disabled()
    expect(page.get_by_test_id("btn-submit")).to_be_disabled()
    page.keyboard.press("p")
    expect(editor.page.get_by_test_id("stage")).to_have_attribute("data-tool", "edit")
    # Looking is allowed: select the object, see its attributes panel; deleting it is not.
    editor.click((50, 50))
    assert editor.selected_uid() is not None
    page.keyboard.press("Delete")
    expect(editor.instance_rows).to_have_count(1)
    expect(editor.status_message).to_contain_text("Read only")
    page.wait_for_timeout(1500)  # an autosave would have gone out by now
    assert Image.objects.get(pk=image.pk).version == image.version
    shoot(page, "read-only", page.locator(".ed-top"))


def test_an_accepted_image_is_read_only_for_its_annotator(page, world, image):
    save_objects(world, image, [cat(world, 20, 20, 60)])
    image.status = ImageStatus.ACCEPTED
    image.save()
    LoginPage(page).login("annotator")
    editor = EditorPage(page).open(image.pk)
    expect(editor.readonly_banner).to_contain_text("accepted")
    expect(editor.readonly_banner).to_contain_text("training data")


# ------------------------------------------------------------------------------------ moving between images


def test_previous_and_next_follow_the_image_list_as_filtered_and_save_first(page, world):
    images = make_images(world.project, 4, width=200, height=100)
    images[2].status = ImageStatus.ACCEPTED
    images[2].save()
    # Objects are numbered bottom to top: the left one (z 1) is #1, the right one (z 2) #2.
    save_objects(world, images[1], [cat(world, 20, 20, 40) | {"z_order": 1}, cat(world, 120, 20, 40) | {"z_order": 2}], persona="manager")
    LoginPage(page).login("manager")

    # The list, filtered to new and in-progress images, remembers its filters.
    page.goto(f"/projects/{world.project.pk}/images/?status=new,in_progress")
    expect(page.get_by_test_id("image-tile")).to_have_count(3)
    page.goto(f"/projects/{world.project.pk}/images/")
    expect(page.get_by_test_id("image-tile")).to_have_count(3)
    page.get_by_test_id("image-tile").nth(1).locator("a").click()
    editor = EditorPage(page)
    editor.wait_ready()
    expect(editor.list_position).to_have_text("2 / 3")

    # Objects carry numbers in the list and beside the cursor.
    expect(editor.instance_rows.get_by_test_id("instance-number")).to_have_text(["#2", "#1"])
    editor.hover((140, 40))
    expect(editor.hover_tag).to_be_visible()
    expect(editor.hover_tag).to_have_text("cat #2")

    # An edit made just before moving on is saved before the next image opens.
    editor.draw_polygon([(60, 60), (90, 60), (90, 90)])
    with page.expect_navigation(url=f"**/images/{images[3].pk}/edit/"):
        page.keyboard.press("PageDown")  # the accepted image is not in the filtered list
    editor.wait_ready()
    assert Annotation.objects.filter(image=images[1]).count() == 3
    expect(editor.list_position).to_have_text("3 / 3")
    expect(page.get_by_test_id("btn-next-image")).to_be_disabled()
    with page.expect_navigation(url=f"**/images/{images[1].pk}/edit/"):
        editor.previous_image()
    editor.wait_ready()
    shoot(page, "editor-toolbar", page.get_by_test_id("toolbar"))


# ------------------------------------------------------------------------------------ people


def test_admins_create_accounts_managers_invite_and_people_set_their_passwords(page, world, browser, live_server):
    LoginPage(page).login("admin")
    people = PeoplePage(page).open()
    link = people.create_account("newbie", email="newbie@example.org")
    assert "/account/set-password/" in link
    shoot(page, "people")
    one_time = people.create_account("temp", access="password")
    assert len(one_time) >= 10

    LoginPage(page).login("manager")
    members = MembersPage(page).open(world.project.pk)
    invite = members.invite("grace@example.org", "annotator")
    assert invite and "/account/set-password/" in invite
    expect(members.row("grace")).to_contain_text("invited, no password yet")
    shoot(page, "members")
    members.change_role("annotator2", "reviewer")
    expect(page.locator(".msg.success")).to_contain_text("annotator2 is now reviewer")
    assert Membership.objects.get(project=world.project, user=world.users["annotator2"]).role == "reviewer"
    members.remove("annotator2")
    expect(members.row("annotator2")).to_have_count(0)

    # Grace opens the link in her own browser, chooses a password and is in the project.
    context = browser.new_context(base_url=live_server.url, viewport=SIZES["1400"])
    try:
        grace = context.new_page()
        account = AccountPages(grace)
        account.choose_password(invite, "grace-pass-2024")
        expect(grace.get_by_test_id("current-user")).to_contain_text("grace")
        expect(grace.get_by_text(world.project.name)).to_be_visible()
        account.change_password("grace-pass-2024", "grace-newer-2025")
        expect(grace.locator(".msg.success")).to_contain_text("Your password is changed")
        grace.goto(invite)
        expect(grace.get_by_test_id("link-invalid")).to_be_visible()  # the link worked once
    finally:
        context.close()
    LoginPage(page).login("grace", "grace-newer-2025")


# ------------------------------------------------------------------------------------ the editor's shape


def test_a_polygon_that_crosses_itself_closes_and_the_server_untangles_it(page, world, image):
    LoginPage(page).login("annotator")
    editor = EditorPage(page).open(image.pk)
    editor.draw_polygon([(20, 20), (80, 80), (80, 20), (20, 80)])  # a bow tie
    expect(editor.instance_rows).to_have_count(1)
    editor.wait_saved()
    expect(editor.status_message).to_contain_text("outline crossed itself")
    stored = Annotation.objects.get(image=image)
    geometry = shape({"type": "MultiPolygon", "coordinates": [[p["exterior"], *p["holes"]] for p in stored.polygons]})
    assert geometry.is_valid and len(stored.polygons) == 2 and geometry.area == pytest.approx(1800, rel=0.05)
    # The editor took the server's repair over in place: what it shows is what is stored.
    (shown,) = editor.annotations()
    assert shown["geometry"] == stored.geometry


def test_the_toolbar_keeps_to_one_row_at_1024_and_the_cheat_sheet_opens_at_its_top(page, world, image):
    page.set_viewport_size(SIZES["1024"])
    LoginPage(page).login("annotator")
    EditorPage(page).open(image.pk)
    toolbar = page.get_by_test_id("toolbar").bounding_box()
    assert toolbar["height"] < 44, toolbar
    for name in ("tool-edit", "btn-undo", "btn-help", "btn-submit", "btn-next-image"):
        button = page.get_by_test_id(name)
        assert button.get_attribute("title"), name
        box = button.bounding_box()
        assert box["y"] + box["height"] <= toolbar["y"] + toolbar["height"] + 0.5 and box["x"] + box["width"] <= 1024, name

    page.keyboard.press("?")
    sheet = page.get_by_test_id("cheatsheet")
    expect(sheet).to_be_visible()
    assert sheet.evaluate("(el) => el.scrollTop") == 0
    title = sheet.locator("h2").bounding_box()
    assert title["y"] >= 0 and title["y"] + title["height"] <= 700
    expect(sheet).to_contain_text("PageUp / PageDown")
    expect(sheet).to_contain_text("Draw polygon: close the outline")
    shoot(page, "cheatsheet", sheet)


def test_the_labels_page_edits_attribute_schemas(page, world):
    LoginPage(page).login("manager")
    page.goto(f"/projects/{world.project.pk}/labels/")
    page.locator('[data-testid="label-row"][data-label="cat"]').get_by_test_id("edit-attributes").click()
    rows = page.get_by_test_id("schema-row")
    rows.nth(0).get_by_label("Name").fill("colour")
    rows.nth(0).locator("select").select_option("one")
    rows.nth(0).get_by_label("Choices").fill("red, green")
    rows.nth(0).locator('input[type="checkbox"]').first.check()
    rows.nth(1).get_by_label("Name").fill("count")
    rows.nth(1).locator("select").select_option("integer")
    rows.nth(1).get_by_label("Max").fill("5")
    shoot(page, "label-attributes")
    page.get_by_role("button", name="Save attributes").click()
    expect(page.locator(".msg.success")).to_contain_text("Attributes of cat saved")
    expect(page.locator('[data-testid="label-row"][data-label="cat"]')).to_contain_text("colour (one of 2, required) · count (whole number up to 5)")
    assert Label.objects.get(pk=world.labels[0].pk).attributes_schema == {
        "colour": {"type": "string", "choices": ["red", "green"], "required": True}, "count": {"type": "integer", "max": 5},
    }
    shoot(page, "labels")


def test_images_dropped_on_the_upload_page_are_uploaded(page, world):
    LoginPage(page).login("manager")
    upload = UploadPage(page).open(world.project.pk)
    data = [list(png_bytes(40, 30, color=(k * 70, 10, 10))) for k in range(2)]
    page.evaluate(
        """(files) => {
            const transfer = new DataTransfer();
            files.forEach((bytes, k) => transfer.items.add(new File([new Uint8Array(bytes)], `dropped${k}.png`, { type: "image/png" })));
            const zone = document.querySelector('[data-testid="upload-drop"]');
            zone.dispatchEvent(new DragEvent("dragover", { dataTransfer: transfer, bubbles: true, cancelable: true }));
            zone.dispatchEvent(new DragEvent("drop", { dataTransfer: transfer, bubbles: true, cancelable: true }));
        }""",
        data,
    )
    expect(page.get_by_test_id("upload-chosen")).to_contain_text("2 files: dropped0.png, dropped1.png")
    shoot(page, "upload")
    page.get_by_test_id("upload-button").click()
    expect(upload.status).to_contain_text("2 image(s) added")
    assert sorted(Image.objects.filter(project=world.project).values_list("original_name", flat=True)) == ["dropped0.png", "dropped1.png"]


def test_destroying_the_editor_removes_its_window_listeners(page, world, image):
    LoginPage(page).login("annotator")
    EditorPage(page).open(image.pk)
    cdp = page.context.new_cdp_session(page)

    def window_listeners() -> dict[str, int]:
        window = cdp.send("Runtime.evaluate", {"expression": "window"})["result"]["objectId"]
        counts: dict[str, int] = {}
        for listener in cdp.send("DOMDebugger.getEventListeners", {"objectId": window})["listeners"]:
            counts[listener["type"]] = counts.get(listener["type"], 0) + 1
        return counts

    before = window_listeners()
    assert all(before.get(kind, 0) >= 1 for kind in ("keydown", "keyup", "resize", "beforeunload", "online")), before
    page.evaluate("() => window.__editor.destroy()")
    after = window_listeners()
    for kind in ("keydown", "keyup", "resize", "beforeunload", "online"):
        assert after.get(kind, 0) == 0, (kind, before, after)
    page.keyboard.press("p")  # nothing listens any more: no error, nothing happens
    expect(page.get_by_test_id("stage")).to_have_count(0)


# ------------------------------------------------------------------------------------ pages


LONG_ERROR = (
    "could not load pretrained COCO weights MaskRCNN_ResNet50_FPN_Weights.COCO_V1 for maskrcnn_resnet50_fpn from "
    "https://download.pytorch.org/models/maskrcnn_resnet50_fpn_coco-bf2d0c1e.pth (URLError: <urlopen error [Errno -3] "
    "Temporary failure in name resolution>). This machine probably has no internet access: download the file elsewhere "
    "and point the ANNOTATOR_COCO_CHECKPOINT setting (checkpoint path) at it, or put it in the torch hub cache "
    "(/var/lib/annotator/very/long/path/without/any/spaces/torch/hub/checkpoints/)."
)


def test_a_long_job_error_stays_inside_the_dashboard_card(page, world):
    from annotator.jobs.models import Job

    Job.objects.create(kind="preannotate", project=world.project, state="failed", message="Failed", error=LONG_ERROR)
    for persona in ("manager", "annotator"):
        LoginPage(page).login(persona)
        page.set_viewport_size(SIZES["1024"])
        page.goto(f"/projects/{world.project.pk}/")
        error = page.get_by_test_id("job-error")
        expect(error).to_be_visible()
        if persona == "manager":
            expect(error.locator("summary")).to_contain_text("could not load pretrained COCO weights")
            error.locator("summary").click()
            expect(error).to_contain_text("torch hub cache")
            shoot(page, "dashboard-job-error", page.locator(".jobs-card"))
        else:
            expect(error).to_have_text("The job failed; a manager can see why.")
        # Both boxes in one read: the dashboard re-renders its jobs card while it polls, and an
        # element read between two renders has no box.
        card, box = page.evaluate(
            """() => ['.jobs-card', '[data-testid=job-error]'].map((sel) => {
                const r = document.querySelector(sel).getBoundingClientRect();
                return {x: r.x, width: r.width};
            })"""
        )
        assert box["x"] + box["width"] <= card["x"] + card["width"] + 0.5, (persona, box, card)
        assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth"), persona


def test_checkboxes_sit_on_the_line_of_their_label(page, world):
    LoginPage(page).login("manager")
    for path, name in (("datasets", "include_images"), ("import", "create_labels")):
        page.goto(f"/projects/{world.project.pk}/{path}/")
        box = page.locator(f'input[name="{name}"]').bounding_box()
        label = page.locator(f'label:has(input[name="{name}"])').bounding_box()
        assert label["height"] < 32 and box["x"] - label["x"] < 4, (path, box, label)
    shoot(page, "import-page")


def test_a_rejection_without_anything_to_fix_is_refused_and_says_why(page, world, image):
    save_objects(world, image, [cat(world, 20, 20, 60)])
    assert world.client("annotator").post(f"/api/images/{image.pk}/submit/").status_code == 200
    LoginPage(page).login("reviewer")
    EditorPage(page).open(image.pk, mode="review")
    page.get_by_test_id("review-reject").click()
    dialog = page.get_by_test_id("review-reject-dialog")
    dialog.get_by_test_id("review-confirm-reject").click()
    expect(dialog.get_by_test_id("review-dialog-error")).to_contain_text("Say what must be fixed")
    assert Image.objects.get(pk=image.pk).status == ImageStatus.IN_REVIEW
    dialog.get_by_test_id("review-reject-comment").fill("The tail is cut off.")
    dialog.get_by_test_id("review-confirm-reject").click()
    expect(page.get_by_test_id("review-decided-dialog")).to_be_visible()
    assert Image.objects.get(pk=image.pk).status == ImageStatus.REJECTED
    # The decision closed the image for this reviewer: the editor says so instead of failing saves.
    expect(EditorPage(page).readonly_banner).to_contain_text("You rejected this image")
