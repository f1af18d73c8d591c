"""Settings readers fail loudly, naming the variable, instead of running with a silent default."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from portal.env import database_from_url, env_bool, env_int, env_list, env_str, redis_url


def test_missing_required_value(monkeypatch):
    monkeypatch.delenv("PORTAL_X", raising=False)
    with pytest.raises(ImproperlyConfigured, match="PORTAL_X is required"):
        env_str("PORTAL_X")


@pytest.mark.parametrize(("raw", "expected"), [("1", True), ("yes", True), ("off", False), ("", False)])
def test_booleans(monkeypatch, raw, expected):
    monkeypatch.setenv("PORTAL_X", raw)
    assert env_bool("PORTAL_X", not expected) is expected


def test_bad_boolean(monkeypatch):
    monkeypatch.setenv("PORTAL_X", "maybe")
    with pytest.raises(ImproperlyConfigured, match="PORTAL_X='maybe' is not a boolean"):
        env_bool("PORTAL_X", False)


def test_integers_and_their_bounds(monkeypatch):
    monkeypatch.setenv("PORTAL_X", "12")
    assert env_int("PORTAL_X", 1, minimum=1, maximum=20) == 12
    monkeypatch.setenv("PORTAL_X", "twelve")
    with pytest.raises(ImproperlyConfigured, match="not an integer"):
        env_int("PORTAL_X", 1)
    monkeypatch.setenv("PORTAL_X", "0")
    with pytest.raises(ImproperlyConfigured, match="below the minimum 1"):
        env_int("PORTAL_X", 1, minimum=1)


def test_lists(monkeypatch):
    monkeypatch.setenv("PORTAL_X", " a, b ,,c ")
    assert env_list("PORTAL_X", []) == ["a", "b", "c"]


def test_database_urls():
    pg = database_from_url("postgres://u:p%40ss@db.example:6543/portal?sslmode=require")
    assert (pg["NAME"], pg["USER"], pg["PASSWORD"], pg["HOST"], pg["PORT"]) == (
        "portal",
        "u",
        "p@ss",
        "db.example",
        "6543",
    )
    assert pg["OPTIONS"] == {"sslmode": "require"}
    assert database_from_url("sqlite:////var/lib/portal/db.sqlite3")["NAME"] == "/var/lib/portal/db.sqlite3"
    assert database_from_url("sqlite:///var/db.sqlite3")["NAME"] == "var/db.sqlite3"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://x/y", "unsupported scheme 'mysql'"),
        ("postgres://host:5432/", "names no database"),
        ("postgres://host:port/db", "invalid port"),
        ("sqlite://", "names no SQLite file"),
    ],
)
def test_bad_database_urls(url, message):
    with pytest.raises(ImproperlyConfigured, match=message):
        database_from_url(url)


def test_redis_url(monkeypatch):
    monkeypatch.setenv("REDIS_URL", "http://localhost:6379")
    with pytest.raises(ImproperlyConfigured, match="unsupported scheme 'http'"):
        redis_url()
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/0")
    assert redis_url() == "redis://127.0.0.1:6379/0"


@pytest.mark.parametrize("raw", ["", "Portal", "a_b", "-a", "a-", "a--b", "a" * 17, "portal.b"])
def test_a_pattern_refuses_and_explains(monkeypatch, raw):
    from portal.env import env_matching

    monkeypatch.setenv("PORTAL_DEPLOYMENT", raw)
    with pytest.raises(ImproperlyConfigured, match=r"PORTAL_DEPLOYMENT=.* is invalid: at most 16"):
        env_matching(
            "PORTAL_DEPLOYMENT",
            "portal",
            pattern=r"(?=.{1,16}$)[a-z0-9]+(-[a-z0-9]+)*",
            explain="at most 16 lowercase letters and digits, with single '-' between them",
        )
