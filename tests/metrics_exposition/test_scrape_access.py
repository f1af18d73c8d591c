"""Who may read ``/metrics``, tried from the attacker's side: nobody outside gets a single figure."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from metrics.scrape_access import allowed_networks
from tests.metrics_exposition.conftest import instance_sample

pytestmark = pytest.mark.django_db

OUTSIDE = "203.0.113.9"
TOKEN = "s3cret-scrape-token-0123456789"


@pytest.fixture(autouse=True)
def figures(guest, settings):
    """A guest with figures, so a leak would show; only the office network may scrape without a token."""
    settings.METRICS_ALLOWED_NETWORKS = ["10.9.0.0/24", "2001:db8:9::/48"]
    settings.METRICS_TOKEN = TOKEN
    settings.TRUSTED_PROXIES = 0
    instance_sample(guest("secret-stack"))


def get(client, *, address: str = OUTSIDE, **headers):
    return client.get("/metrics", REMOTE_ADDR=address, **headers)


def assert_refused(response, status: int) -> None:
    assert response.status_code == status
    body = response.content.decode()
    assert "portal_" not in body
    assert "secret-stack" not in body


def test_an_allowed_network_needs_no_token(client):
    assert get(client, address="10.9.0.17").status_code == 200
    assert get(client, address="2001:db8:9::5").status_code == 200
    assert get(client, address="::ffff:10.9.0.17").status_code == 200  # IPv4 seen through a dual-stack socket


def test_the_right_token_from_anywhere(client):
    response = get(client, HTTP_AUTHORIZATION=f"Bearer {TOKEN}")

    assert response.status_code == 200
    assert "secret-stack" in response.content.decode()


def test_outside_without_a_token_is_challenged(client):
    response = get(client)

    assert_refused(response, 401)
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "header",
    [
        "Bearer wrong",
        f"Bearer {TOKEN}x",
        f"Bearer {TOKEN[:-1]}",
        f"Basic {TOKEN}",
        TOKEN,
        "Bearer ",
        "Bearer",
    ],
)
def test_a_wrong_or_malformed_token_is_refused(client, header):
    assert_refused(get(client, HTTP_AUTHORIZATION=header), 401)


def test_an_empty_token_setting_turns_token_access_off(client, settings):
    settings.METRICS_TOKEN = ""

    for header in ("Bearer ", "Bearer", "Bearer  ", f"Bearer {TOKEN}"):
        assert_refused(get(client, HTTP_AUTHORIZATION=header), 403)
    assert_refused(get(client), 403)
    assert get(client, address="10.9.0.1").status_code == 200


def test_a_spoofed_forwarded_for_is_not_believed_without_proxies(client):
    assert_refused(get(client, HTTP_X_FORWARDED_FOR="10.9.0.17"), 401)


def test_a_spoofed_entry_left_of_our_proxy_is_not_believed(client, settings):
    """Behind one proxy, the client is the entry our proxy appended; what the client wrote before it is not."""
    settings.TRUSTED_PROXIES = 1
    proxy = "192.0.2.1"

    assert_refused(get(client, address=proxy, HTTP_X_FORWARDED_FOR=f"10.9.0.17, {OUTSIDE}"), 401)
    assert_refused(get(client, address=proxy), 401)  # no header: the proxy's own address, not allowed
    assert get(client, address=proxy, HTTP_X_FORWARDED_FOR=f"{OUTSIDE}, 10.9.0.17").status_code == 200


def test_being_signed_in_gives_nothing(client, operator, member):
    for user in (operator, member):
        client.force_login(user)
        assert_refused(get(client), 401)


def test_loopback_is_not_special_once_left_out(client):
    assert_refused(get(client, address="127.0.0.1"), 401)


def test_only_reads(client):
    response = client.post("/metrics", REMOTE_ADDR="10.9.0.17")

    assert response.status_code == 405


def test_a_bad_network_setting_fails_loudly(settings):
    settings.METRICS_ALLOWED_NETWORKS = ["10.9.0.0/24", "office"]

    with pytest.raises(ImproperlyConfigured, match="office"):
        allowed_networks()
