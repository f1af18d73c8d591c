"""The database settings: SQLite set for several writers, PostgreSQL for placement's prepared claim."""

from __future__ import annotations

import runpy

import pytest

import portal.settings

SETTINGS_FILE = portal.settings.__file__


def database(monkeypatch, url: str, **env: str) -> dict:
    """``DATABASES["default"]`` of the portal's settings run afresh with ``url`` (the live settings are not touched)."""
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.delenv("PORTAL_DB_PREPARED_STATEMENTS", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(SETTINGS_FILE)["DATABASES"]["default"]


def test_sqlite_writers_wait_for_the_lock_taken_when_their_transaction_begins(monkeypatch, tmp_path):
    db = database(monkeypatch, f"sqlite:///{tmp_path}/portal.sqlite3")
    assert db["OPTIONS"]["transaction_mode"] == "IMMEDIATE"  # a launch cannot be overtaken between read and write
    assert db["OPTIONS"]["timeout"] >= 5  # seconds a writer waits for the lock instead of failing
    assert "journal_mode=WAL" in db["OPTIONS"]["init_command"]  # readers go on while one writes


def test_sqlite_tests_share_a_file_not_a_private_memory_database(monkeypatch, tmp_path):
    # Parallel launches in threads and a worker process must all reach the test database.
    db = database(monkeypatch, f"sqlite:///{tmp_path}/portal.sqlite3")
    assert db["TEST"]["NAME"] == f"{tmp_path}/portal.sqlite3.test"


@pytest.mark.parametrize(("env", "threshold"), [({}, 5), ({"PORTAL_DB_PREPARED_STATEMENTS": "0"}, None)])
def test_postgresql_prepares_the_claim_unless_told_not_to(monkeypatch, env, threshold):
    db = database(monkeypatch, "postgres://portal@127.0.0.1:5432/portal", **env)
    assert db["OPTIONS"]["prepare_threshold"] == threshold
    assert "TEST" not in db
