"""People without the Django admin: admins create accounts, managers invite into projects and change
roles, everyone changes their own password; set-password links work once."""
from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from annotator.projects.models import Membership

pytestmark = pytest.mark.django_db

User = get_user_model()


def _browser(world, persona: str) -> Client:
    client = Client()
    client.force_login(world.users[persona])
    return client


def _choose_password(link: str, password: str) -> Client:
    """Open a set-password link in a fresh browser and choose `password`."""
    client = Client()
    opened = client.get(link)
    assert opened.status_code == 302  # Django moves the token out of the URL into the session
    form = client.get(opened["Location"])
    assert b"Choose your password" in form.content and b"set-password-form" in form.content
    done = client.post(opened["Location"], {"new_password1": password, "new_password2": password})
    assert done.status_code == 302, done.content
    return client


def test_an_admin_creates_an_account_with_a_set_password_link(world):
    response = world.client("admin").post("/api/users/", {"username": "newbie", "email": "newbie@example.org"}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["user"]["username"] == "newbie" and body["user"]["has_password"] is False and body["password"] is None
    link = body["set_password_url"]
    assert "/account/set-password/" in link

    client = _choose_password(link, "a-Long-pass-2024")
    assert client.get("/").status_code == 200  # logged in after choosing
    assert User.objects.get(username="newbie").check_password("a-Long-pass-2024")
    again = Client().get(link)
    assert again.status_code == 200 and b"has been used already" in again.content  # the link works once


def test_an_admin_creates_an_account_with_a_one_time_password(world):
    body = world.client("admin").post("/api/users/", {"username": "temp", "access": "password", "is_admin": True}, format="json").json()
    assert body["set_password_url"] is None and len(body["password"]) >= 10
    user = User.objects.get(username="temp")
    assert user.check_password(body["password"]) and user.is_superuser and body["user"]["is_admin"] is True


@pytest.mark.parametrize("persona", ["manager", "annotator"])
def test_only_admins_create_or_list_accounts(world, persona):
    client = world.client(persona)
    assert client.post("/api/users/", {"username": "sneaky"}, format="json").status_code == 403
    assert client.get("/api/users/").status_code == 403
    assert not User.objects.filter(username="sneaky").exists()
    assert _browser(world, persona).get("/people/").status_code == 403


def test_account_names_are_checked(world):
    client = world.client("admin")
    assert client.post("/api/users/", {"username": "annotator"}, format="json").status_code == 409
    assert client.post("/api/users/", {"username": "two words"}, format="json").status_code == 400
    assert client.post("/api/users/", {"username": "x", "email": "not-mail"}, format="json").status_code == 400


def test_a_manager_invites_a_new_person_by_email(world):
    response = world.client("manager").post(
        f"/api/projects/{world.project.pk}/invitations/", {"invitee": "Ada.Lovelace@example.org", "role": "reviewer"}, format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["created_account"] is True and body["membership"]["role"] == "reviewer"
    user = User.objects.get(email="Ada.Lovelace@example.org")
    assert user.username == "ada.lovelace" and body["membership"]["username"] == "ada.lovelace"
    _choose_password(body["set_password_url"], "an-0ther-long-pass")
    assert Membership.objects.get(project=world.project, user=user).role == "reviewer"


def test_inviting_an_existing_address_or_username_adds_that_account(world):
    world.users["outsider"].email = "out@example.org"
    world.users["outsider"].save()
    client = world.client("manager")
    by_mail = client.post(f"/api/projects/{world.project.pk}/invitations/", {"invitee": "OUT@example.org", "role": "annotator"}, format="json").json()
    assert by_mail["created_account"] is False and by_mail["set_password_url"] is None and by_mail["membership"]["username"] == "outsider"
    by_name = client.post(f"/api/projects/{world.project.pk}/invitations/", {"invitee": "outsider", "role": "reviewer"}, format="json").json()
    assert by_name["membership"]["role"] == "reviewer"
    unknown = client.post(f"/api/projects/{world.project.pk}/invitations/", {"invitee": "ghost", "role": "reviewer"}, format="json")
    assert unknown.status_code == 400 and "no user named" in unknown.json()["detail"]


def test_annotators_cannot_invite(world):
    response = world.client("annotator").post(
        f"/api/projects/{world.project.pk}/invitations/", {"invitee": "friend@example.org", "role": "manager"}, format="json",
    )
    assert response.status_code == 403
    assert not User.objects.filter(email="friend@example.org").exists()


def test_the_members_page_invites_by_email_shows_the_link_once_and_changes_roles_in_place(world):
    client = _browser(world, "manager")
    url = f"/projects/{world.project.pk}/members/"
    page = client.post(url, {"username": "grace@example.org", "role": "annotator"}, follow=True).content.decode()
    assert "Account grace created" in page and 'data-testid="set-password-link"' in page
    assert re.search(r'value="http://testserver/account/set-password/[^"]+"', page)
    assert 'data-testid="set-password-link"' not in client.get(url).content.decode()  # shown once

    membership = Membership.objects.get(project=world.project, user__username="grace")
    changed = client.post(url, {"action": "role", "membership": membership.pk, "role": "reviewer"}, follow=True)
    assert "grace is now reviewer" in changed.content.decode()
    membership.refresh_from_db()
    assert membership.role == "reviewer"
    bad = client.post(url, {"action": "role", "membership": membership.pk, "role": "owner"}, follow=True)
    assert "role must be one of" in bad.content.decode()


def test_people_change_their_own_password(world):
    client = world.client("annotator")
    wrong = client.post("/api/me/password/", {"old_password": "nope", "new_password": "brand-new-pass-1"}, format="json")
    assert wrong.status_code == 400 and "current password" in wrong.json()["detail"]
    weak = client.post("/api/me/password/", {"old_password": "pass-word-123", "new_password": "short"}, format="json")
    assert weak.status_code == 400 and "too short" in weak.json()["detail"]
    ok = client.post("/api/me/password/", {"old_password": "pass-word-123", "new_password": "brand-new-pass-1"}, format="json")
    assert ok.status_code == 204
    assert User.objects.get(username="annotator").check_password("brand-new-pass-1")
    assert client.get("/api/me/").json()["username"] == "annotator"


def test_the_account_page_changes_the_password_and_keeps_you_logged_in(world):
    client = _browser(world, "reviewer")
    response = client.post("/account/", {
        "old_password": "pass-word-123", "new_password1": "reviewer-pass-2024", "new_password2": "reviewer-pass-2024",
    }, follow=True)
    assert "Your password is changed" in response.content.decode()
    assert client.get("/").status_code == 200
    assert User.objects.get(username="reviewer").check_password("reviewer-pass-2024")


def test_an_admin_makes_a_new_set_password_link_for_a_forgotten_password(world):
    client = _browser(world, "admin")
    page = client.post("/people/", {"action": "link", "user": world.users["annotator"].pk}, follow=True).content.decode()
    link = re.search(r'value="(http://testserver/account/set-password/[^"]+)"', page).group(1)
    _choose_password(link, "remembered-now-1")
    assert User.objects.get(username="annotator").check_password("remembered-now-1")
