"""Database settings: PostgreSQL from DATABASE_URL, SQLite under the data dir as the embedded default."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import dj_database_url
from django.core.exceptions import ImproperlyConfigured


def database_settings(url: str | None, *, data_dir: Path) -> dict[str, Any]:
    if not url:
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(data_dir / "annotator.sqlite3"),
            # A file (not :memory:) so that a worker process can share the test database.
            "TEST": {"NAME": str(data_dir / "test-annotator.sqlite3")},
            "OPTIONS": {"timeout": 30, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"},
        }
    try:
        config = dj_database_url.parse(url, conn_max_age=60, conn_health_checks=True)
    except ValueError as exc:
        raise ImproperlyConfigured(f"DATABASE_URL is not a valid database URL: {exc}") from exc
    if config["ENGINE"] not in ("django.db.backends.postgresql", "django.db.backends.sqlite3"):
        raise ImproperlyConfigured(f"DATABASE_URL must point at PostgreSQL (or SQLite), got {config['ENGINE']}")
    return config
