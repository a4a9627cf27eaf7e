"""Page objects: what a person does on a page, in their words, so tests read as user stories."""
from __future__ import annotations

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

    def open(self, project_id: int) -> "UploadPage":
        self.page.goto(f"/projects/{project_id}/upload/")
        return self

    def upload(self, *paths: str) -> None:
        self.page.get_by_test_id("upload-input").set_input_files(list(paths))
        self.page.get_by_test_id("upload-button").click()

    @property
    def status(self):  # type: ignore[no-untyped-def]
        return self.page.get_by_test_id("upload-status")
