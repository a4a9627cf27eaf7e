"""Page objects: what a person does on a page, in their words, so tests read as user stories."""
from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass

from playwright.sync_api import Page, expect


@dataclass
class LoginPage:
    page: Page

    def login(self, username: str, password: str = "pass-word-123") -> None:
        self.page.goto("/login/")
        self.page.get_by_label("Username").fill(username)
        self.page.get_by_label("Password").fill(password)
        self.page.get_by_role("button", name="Log in").click()
        expect(self.page.get_by_test_id("current-user")).to_contain_text(username)


@dataclass
class UploadPage:
    page: Page

    def open(self, project_id: int) -> UploadPage:
        self.page.goto(f"/projects/{project_id}/upload/")
        return self

    def upload(self, *paths: str) -> None:
        self.page.get_by_test_id("upload-input").set_input_files(list(paths))
        self.page.get_by_test_id("upload-button").click()

    @property
    def status(self):  # type: ignore[no-untyped-def]
        return self.page.get_by_test_id("upload-status")


Point = tuple[float, float]

# The editor is idle and everything is on the server: no pending change, no request in flight.
_SAVED = "() => { const e = window.__editor; return !!e && !e.autosave.dirty && e.autosave.state === 'saved'; }"
# Everything the server accepts is on it; what it refused is held back in the editor.
_HELD = "() => { const e = window.__editor; return !!e && !e.autosave.dirty && e.autosave.state === 'held'; }"


@dataclass
class EditorPage:
    """The annotation editor (/images/<id>/edit/): tools are driven with the mouse and keyboard.

    Points are given in image pixel coordinates and turned into page coordinates through the
    editor's own viewport (window.__editor.viewport) and the stage's bounding box, so a test says
    "click the image at (40, 20)" whatever the zoom.
    """

    page: Page

    def open(self, image_id: int, *, mode: str | None = None) -> EditorPage:
        self.page.goto(f"/images/{image_id}/edit/" + (f"?mode={mode}" if mode else ""))
        self.wait_ready()
        if mode == "review":
            # Decisions, comments and the diff load after the editor is interactive.
            expect(self.page.get_by_test_id("review-panel")).to_be_visible()
        return self

    def wait_ready(self) -> None:
        self.page.wait_for_function("() => window.__editorReady !== undefined")
        expect(self.page.get_by_test_id("instance-list")).to_have_attribute("data-complete", "true")

    def reload(self) -> None:
        self.page.reload()
        self.wait_ready()

    # ------------------------------------------------------------------ coordinates

    def to_page(self, point: Point) -> Point:
        x, y = self.page.evaluate(
            """([x, y]) => {
                const e = window.__editor;
                const r = e.ui.stage.getBoundingClientRect();
                const [sx, sy] = e.viewport.toScreen([x, y]);
                return [r.left + sx, r.top + sy];
            }""",
            [point[0], point[1]],
        )
        return x, y

    def click(self, point: Point, **kwargs: object) -> None:
        x, y = self.to_page(point)
        self.page.mouse.click(x, y, **kwargs)  # type: ignore[arg-type]

    def drag(self, start: Point, end: Point, steps: int = 8) -> None:
        x0, y0 = self.to_page(start)
        x1, y1 = self.to_page(end)
        self.page.mouse.move(x0, y0)
        self.page.mouse.down()
        self.page.mouse.move(x1, y1, steps=steps)
        self.page.mouse.up()

    # ------------------------------------------------------------------ tools

    def use_tool(self, name: str) -> None:
        self.page.get_by_test_id(f"tool-{name}").click()
        expect(self.page.get_by_test_id("stage")).to_have_attribute("data-tool", name)

    def choose_label(self, name: str) -> None:
        self.page.get_by_test_id("label-button").filter(has_text=name).click()

    def _draw_ring(self, tool: str, points: list[Point]) -> None:
        self.use_tool(tool)
        for point in points:
            # Far enough apart in time that two vertices are never read as a double click.
            self.click(point, delay=20)
            self.page.wait_for_timeout(30)
        self.page.keyboard.press("Enter")

    def draw_polygon(self, points: list[Point]) -> None:
        self._draw_ring("polygon", points)

    def cut_hole(self, points: list[Point]) -> None:
        """Cut a hole into the selected object."""
        self._draw_ring("hole", points)

    def add_part(self, points: list[Point]) -> None:
        self._draw_ring("part", points)

    def select_at(self, point: Point) -> None:
        self.use_tool("edit")
        self.click(point)

    def select_row(self, index: int = 0) -> None:
        self.instance_rows.nth(index).click()

    def deselect(self) -> None:
        self.page.keyboard.press("Escape")

    def drag_vertex(self, start: Point, end: Point) -> None:
        """Drag a vertex of the selected polygon (edit tool) from `start` to `end`."""
        self.use_tool("edit")
        x, y = self.to_page(start)
        self.page.mouse.move(x, y)  # hovering shows the vertex handle
        self.drag(start, end)

    def paint(self, points: list[Point], *, size: int = 10, erase: bool = False) -> None:
        """One brush (or eraser) stroke through `points`."""
        self.use_tool("eraser" if erase else "brush")
        self.page.get_by_test_id("brush-size").fill(str(size))
        x, y = self.to_page(points[0])
        self.page.mouse.move(x, y)
        self.page.mouse.down()
        for point in points[1:]:
            x, y = self.to_page(point)
            self.page.mouse.move(x, y, steps=5)
        self.page.mouse.up()

    def cut_with_scissors(self, points: list[Point]) -> None:
        """Intelligent scissors: click points around an object, Enter closes the outline."""
        self.use_tool("scissors")
        for point in points:
            # From the second click on, each click asks the server for the path so far.
            with self.page.expect_response(lambda r: "/api/assist/scissors/" in r.url) if point is not points[0] else nullcontext():
                self.click(point, delay=20)
            self.page.wait_for_timeout(30)
        with self.page.expect_response(lambda r: "/api/assist/scissors/" in r.url and '"closed":true' in (r.request.post_data or "")):
            self.page.keyboard.press("Enter")

    def zoom_out(self, times: int = 1) -> None:
        for _ in range(times):
            self.page.get_by_test_id("btn-zoom-out").click()

    def box_to_mask(self, start: Point, end: Point) -> None:
        """Drag a box with the box → mask tool; the server's answer becomes a new object."""
        self.use_tool("boxmask")
        self.drag(start, end)

    def box_engine(self):  # type: ignore[no-untyped-def]
        """The toolbar's box → mask engine choice (shown once the server has said which engines there are)."""
        return self.page.get_by_test_id("box-engine")

    def choose_box_engine(self, engine: str) -> None:
        """"" is Auto (the project's best), else "grabcut", "model" or "sam"."""
        self.box_engine().select_option(engine)

    def sam_click(self, point: Point) -> None:
        """A click with the box → mask tool and no box: with SAM, the click alone is the prompt."""
        self.use_tool("boxmask")
        self.click(point)

    def next_candidate(self) -> None:
        """Swap the object just made for SAM's next candidate mask (keymap "C")."""
        self.page.keyboard.press("c")

    def undo(self) -> None:
        self.page.keyboard.press("Control+z")

    def redo(self) -> None:
        self.page.keyboard.press("Control+Shift+z")

    def delete_selected(self) -> None:
        self.page.get_by_test_id("btn-delete").click()

    def accept_proposal(self, prediction_id: int) -> None:
        self.page.locator(f'[data-testid="proposal-row"][data-prediction-id="{prediction_id}"]').get_by_test_id("proposal-accept").click()

    def submit(self) -> None:
        self.page.get_by_test_id("btn-submit").click()

    def fix_held_object(self) -> None:
        """"Fix it" on the status bar's notice about an object the server refused."""
        self.held_notice.get_by_test_id("held-fix").click()

    def delete_held_object(self) -> None:
        self.held_notice.get_by_test_id("held-delete").click()

    def restore_unsaved_edits(self) -> None:
        self.restore_dialog.get_by_test_id("restore-edits").click()
        expect(self.restore_dialog).to_have_count(0)

    def discard_unsaved_edits(self) -> None:
        self.restore_dialog.get_by_test_id("restore-discard").click()
        expect(self.restore_dialog).to_have_count(0)

    # ------------------------------------------------------------------ state

    def wait_saved(self) -> None:
        """Wait until autosave has stored every change (save state "saved", nothing pending)."""
        self.page.wait_for_function(_SAVED)
        expect(self.save_state).to_have_attribute("data-state", "saved")

    def wait_held(self) -> None:
        """Wait until everything the server accepts is saved and the rest is held back."""
        self.page.wait_for_function(_HELD)
        expect(self.save_state).to_have_attribute("data-state", "held")

    def wait_journaled(self) -> None:
        """Wait until every change so far is in the browser's journal (IndexedDB)."""
        self.page.evaluate("() => window.__editor.journal.idle()")

    @property
    def save_state(self):  # type: ignore[no-untyped-def]
        return self.page.get_by_test_id("save-state")

    @property
    def status_bar(self):  # type: ignore[no-untyped-def]
        return self.page.get_by_test_id("status-bar")

    @property
    def status_message(self):  # type: ignore[no-untyped-def]
        return self.page.get_by_test_id("status-message")

    @property
    def held_notice(self):  # type: ignore[no-untyped-def]
        return self.page.get_by_test_id("held-notice")

    @property
    def restore_dialog(self):  # type: ignore[no-untyped-def]
        return self.page.get_by_test_id("restore-dialog")

    def row(self, uid: str):  # type: ignore[no-untyped-def]
        return self.page.locator(f'[data-testid="instance-row"][data-uid="{uid}"]')

    @property
    def instance_rows(self):  # type: ignore[no-untyped-def]
        return self.page.get_by_test_id("instance-row")

    @property
    def proposal_rows(self):  # type: ignore[no-untyped-def]
        return self.page.get_by_test_id("proposal-row")

    @property
    def conflict_dialog(self):  # type: ignore[no-untyped-def]
        return self.page.get_by_test_id("conflict-dialog")

    def annotations(self) -> list[dict]:
        """The editor's current annotation set (what the user sees), in draw order."""
        return self.page.evaluate("() => window.__editor.store.sortedByZ().map((a) => ({uid: a.uid, label: a.label, source: a.source, geometry: a.geometry}))")

    def selected_uid(self) -> str | None:
        return self.page.evaluate("() => window.__editor.selectedUid()")

    def version(self) -> int:
        return self.page.evaluate("() => window.__editor.autosave.version")

    # ------------------------------------------------------------------ everyday

    @property
    def attributes(self) -> AttributePanel:
        return AttributePanel(self)

    @property
    def history(self) -> HistoryPanel:
        return HistoryPanel(self)

    def filter_objects(self, attribute: str, value: str | None = None) -> None:
        """Show only objects whose `attribute` has `value` ("*": any value, "-": none; None: all objects)."""
        self.page.get_by_test_id("attribute-filter").select_option(attribute or "")
        if attribute and value is not None:
            self.page.get_by_test_id("attribute-filter-value").select_option(value)

    @property
    def visible_rows(self):  # type: ignore[no-untyped-def]
        return self.page.locator('[data-testid="instance-row"]:visible')

    def next_image(self) -> None:
        self.page.get_by_test_id("btn-next-image").click()

    def previous_image(self) -> None:
        self.page.get_by_test_id("btn-prev-image").click()

    @property
    def list_position(self):  # type: ignore[no-untyped-def]
        return self.page.get_by_test_id("list-position")

    @property
    def readonly_banner(self):  # type: ignore[no-untyped-def]
        return self.page.get_by_test_id("readonly-banner")

    def hover(self, point: Point) -> None:
        x, y = self.to_page(point)
        self.page.mouse.move(x, y, steps=3)

    @property
    def hover_tag(self):  # type: ignore[no-untyped-def]
        return self.page.get_by_test_id("hover-tag")


@dataclass
class ReviewPanel:
    """The review part of the editor: decisions, per-object verdicts, pinned comments, the diff."""

    editor: EditorPage

    @property
    def page(self) -> Page:
        return self.editor.page

    @property
    def panel(self):  # type: ignore[no-untyped-def]
        return self.page.get_by_test_id("review-panel")

    @property
    def comments(self):  # type: ignore[no-untyped-def]
        return self.page.get_by_test_id("comment-row")

    def _row(self, uid: str):  # type: ignore[no-untyped-def]
        return self.page.locator(f'[data-testid="instance-row"][data-uid="{uid}"]')

    def object_verdict(self, uid: str, verdict: str) -> None:
        row = self._row(uid)
        row.get_by_test_id(f"object-{verdict}").click()
        expect(row).to_have_attribute("data-verdict", verdict)

    def pin_comment(self, point: Point, text: str) -> None:
        """Comment tool: click an object (pins to it) or empty image (pins to the point)."""
        before = self.comments.count()
        self.editor.use_tool("comment")
        self.editor.click(point)
        dialog = self.page.get_by_test_id("comment-dialog")
        dialog.get_by_test_id("comment-input").fill(text)
        dialog.get_by_test_id("comment-save").click()
        expect(self.comments).to_have_count(before + 1)

    def accept(self) -> None:
        self.panel.get_by_test_id("review-accept").click()
        expect(self.page.get_by_test_id("review-decided-dialog")).to_be_visible()

    def reject(self, comment: str) -> None:
        self.panel.get_by_test_id("review-reject").click()
        dialog = self.page.get_by_test_id("review-reject-dialog")
        dialog.get_by_test_id("review-reject-comment").fill(comment)
        dialog.get_by_test_id("review-confirm-reject").click()
        expect(self.page.get_by_test_id("review-decided-dialog")).to_be_visible()

    def review_next(self) -> None:
        self.page.get_by_test_id("review-next").click()

    def resolve(self, comment_text: str) -> None:
        row = self.comments.filter(has_text=comment_text)
        row.get_by_test_id("comment-resolve").check()
        expect(row).to_have_attribute("data-resolved", "true")

    def diff(self, mode: str) -> None:
        self.panel.get_by_test_id("diff-mode").select_option(mode)

    def expect_diff(self, *, added: int, modified: int, removed: int) -> None:
        summary = self.page.get_by_test_id("diff-summary")
        expect(summary).to_have_attribute("data-added", str(added))
        expect(summary).to_have_attribute("data-modified", str(modified))
        expect(summary).to_have_attribute("data-removed", str(removed))


# ---------------------------------------------------------------------------------------- everyday


@dataclass
class AttributePanel:
    """The selected object's attributes in the editor (built from its label's schema)."""

    editor: EditorPage

    @property
    def page(self) -> Page:
        return self.editor.page

    @property
    def panel(self):  # type: ignore[no-untyped-def]
        return self.page.get_by_test_id("attribute-panel")

    def field(self, name: str):  # type: ignore[no-untyped-def]
        return self.panel.locator(f'[data-testid="attribute-field"][data-name="{name}"]')

    def set_yes_no(self, name: str, on: bool) -> None:
        box = self.field(name).get_by_test_id("attribute-input")
        box.check() if on else box.uncheck()

    def choose(self, name: str, value: str) -> None:
        self.field(name).get_by_test_id("attribute-input").select_option(value)

    def tick(self, name: str, *values: str) -> None:
        for value in values:
            self.field(name).locator(f'[data-testid="attribute-choice"][data-value="{value}"] input').check()

    def type(self, name: str, text: str) -> None:
        """Type into a text or number field and press Enter (the value is set when the field is left)."""
        field = self.field(name).get_by_test_id("attribute-input")
        field.fill(text)
        field.press("Enter")

    def error(self, name: str):  # type: ignore[no-untyped-def]
        return self.field(name).get_by_test_id("attribute-error")


@dataclass
class HistoryPanel:
    """The editor's history: saved versions, a preview of one over the image, restore."""

    editor: EditorPage

    @property
    def page(self) -> Page:
        return self.editor.page

    @property
    def panel(self):  # type: ignore[no-untyped-def]
        return self.page.get_by_test_id("history-panel")

    def open(self) -> None:
        if self.panel.get_attribute("open") is None:
            self.panel.locator("summary").click()
        expect(self.rows.first).to_be_visible()

    @property
    def rows(self):  # type: ignore[no-untyped-def]
        return self.panel.get_by_test_id("revision-row")

    def row(self, version: int):  # type: ignore[no-untyped-def]
        return self.panel.locator(f'[data-testid="revision-row"][data-version="{version}"]')

    def preview(self, version: int) -> None:
        self.row(version).get_by_test_id("revision-preview").click()
        expect(self.preview_bar).to_have_attribute("data-version", str(version))

    @property
    def preview_bar(self):  # type: ignore[no-untyped-def]
        return self.page.get_by_test_id("preview-bar")

    def restore(self, version: int) -> None:
        with self.page.expect_response(lambda r: f"/revisions/{version}/restore/" in r.url):
            self.row(version).get_by_test_id("revision-restore").click()

    def restore_previewed(self) -> None:
        with self.page.expect_response(lambda r: "/restore/" in r.url):
            self.preview_bar.get_by_test_id("preview-restore").click()


@dataclass
class PeoplePage:
    """Admins: accounts made in the app."""

    page: Page

    def open(self) -> PeoplePage:
        self.page.goto("/people/")
        return self

    def create_account(self, username: str, *, email: str = "", access: str = "link") -> str:
        """Returns what to hand the person: the set-password link, or the one-time password."""
        form = self.page.get_by_test_id("account-form")
        form.get_by_label("Username").fill(username)
        if email:
            form.get_by_label("E-mail (optional)").fill(email)
        form.locator(f'input[name="access"][value="{access}"]').check()
        form.get_by_role("button", name="Create account").click()
        shown = self.page.get_by_test_id("new-access")
        expect(shown).to_be_visible()
        if access == "password":
            return shown.get_by_test_id("new-password").inner_text()
        return shown.get_by_test_id("set-password-link").input_value()


@dataclass
class MembersPage:
    """Managers: people of one project and their roles."""

    page: Page

    def open(self, project_id: int) -> MembersPage:
        self.page.goto(f"/projects/{project_id}/members/")
        return self

    def invite(self, who: str, role: str) -> str | None:
        """Add someone by username or e-mail; returns the set-password link when an account was made."""
        form = self.page.get_by_test_id("invite-form")
        form.get_by_label("Username or e-mail").fill(who)
        form.get_by_label("Role").select_option(role)
        form.get_by_role("button", name="Add").click()
        expect(self.page.locator(".msg.success")).to_be_visible()
        link = self.page.get_by_test_id("set-password-link")
        return link.input_value() if link.count() else None

    def row(self, username: str):  # type: ignore[no-untyped-def]
        return self.page.locator(f'[data-testid="member-row"][data-username="{username}"]')

    def change_role(self, username: str, role: str) -> None:
        with self.page.expect_navigation():
            self.row(username).get_by_test_id("member-role").select_option(role)

    def remove(self, username: str) -> None:
        self.row(username).get_by_test_id("member-remove").click()


@dataclass
class AccountPages:
    """A person's own account: choosing a password from a link, changing it later."""

    page: Page

    def choose_password(self, link: str, password: str) -> None:
        self.page.goto(link)
        form = self.page.get_by_test_id("set-password-form")
        form.get_by_label("New password", exact=True).fill(password)
        form.get_by_label("New password confirmation").fill(password)
        form.get_by_role("button", name="Set password").click()

    def change_password(self, old: str, new: str) -> None:
        self.page.goto("/account/")
        form = self.page.get_by_test_id("password-form")
        form.get_by_label("Old password").fill(old)
        form.get_by_label("New password", exact=True).fill(new)
        form.get_by_label("New password confirmation").fill(new)
        form.get_by_role("button", name="Change password").click()


@dataclass
class BackupsPage:
    """A project's Backups page: back up, duplicate, archive, delete; and the Restore page."""

    page: Page

    def open(self, project_id: int) -> BackupsPage:
        self.page.goto(f"/projects/{project_id}/backups/")
        return self

    def back_up(self) -> None:
        self.page.get_by_test_id("backup-button").click()
        expect(self.page.get_by_test_id("backup-status")).to_contain_text("Backed up", timeout=60_000)

    def duplicate(self, name: str) -> None:
        self.page.get_by_test_id("duplicate-name").fill(name)
        self.page.get_by_test_id("duplicate-button").click()
        expect(self.page.get_by_test_id("duplicate-status")).to_contain_text("Duplicated", timeout=60_000)

    def archive(self) -> None:
        self.page.get_by_test_id("archive-button").click()
        expect(self.page.get_by_test_id("unarchive-button")).to_be_visible()

    def delete(self, typed_name: str) -> None:
        button = self.page.get_by_test_id("delete-button")
        expect(button).to_be_disabled()
        self.page.get_by_test_id("delete-confirm").fill(typed_name)
        expect(button).to_be_enabled()
        button.click()

    def restore_upload(self, path: str, name: str) -> None:
        self.page.goto("/restore/")
        self.page.get_by_test_id("restore-file").set_input_files(path)
        self.page.get_by_test_id("restore-name").fill(name)
        self.page.get_by_test_id("restore-button").click()
        expect(self.page.get_by_test_id("restore-status")).to_contain_text("Restored", timeout=60_000)
