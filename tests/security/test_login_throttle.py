"""Login throttling: wrong passwords lock a username+IP pair out, on /login/ and /admin/login/ alike.

Reproduces the report: 50 wrong passwords on /login/, then the right one logged in (the same on
/admin/login/). The test measures how many wrong tries are answered before the lockout and what
the right password gets afterwards.
"""
from __future__ import annotations

import pytest
from django.conf import settings
from django.test import Client

pytestmark = pytest.mark.django_db

RIGHT = "pass-word-123"


def _attempts_until_locked(client: Client, url: str, username: str, *, limit: int = 50) -> tuple[int, list[int]]:
    """POST wrong passwords until the answer is a lockout; return the try that was locked and all statuses."""
    statuses = []
    for attempt in range(1, limit + 1):
        response = client.post(url, {"username": username, "password": f"wrong-{attempt}"})
        statuses.append(response.status_code)
        if response.status_code == 429:
            return attempt, statuses
    return 0, statuses


@pytest.mark.parametrize("url", ["/login/", "/admin/login/"])
def test_wrong_passwords_lock_the_account_out_and_the_right_one_is_then_refused(world, url: str) -> None:
    user = "admin" if url.startswith("/admin") else "annotator"
    client = Client()
    locked_at, statuses = _attempts_until_locked(client, url, user)

    limit = settings.AXES_FAILURE_LIMIT
    assert limit == 5
    # Tries 1..4 are answered as wrong passwords; the 5th failure locks the pair out.
    assert statuses[: limit - 1] == [200] * (limit - 1)
    assert locked_at == limit

    right = client.post(url, {"username": user, "password": RIGHT})
    assert right.status_code == 429
    assert "Too many failed logins" in right.content.decode()
    assert "_auth_user_id" not in client.session


def test_lockout_is_per_username_and_address(world) -> None:
    _attempts_until_locked(Client(), "/login/", "annotator")
    # Another user from the same address, and the same user from another address, still log in.
    assert Client().post("/login/", {"username": "reviewer", "password": RIGHT}).status_code == 302
    other_address = Client(REMOTE_ADDR="10.1.2.3")
    assert other_address.post("/login/", {"username": "annotator", "password": RIGHT}).status_code == 302


def test_a_successful_login_resets_the_count(world) -> None:
    client = Client()
    for attempt in range(settings.AXES_FAILURE_LIMIT - 1):
        client.post("/login/", {"username": "annotator", "password": f"wrong-{attempt}"})
    assert client.post("/login/", {"username": "annotator", "password": RIGHT}).status_code == 302
    client.post("/logout/")
    for attempt in range(settings.AXES_FAILURE_LIMIT - 1):
        assert client.post("/login/", {"username": "annotator", "password": f"again-{attempt}"}).status_code == 200
    assert client.post("/login/", {"username": "annotator", "password": RIGHT}).status_code == 302


def test_failure_limit_is_configurable(world, settings) -> None:
    settings.AXES_FAILURE_LIMIT = 2
    locked_at, _ = _attempts_until_locked(Client(), "/login/", "annotator")
    assert locked_at == 2
