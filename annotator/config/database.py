"""Database settings: PostgreSQL from DATABASE_URL, SQLite under the data dir as the embedded default."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

# SQLite serves web and worker processes at once: wait for locks instead of failing, take the
# write lock at the start of a transaction (no upgrade deadlocks), and let readers run during writes.
_SQLITE_OPTIONS = {"timeout": 30, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"}


def database_settings(url: str | None, *, data_dir: Path) -> dict[str, Any]:
    if not url:
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(data_dir / "annotator.sqlite3"),
            # A file (not :memory:) so that a worker process can share the test database.
            "TEST": {"NAME": str(data_dir / "test-annotator.sqlite3")},
            "OPTIONS": dict(_SQLITE_OPTIONS),
        }
    try:
        config = dj_database_url.parse(url, conn_max_age=60, conn_health_checks=True)
    except ValueError as exc:
        raise ImproperlyConfigured(f"DATABASE_URL is not a valid database URL: {exc}") from exc
    if config["ENGINE"] == "django.db.backends.sqlite3":
        config["CONN_MAX_AGE"] = 0
        config["OPTIONS"] = dict(_SQLITE_OPTIONS)
    elif config["ENGINE"] != "django.db.backends.postgresql":
        raise ImproperlyConfigured(f"DATABASE_URL must point at PostgreSQL (or SQLite), got {config['ENGINE']}")
    test_name = os.environ.get("ANNOTATOR_TEST_DATABASE")
    if test_name:
        # Test runs sharing one server (several checkouts, CI beside a developer) must not collide.
        config["TEST"] = {"NAME": test_name}
    return config
