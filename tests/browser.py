"""Browser fixtures: Debian's Chromium driven by Playwright against pytest-django's live server.

Imported by tests/conftest.py so that the whole run has one browser: two sync_playwright loops in
one process cannot coexist, and the one that is open must stay open until the session ends (the
tests that follow run beside its event loop, see DJANGO_ALLOW_ASYNC_UNSAFE below).
"""
from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
SCREENSHOTS = Path(os.environ.get("ANNOTATOR_DATA_DIR", "/tmp")) / "screenshots"


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium package")
    # Playwright's sync API keeps an event loop in the test thread while the browser is open; the
    # ORM calls the tests make there (fixtures, assertions) are ordinary synchronous code.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-dev-shm-usage"])
            yield browser
            browser.close()
    finally:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


@pytest.fixture
def csp_violations() -> list[str]:
    """What Chromium reported as Content-Security-Policy violations on the test's page."""
    return []


@pytest.fixture
def csp_allowed() -> list[str]:
    """Violations a test expects (a substring of each report): checked when the page closes, since
    Chromium may report one after the test's last step."""
    return []


@pytest.fixture
def page(browser, live_server, request, csp_violations, csp_allowed) -> Iterator[object]:
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1400, "height": 900})
    context.set_default_timeout(15_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    # The pages run under the site's Content-Security-Policy; Chromium reports each violation
    # (an inline script, a style="" attribute, a CDN) on the console.
    page.on("console", lambda msg: csp_violations.append(msg.text) if "Content Security Policy" in msg.text else None)
    yield page
    # A test may have closed the page (closing a tab); the screenshot is then of nothing.
    if (request.node.rep_call.failed if hasattr(request.node, "rep_call") else False) and not page.is_closed():
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{request.node.name}.png"))
    context.close()
    _wait_for_requests_in_flight(live_server)
    assert not errors, f"JavaScript errors on the page: {errors}"
    unexpected = [v for v in csp_violations if not any(allowed in v for allowed in csp_allowed)]
    assert not unexpected, f"Content-Security-Policy violations: {unexpected}"


def _wait_for_requests_in_flight(live_server, timeout: float = 10.0) -> None:
    """Let the live server finish what the closing page sent (a beacon, an autosave on pagehide).

    The database is flushed after each test; a request still holding a row lock then deadlocks
    the flush's TRUNCATE on PostgreSQL. Each request runs in a thread of the server's own.
    """
    httpd = live_server.thread.httpd
    time.sleep(0.2)  # a beacon sent as the page closed reaches the server's accept loop
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        busy = [t for t in threading.enumerate() if getattr(t, "_target", None) == httpd.process_request_thread]
        if not busy:
            return
        time.sleep(0.05)
