"""Published endpoints live on a host name of their own, never one the portal answers to."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.http.request import validate_host

from portal import errors
from portal.env import env_endpoint_host
from provisioning.endpoints import bind_address, endpoint_url
from provisioning.services.hosts import host_update
from provisioning.services.launch import stack_launch
from tests.factories import HostFactory


def test_a_stacks_endpoint_is_not_on_a_host_the_portal_answers_to(
    settings, api, member, project, test_host, ready_version
):
    stack = stack_launch(user=member, project=project, name="web", appliance_version=ready_version, lease_seconds=600)
    (endpoint,) = api(member).get(f"/api/v1/stacks/{stack.pk}/").json()["endpoints"]
    name = urlsplit(endpoint["url"]).hostname
    # A page there could otherwise read the portal's csrftoken cookie and set cookies for it.
    assert not validate_host(name, settings.ALLOWED_HOSTS), endpoint["url"]
    assert name == settings.ENDPOINT_HOST == "localhost"


def test_an_address_as_endpoint_host_is_also_where_the_ports_listen(db, settings):
    host = HostFactory(public_address="127.0.0.1")
    settings.ENDPOINT_HOST = "127.0.0.2"
    assert (bind_address(host), endpoint_url(host=host, host_port=20001, guest_port=80)) == (
        "127.0.0.2",
        "http://127.0.0.2:20001/",
    )
    settings.ENDPOINT_HOST = "apps.example.net"  # a name: the ports listen on the host's public address
    assert (bind_address(host), endpoint_url(host=host, host_port=20001, guest_port=443)) == (
        "127.0.0.1",
        "https://apps.example.net:20001/",
    )


def test_without_an_endpoint_host_each_host_publishes_on_its_public_address(db, settings):
    settings.ENDPOINT_HOST = ""
    second = HostFactory(public_address="192.0.2.7")
    assert (bind_address(second), endpoint_url(host=second, host_port=20001, guest_port=80)) == (
        "192.0.2.7",
        "http://192.0.2.7:20001/",
    )


@pytest.mark.parametrize(
    ("value", "portal_hosts"),
    [
        ("127.0.0.1", ["127.0.0.1"]),
        ("LOCALHOST", ["127.0.0.1", "localhost"]),
        ("apps.example.org", [".example.org"]),
        ("anything.example", ["*"]),
    ],
)
def test_an_endpoint_host_the_portal_answers_to_stops_the_start(monkeypatch, value, portal_hosts):
    monkeypatch.setenv("PORTAL_ENDPOINT_HOST", value)
    with pytest.raises(ImproperlyConfigured, match="a host the portal answers to"):
        env_endpoint_host("PORTAL_ENDPOINT_HOST", "localhost", portal_hosts=portal_hosts)


@pytest.mark.parametrize("value", ["http://apps.example.org", "apps.example.org:8080", "a b", "-bad.example", "[::1]"])
def test_an_endpoint_host_must_be_a_bare_name_or_address(monkeypatch, value):
    monkeypatch.setenv("PORTAL_ENDPOINT_HOST", value)
    with pytest.raises(ImproperlyConfigured, match="not a host name or IPv4 address"):
        env_endpoint_host("PORTAL_ENDPOINT_HOST", "localhost", portal_hosts=["127.0.0.1"])


def test_by_default_endpoints_and_the_portal_have_different_host_names(settings):
    assert settings.ENDPOINT_HOST == "localhost"
    assert not validate_host(settings.ENDPOINT_HOST, settings.ALLOWED_HOSTS)


def test_without_an_endpoint_host_a_host_cannot_publish_on_the_portals_own_address(settings, operator, test_host):
    test_host.public_address = "192.0.2.7"
    test_host.save()
    settings.ENDPOINT_HOST = ""
    with pytest.raises(errors.Invalid, match="a host the portal itself answers to") as refused:
        host_update(user=operator, host=test_host, public_address="127.0.0.1")
    assert refused.value.fields.keys() == {"public_address"}
    settings.ENDPOINT_HOST = "localhost"  # endpoints are named apart: the address itself may be the portal's
    assert host_update(user=operator, host=test_host, public_address="127.0.0.1").public_address == "127.0.0.1"
