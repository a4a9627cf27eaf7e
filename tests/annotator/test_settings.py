"""Settings from the environment: typed helpers fail loudly, production settings pass check --deploy."""
from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from annotator.config.database import database_settings
from annotator.config.env import env_bool, env_float, env_int, env_list, env_path, secret_key_file

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("raw", "value"), [("1", True), ("yes", True), ("TRUE", True), (" on ", True), ("0", False), ("off", False), ("", False)])
def test_env_bool_reads_the_usual_spellings(monkeypatch, raw: str, value: bool) -> None:
    monkeypatch.setenv("X_FLAG", raw)
    assert env_bool("X_FLAG", not value) is value


@pytest.mark.parametrize("raw", ["maybe", "2", "enabled"])
def test_env_bool_refuses_anything_else_naming_the_variable(monkeypatch, raw: str) -> None:
    monkeypatch.setenv("X_FLAG", raw)
    with pytest.raises(ImproperlyConfigured, match="X_FLAG"):
        env_bool("X_FLAG", False)


def test_env_int_and_float_refuse_non_numbers(monkeypatch) -> None:
    monkeypatch.setenv("X_NUM", "12MB")
    with pytest.raises(ImproperlyConfigured, match="X_NUM='12MB' is not an integer"):
        env_int("X_NUM", 1)
    with pytest.raises(ImproperlyConfigured, match="not a number"):
        env_float("X_NUM", 1.0)
    monkeypatch.setenv("X_NUM", "42")
    assert env_int("X_NUM", 1) == 42 and env_float("X_NUM", 1.0) == 42.0


def test_unset_or_empty_values_fall_back_to_the_default(monkeypatch) -> None:
    monkeypatch.delenv("X_UNSET", raising=False)
    assert env_int("X_UNSET", 7) == 7 and env_bool("X_UNSET", True) is True
    assert env_list("X_UNSET", ["a"]) == ["a"]
    monkeypatch.setenv("X_UNSET", "")
    assert env_int("X_UNSET", 7) == 7


def test_env_list_splits_on_commas_and_drops_blanks(monkeypatch) -> None:
    monkeypatch.setenv("X_HOSTS", " a.example.com, ,b.example.com ")
    assert env_list("X_HOSTS", []) == ["a.example.com", "b.example.com"]


def test_env_path_is_absolute(monkeypatch, tmp_path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("X_DIR", "data")
    assert env_path("X_DIR", Path("/nowhere")) == tmp_path.resolve() / "data"


def test_generated_secret_key_is_long_private_and_stable(tmp_path) -> None:
    key_file = tmp_path / "secret_key"
    first = secret_key_file(key_file)
    assert len(first) >= 50
    assert secret_key_file(key_file) == first
    assert key_file.stat().st_mode & 0o077 == 0, "the key file is readable by its owner only"


def test_database_url_must_be_postgres_or_sqlite(tmp_path) -> None:
    with pytest.raises(ImproperlyConfigured, match="PostgreSQL"):
        database_settings("mysql://u@localhost/db", data_dir=tmp_path)
    with pytest.raises(ImproperlyConfigured, match="DATABASE_URL"):
        database_settings("nonsense://", data_dir=tmp_path)
    assert database_settings("postgres://u@db:5432/annotator", data_dir=tmp_path)["ENGINE"] == "django.db.backends.postgresql"
    sqlite = database_settings(None, data_dir=tmp_path)
    assert sqlite["NAME"] == str(tmp_path / "annotator.sqlite3")


def _manage(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in ("DEBUG", "ANNOTATOR_HTTPS", "SECRET_KEY", "ALLOWED_HOSTS", "DATABASE_URL", "DJANGO_ALLOW_ASYNC_UNSAFE")}
    clean.update({"ANNOTATOR_DATA_DIR": str(tmp_path), **env})
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=clean, capture_output=True, text=True, timeout=120
    )


def test_production_settings_pass_the_deploy_check(tmp_path) -> None:
    result = _manage(
        tmp_path, "check", "--deploy", "--fail-level", "WARNING",
        DEBUG="0", ANNOTATOR_HTTPS="1", SECRET_KEY=secrets.token_urlsafe(64), ALLOWED_HOSTS="annotator.example.com",
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DEBUG": "maybe"}, "DEBUG='maybe' is not a boolean"),
        ({"SECRET_KEY": "short"}, "SECRET_KEY must be at least 32 characters"),
        ({"ANNOTATOR_MAX_IMAGE_PIXELS": "lots"}, "ANNOTATOR_MAX_IMAGE_PIXELS='lots' is not an integer"),
        ({"DATABASE_URL": "mysql://u@localhost/db"}, "DATABASE_URL must point at PostgreSQL"),
    ],
)
def test_a_bad_environment_value_stops_start_up_with_its_name(tmp_path, env: dict, message: str) -> None:
    result = _manage(tmp_path, "check", **env)
    assert result.returncode != 0
    assert message in result.stderr
