"""Password guessing: a budget of failed sign-ins per client address and per account, shared by every
process and by every way in (the sign-in page, the admin's, the API token endpoint); 429 + Retry-After."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.core.cache import caches
from django.db import connection, connections
from django.test import RequestFactory

from portal.models import ApiToken

TOKEN_URL = "/api/v1/auth/token/"
ROOT = Path(__file__).resolve().parents[2]
TEST_REDIS_URL = os.environ.get("PORTAL_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


@pytest.fixture
def limits(settings, own_sign_in_budgets):
    """Small budgets, so a test reaches them in a few requests, counted apart from other tests'."""
    settings.TRUSTED_PROXIES = 0
    settings.SIGN_IN_WINDOW_SECONDS = 60
    settings.SIGN_IN_FAILURES_PER_ADDRESS = 4
    settings.SIGN_IN_FAILURES_PER_ACCOUNT = 3
    return settings


@pytest.fixture
def shared_cache():
    """Tests on committed data (two processes, threads) leave rows in the cache table: remove them."""
    yield caches["shared"]
    caches["shared"].clear()


def token(api_client, username, password, **extra):
    return api_client.post(TOKEN_URL, {"username": username, "password": password}, format="json", **extra)


def retry_after(response) -> int:
    return int(response["Retry-After"])


# -- the client's address --------------------------------------------------------------------


def address_of(settings, proxies, remote, forwarded=None):
    from portal.client_address import client_address

    settings.TRUSTED_PROXIES = proxies
    extra = {"REMOTE_ADDR": remote}
    if forwarded is not None:
        extra["HTTP_X_FORWARDED_FOR"] = forwarded
    return client_address(RequestFactory().post("/login/", **extra))


@pytest.mark.parametrize(
    ("proxies", "remote", "forwarded", "expected"),
    [
        # No proxy trusted: the header is whatever the client wrote, and is never read.
        (0, "203.0.113.5", "198.51.100.1", "203.0.113.5"),
        (0, "203.0.113.5", None, "203.0.113.5"),
        # One proxy: it appended the address it saw; anything left of that came from the client.
        (1, "10.0.0.2", "198.51.100.1", "198.51.100.1"),
        (1, "10.0.0.2", "6.6.6.6, 198.51.100.1", "198.51.100.1"),
        (1, "10.0.0.2", "6.6.6.6,198.51.100.1 ", "198.51.100.1"),
        # Two proxies: the outer one wrote the client, the inner one the outer proxy.
        (2, "10.0.0.2", "6.6.6.6, 198.51.100.1, 10.0.0.9", "198.51.100.1"),
        # Malformed or too short for the configured chain: the proxy's own address, never a guess.
        (1, "10.0.0.2", None, "10.0.0.2"),
        (1, "10.0.0.2", "", "10.0.0.2"),
        (1, "10.0.0.2", "not-an-address", "10.0.0.2"),
        (1, "10.0.0.2", "198.51.100.1, ", "10.0.0.2"),
        (2, "10.0.0.2", "198.51.100.1", "10.0.0.2"),
        (2, "10.0.0.2", "198.51.100.1, bogus", "10.0.0.2"),
        # IPv6 is written one way; an IPv4 client seen over IPv6 is its IPv4 address.
        (1, "10.0.0.2", "2001:DB8:0:0::7", "2001:db8::7"),
        (0, "::ffff:198.51.100.3", None, "198.51.100.3"),
    ],
)
def test_the_client_address_comes_from_trusted_hops_only(settings, proxies, remote, forwarded, expected):
    assert address_of(settings, proxies, remote, forwarded) == expected


# -- the token endpoint ----------------------------------------------------------------------


def test_rotating_x_forwarded_for_does_not_escape_the_limit(limits, api, db):
    client = api()
    statuses = [
        token(
            client, f"nobody{n}", "guess", REMOTE_ADDR="203.0.113.7", HTTP_X_FORWARDED_FOR=f"198.51.100.{n}"
        ).status_code
        for n in range(6)
    ]
    assert statuses == [400, 400, 400, 400, 429, 429]
    # Another client is not punished for it.
    assert token(client, "nobody", "guess", REMOTE_ADDR="203.0.113.8").status_code == 400


def test_behind_a_trusted_proxy_each_client_has_its_own_budget(limits, api, db):
    limits.TRUSTED_PROXIES = 1
    client = api()

    def through_proxy(real, spoofed, n):
        # What the client sends is kept on the left; the proxy appends the address it saw.
        forwarded = f"{spoofed}, {real}"
        return token(client, f"nobody{n}", "guess", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR=forwarded)

    statuses = [through_proxy("198.51.100.9", f"192.0.2.{n}", n).status_code for n in range(5)]
    assert statuses == [400, 400, 400, 400, 429]
    assert through_proxy("198.51.100.10", "192.0.2.1", 9).status_code == 400


def test_one_account_is_limited_from_any_number_of_addresses(limits, api, member):
    client = api()
    statuses = [token(client, member.username, "guess", REMOTE_ADDR=f"198.51.100.{n}").status_code for n in range(3)]
    assert statuses == [400, 400, 400]
    # A botnet's next guess is refused before the password is looked at: even the right one
    # (otherwise the refusal would tell a wrong guess from a right one).
    locked = token(client, member.username, "pw", REMOTE_ADDR="198.51.100.200")
    assert locked.status_code == 429
    assert not ApiToken.objects.exists()
    # Other accounts are not locked by it.
    assert token(client, "someone-else", "guess", REMOTE_ADDR="198.51.100.201").status_code == 400


def test_usernames_differing_only_in_case_share_a_budget(limits, api, db):
    client = api()
    for n, name in enumerate(["Mateo", "MATEO", "mateo"]):
        assert token(client, name, "guess", REMOTE_ADDR=f"198.51.100.{n}").status_code == 400
    assert token(client, "mAtEo", "guess", REMOTE_ADDR="198.51.100.99").status_code == 429


def test_throttled_token_requests_answer_429_with_retry_after(limits, api, db):
    client = api()
    for n in range(4):
        token(client, f"nobody{n}", "guess")
    response = token(client, "nobody9", "guess")
    assert response.status_code == 429
    assert 1 <= retry_after(response) <= 60
    body = response.json()
    assert body["code"] == "throttled"
    assert "Try again in 1 minute" in body["detail"]


def test_successful_sign_ins_are_not_counted(limits, api, member):
    client = api()
    for _ in range(25):  # more than any budget, and more than the 20 a minute the old throttle allowed
        assert token(client, member.username, "pw").status_code == 201
    for n in range(4):
        assert token(client, f"nobody{n}", "guess").status_code == 400
    assert token(client, "nobody9", "guess").status_code == 429


def test_the_budget_comes_back_when_the_window_has_passed(limits, api, member):
    # The database cache keeps expiry times to the whole second (it drops the fraction), so a place
    # lasts between window - 1 and window seconds: a 3 s window leaves the four requests 2 s.
    limits.SIGN_IN_WINDOW_SECONDS = 3
    client = api()
    for _ in range(3):
        token(client, member.username, "guess")
    assert token(client, member.username, "pw").status_code == 429
    time.sleep(3.1)
    assert token(client, member.username, "pw").status_code == 201


# -- the HTML sign-in pages ------------------------------------------------------------------


def test_the_sign_in_page_is_throttled_with_a_readable_message(limits, client, member):
    for n in range(3):
        response = client.post("/login/", {"username": member.username, "password": f"guess{n}"})
        assert response.status_code == 200  # the form again, with the usual error
    response = client.post("/login/", {"username": member.username, "password": "pw"})
    assert response.status_code == 429
    assert 1 <= retry_after(response) <= 60
    page = response.content.decode()
    assert "Too many failed sign-ins" in page
    assert "Try again in 1 minute" in page
    assert "_auth_user_id" not in client.session  # the right password did not sign in


def test_the_admin_sign_in_page_is_throttled_too(limits, client, operator):
    for n in range(3):
        assert client.post("/admin/login/", {"username": operator.username, "password": f"guess{n}"}).status_code == 200
    response = client.post("/admin/login/", {"username": operator.username, "password": "pw"})
    assert response.status_code == 429
    assert retry_after(response) >= 1
    assert "Too many failed sign-ins" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_failures_on_one_sign_in_path_count_on_the_others(limits, client, api, member):
    for n in range(2):
        client.post("/login/", {"username": member.username, "password": f"guess{n}"}, REMOTE_ADDR="198.51.100.1")
    client.post("/admin/login/", {"username": member.username, "password": "guess"}, REMOTE_ADDR="198.51.100.2")
    assert token(api(), member.username, "pw", REMOTE_ADDR="198.51.100.3").status_code == 429


def test_a_correct_sign_in_page_login_still_works(limits, client, member):
    response = client.post("/login/", {"username": member.username, "password": "pw"})
    assert response.status_code == 302
    assert client.get("/stacks/").status_code == 200


@pytest.mark.django_db(transaction=True)
def test_the_async_sign_in_path_is_throttled_too(limits, member, shared_cache):
    """Django's ModelBackend checks passwords in aauthenticate() without calling authenticate()."""
    from asgiref.sync import async_to_sync
    from django.contrib.auth import aauthenticate

    for _ in range(3):
        assert async_to_sync(aauthenticate)(None, username=member.username, password="guess") is None
    assert async_to_sync(aauthenticate)(None, username=member.username, password="pw") is None
    limits.SIGN_IN_FAILURES_PER_ACCOUNT = 4
    assert async_to_sync(aauthenticate)(None, username=member.username, password="pw") == member


# -- shared by every process -----------------------------------------------------------------


def _database_url() -> str:
    db = connection.settings_dict
    return f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


_OTHER_PROCESS = """
import json, django
django.setup()
from django.test.utils import setup_test_environment
setup_test_environment()
from django.test import Client
client = Client(REMOTE_ADDR="203.0.113.50")
statuses = [
    client.post("/api/v1/auth/token/", {"username": f"other{n}", "password": "guess"}).status_code
    for n in range(3)
]
print(json.dumps(statuses))
"""


@pytest.mark.django_db(transaction=True)
def test_the_budget_is_shared_with_another_process(limits, api, own_sign_in_budgets, shared_cache):
    """Another web server process (its own interpreter, cache client and database connection)."""
    client = api()
    assert [token(client, f"here{n}", "guess", REMOTE_ADDR="203.0.113.50").status_code for n in range(2)] == [400, 400]
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": _database_url(),
        "PORTAL_SIGN_IN_WINDOW": "60",
        "PORTAL_SIGN_IN_FAILURES_PER_ADDRESS": "4",
        "PORTAL_SIGN_IN_FAILURES_PER_ACCOUNT": "3",
        "PORTAL_CHANNEL_PREFIX": own_sign_in_budgets,  # the shared cache's key prefix
    }
    env.pop("REDIS_URL", None)
    done = subprocess.run(
        [sys.executable, "-c", _OTHER_PROCESS], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    # The other process saw this one's two failures, and this one sees the other's.
    assert json.loads(done.stdout.strip().splitlines()[-1]) == [400, 400, 429]
    assert token(client, "here9", "guess", REMOTE_ADDR="203.0.113.50").status_code == 429


@pytest.fixture
def redis_shared_cache(settings):
    """The ``shared`` cache on Redis, as with REDIS_URL set, under a prefix of this test's own."""
    prefix = f"test-sign-in-{secrets.token_hex(4)}"
    settings.CACHES = {
        **settings.CACHES,
        "shared": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": TEST_REDIS_URL,
            "KEY_PREFIX": prefix,
        },
    }
    yield caches["shared"]
    client = caches["shared"]._cache.get_client(write=True)
    for key in client.scan_iter(match=f"{prefix}:*"):
        client.delete(key)


def test_on_redis_the_budget_holds_and_says_when_it_comes_back(limits, redis_shared_cache):
    from portal.sign_in_throttle import SignInThrottled, attempt_begin

    for n in range(4):
        attempt_begin(address="192.0.2.88", username=f"redis{n}")
    with pytest.raises(SignInThrottled) as refused:
        attempt_begin(address="192.0.2.88", username="redis9")
    assert 58 <= refused.value.wait <= 60
    attempt_begin(address="192.0.2.89", username="redis9").succeeded()
    assert bursts(limits, budget=5, attempts=12) == (5, 7)


@pytest.mark.django_db(transaction=True)
def test_a_burst_of_parallel_guesses_gets_no_more_than_the_budget(limits, shared_cache):
    """Each attempt takes its place in the budget before the password is checked, atomically."""
    assert bursts(limits, budget=5, attempts=12) == (5, 7)


def bursts(limits, *, budget: int, attempts: int) -> tuple[int, int]:
    """How many of ``attempts`` simultaneous guesses from one address are admitted, and refused."""
    from portal.sign_in_throttle import SignInThrottled, attempt_begin

    limits.SIGN_IN_FAILURES_PER_ADDRESS = budget
    start = threading.Barrier(attempts)
    admitted: list[int] = []
    refused: list[int] = []

    def guess(n: int) -> None:
        try:
            start.wait()
            try:
                attempt_begin(address="192.0.2.77", username=f"burst{n}")
            except SignInThrottled:
                refused.append(n)
            else:
                admitted.append(n)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=guess, args=(n,)) for n in range(attempts)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return len(admitted), len(refused)
