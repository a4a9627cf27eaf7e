"""Database locks that serialize one person's requests where two at once would break an invariant."""
from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction


def person_lock(user: AbstractBaseUser) -> None:
    """Hold the user's row until the surrounding transaction ends.

    Queue requests of one person (four tabs asking "next" at once) then run one after the other,
    so each sees what the previous one took. The user's row, not a membership: admins take work
    without being members. FOR NO KEY UPDATE, so that rows referencing the user (revisions,
    decisions) can still be inserted meanwhile. On SQLite, where select_for_update is a no-op,
    IMMEDIATE transactions already serialize every writer.
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("person_lock() only means something inside a transaction")
    list(get_user_model().objects.select_for_update(no_key=True).filter(pk=user.pk).values_list("pk", flat=True))
