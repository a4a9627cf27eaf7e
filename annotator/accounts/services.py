"""Writes on people: accounts made in the app, project invitations, set-password links, password changes.

Mail may not be configured on a server, so nothing here sends mail: whoever creates an account or
invites someone gets a set-password link (or a one-time password) to pass on themselves.
"""
from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.contrib.auth.password_validation import validate_password
from django.contrib.auth.tokens import default_token_generator
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from annotator.core.errors import DomainError
from annotator.projects.models import Membership, Project
from annotator.projects.services import membership_set

_USERNAME = re.compile(r"^[\w.@+-]{1,150}$")


@dataclass(frozen=True)
class NewAccount:
    """An account just made, with what its owner needs to get in (one of the two, shown once)."""

    user: AbstractBaseUser
    password: str | None = None
    set_password_path: str | None = None


@dataclass(frozen=True)
class Invitation:
    """Someone added to a project; `account` is set when the invitation had to create their account."""

    membership: Membership
    account: NewAccount | None = None


def set_password_path(user: AbstractBaseUser) -> str:
    """A link that lets `user` choose a password once (Django's reset token: invalid once used, or after
    PASSWORD_RESET_TIMEOUT)."""
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    return reverse("set-password", kwargs={"uidb64": uid, "token": default_token_generator.make_token(user)})


def _one_time_password() -> str:
    return secrets.token_urlsafe(9)


@transaction.atomic
def account_create(*, username: str, email: str = "", is_admin: bool = False, access: str = "link") -> NewAccount:
    """An account made by an admin. `access`: "link" (a set-password link) or "password" (a generated
    password to hand over, shown once)."""
    username = username.strip()
    email = email.strip()
    if not _USERNAME.match(username):
        raise DomainError("A username has 1 to 150 letters, digits and @ . + - _ (no spaces).")
    if email:
        try:
            validate_email(email)
        except ValidationError:
            raise DomainError(f"{email!r} is not an e-mail address.") from None
    if access not in ("link", "password"):
        raise DomainError('access must be "link" or "password"')
    User = get_user_model()
    if User.objects.filter(username__iexact=username).exists():
        raise DomainError(f"The user {username!r} already exists.", status=409)
    password = _one_time_password() if access == "password" else None
    try:
        user = User.objects.create_user(username=username, email=email, password=password)
    except IntegrityError:
        raise DomainError(f"The user {username!r} already exists.", status=409) from None
    if password is None:
        user.set_unusable_password()
    if is_admin:
        user.is_staff = user.is_superuser = True
    user.save()
    return NewAccount(user=user, password=password, set_password_path=None if password else set_password_path(user))


def _username_from_email(email: str) -> str:
    User = get_user_model()
    base = re.sub(r"[^\w.+-]", "", email.split("@", 1)[0]).lower()[:140] or "user"
    name, n = base, 1
    while User.objects.filter(username__iexact=name).exists():
        n += 1
        name = f"{base}{n}"
    return name


@transaction.atomic
def member_invite(*, project: Project, invitee: str, role: str) -> Invitation:
    """Add someone to a project with a role, by username or by e-mail address.

    An address nobody uses yet creates an account (named after the address) with a set-password
    link for the invitation; an existing member gets the new role.
    """
    invitee = invitee.strip()
    User = get_user_model()
    if "@" not in invitee:
        return Invitation(membership_set(project=project, username=invitee, role=role))
    try:
        validate_email(invitee)
    except ValidationError:
        raise DomainError(f"{invitee!r} is not an e-mail address.") from None
    users = list(User.objects.filter(email__iexact=invitee)[:2])
    if len(users) > 1:
        raise DomainError(f"Several accounts use {invitee}; invite one of them by username.")
    account = None
    if users:
        user = users[0]
    else:
        user = User.objects.create_user(username=_username_from_email(invitee), email=invitee)
        user.set_unusable_password()
        user.save()
        account = NewAccount(user=user, set_password_path=set_password_path(user))
    return Invitation(membership_set(project=project, username=user.get_username(), role=role), account)


def password_change(*, user: AbstractBaseUser, old_password: str, new_password: str) -> None:
    """A person's own new password: the old one must be right, the new one pass the password validators."""
    if not user.check_password(old_password):
        raise DomainError("Your current password is not right.")
    try:
        validate_password(new_password, user)
    except ValidationError as exc:
        raise DomainError(" ".join(exc.messages)) from None
    user.set_password(new_password)
    user.save(update_fields=["password"])


def set_password_link_renew(*, user: AbstractBaseUser) -> str:
    """A new set-password link for an existing account (a forgotten password; the admin passes it on)."""
    return set_password_path(user)
