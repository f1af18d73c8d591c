"""The Hosts page: sizes with their overcommit, draining never read as taking launches, and its actions."""

from __future__ import annotations

import itertools
import re
from decimal import Decimal

import pytest
from django.test import Client

from portal.models import AuditEvent
from provisioning.host_sizes import disk_sum, memory_sum, vcpu_sum
from provisioning.models import Host
from tests.factories import HostFactory

_numbers = itertools.count()


def make_host(**fields):
    """A host row with a URI of its own (URIs are unique; only refresh connects to one)."""
    return HostFactory(**{"uri": f"test:///hosts-page-{next(_numbers)}", **fields})


@pytest.fixture
def as_operator(client, operator):
    client.force_login(operator)
    return client


def _row(html: str, host: Host) -> str:
    match = re.search(rf'<tr id="host-{host.pk}">(.*?)</tr>', html, re.S)
    assert match, f"no row for {host.name}"
    return match.group(1)


# Sizes and overcommit


def test_vcpus_read_as_cpus_times_overcommit():
    host = Host(cpus=2, cpu_overcommit=Decimal("4.00"))
    assert vcpu_sum(host) == "2 CPUs \u00d7 4 overcommit = 8 vCPUs to place"
    assert vcpu_sum(Host(cpus=3, cpu_overcommit=Decimal("1.50"))) == "3 CPUs \u00d7 1.5 overcommit = 4 vCPUs to place"


def test_memory_reads_as_size_less_reserve_times_overcommit():
    host = Host(memory_mib=4096, memory_reserved_mib=512, memory_overcommit=Decimal("1.00"))
    assert memory_sum(host) == ("4096 MiB \u2212 512 MiB kept for the host, \u00d7 1 overcommit = 3584 MiB to place")


def test_disk_reads_as_pool_times_overcommit_and_an_unknown_pool_says_so():
    host = Host(pool_capacity_bytes=100 * 1024**3, disk_overcommit=Decimal("2.00"))
    assert disk_sum(host) == "100 GiB pool \u00d7 2 overcommit = 200 GiB to place"
    assert disk_sum(Host(pool_capacity_bytes=0)) == "storage pool size unknown: disk is not limited"


def test_page_shows_physical_size_and_overcommit_beside_what_is_placed(as_operator):
    host = make_host(name="hv-small", cpus=2, cpu_overcommit=4, memory_mib=8192, memory_reserved_mib=1024)
    row = _row(as_operator.get("/hosts/").content.decode(), host)
    assert "0 of 8 vCPUs" in row
    assert "2 CPUs \u00d7 4 overcommit = 8 vCPUs to place" in row
    assert "0 of 7168 MiB" in row
    assert "8192 MiB \u2212 1024 MiB kept for the host, \u00d7 1 overcommit = 7168 MiB to place" in row


# Draining hosts


def test_a_draining_host_is_never_said_to_take_launches(as_operator):
    host = make_host(name="hv-only", draining=True)
    html = as_operator.get("/hosts/").content.decode()
    row = _row(html, host)
    assert ">draining<" in row
    assert "Takes no new stacks" in row
    assert "Takes new stacks" not in row
    assert "No host takes new stacks" in html
    assert "Every host takes new stacks" not in html


def test_the_summary_counts_only_hosts_that_take_launches(as_operator):
    make_host(name="hv-a")
    make_host(name="hv-b", draining=True)
    make_host(name="hv-c", enabled=False)
    html = as_operator.get("/hosts/").content.decode()
    assert "1 of 3 hosts take new stacks." in html


def test_the_dashboard_counts_a_draining_host_as_taking_no_launches(client, operator):
    from django.utils import timezone

    make_host(name="hv-only", draining=True, last_checked_at=timezone.now())
    client.force_login(operator)
    response = client.get("/")
    html = response.content.decode()
    failing = {row.host.name: row.problems for row in response.context["dashboard"].operator.failing_hosts}
    assert failing == {"hv-only": ["draining: takes no new stacks"]}
    assert "Every host takes new stacks" not in html
    assert "Every host is enabled, healthy" not in html


# Actions: who may use them


@pytest.mark.parametrize("action", ["drain", "undrain", "refresh"])
def test_a_member_cannot_use_host_actions(client, member, action):
    host = make_host(name="hv-1", draining=action == "undrain")
    client.force_login(member)
    response = client.post(f"/hosts/{host.pk}/{action}/")
    assert response.status_code == 404
    host.refresh_from_db()
    assert host.draining is (action == "undrain")
    assert not AuditEvent.objects.exists()


@pytest.mark.parametrize("action", ["drain", "undrain", "refresh"])
def test_a_signed_out_caller_is_sent_to_sign_in(client, db, action):
    host = make_host(name="hv-1")
    response = client.post(f"/hosts/{host.pk}/{action}/")
    assert response.status_code == 302
    assert response.url.startswith("/login/")


def test_actions_answer_only_post(as_operator):
    host = make_host(name="hv-1")
    assert as_operator.get(f"/hosts/{host.pk}/drain/").status_code == 405
    host.refresh_from_db()
    assert not host.draining


def test_an_unknown_host_is_a_404(as_operator):
    assert as_operator.post("/hosts/999999/drain/").status_code == 404


def test_actions_need_the_csrf_token(operator):
    host = make_host(name="hv-1")
    client = Client(enforce_csrf_checks=True)
    client.force_login(operator)
    assert client.post(f"/hosts/{host.pk}/drain/").status_code == 403
    host.refresh_from_db()
    assert not host.draining


def test_the_page_gives_the_buttons_a_csrf_token(as_operator):
    host = make_host(name="hv-1")
    row = _row(as_operator.get("/hosts/").content.decode(), host)
    assert row.count('name="csrfmiddlewaretoken"') == 3  # refresh, drain and maintenance
    assert f'action="/hosts/{host.pk}/drain/"' in row
    assert "hx-confirm=" in row  # draining asks first


# Actions: what they do


def test_drain_from_the_page_says_so_on_the_host_row(as_operator, operator):
    host = make_host(name="hv-1")
    response = as_operator.post(f"/hosts/{host.pk}/drain/", follow=True)
    host.refresh_from_db()
    assert host.draining
    assert AuditEvent.objects.get(action="host.drain").actor == operator
    row = _row(response.content.decode(), host)
    assert "hv-1 is draining" in row
    assert f'action="/hosts/{host.pk}/undrain/"' in row


def test_drain_by_htmx_answers_the_row_alone(as_operator):
    host = make_host(name="hv-1")
    response = as_operator.post(f"/hosts/{host.pk}/drain/", headers={"HX-Request": "true"})
    html = response.content.decode()
    assert response.status_code == 200
    assert html.strip().startswith(f'<tr id="host-{host.pk}">')
    assert "<html" not in html
    assert "hv-1 is draining" in html
    assert "Takes no new stacks" in html


def test_undrain_from_the_page(as_operator):
    host = make_host(name="hv-1", draining=True)
    response = as_operator.post(f"/hosts/{host.pk}/undrain/", headers={"HX-Request": "true"})
    host.refresh_from_db()
    assert not host.draining
    assert "hv-1 takes new stacks again." in response.content.decode()


def test_refresh_reads_the_host_again(as_operator, test_host):
    Host.objects.filter(pk=test_host.pk).update(cpus=1, healthy=False, health_error="old")
    response = as_operator.post(f"/hosts/{test_host.pk}/refresh/", headers={"HX-Request": "true"})
    test_host.refresh_from_db()
    assert test_host.cpus > 1
    assert "test-host was read again" in response.content.decode()


def test_refresh_of_an_unreachable_host_says_why_on_its_row(as_operator):
    host = make_host(name="hv-gone", uri="test:///no/such/node.xml")
    response = as_operator.post(f"/hosts/{host.pk}/refresh/", follow=True)
    host.refresh_from_db()
    assert not host.healthy
    row = _row(response.content.decode(), host)
    assert "hv-gone was read again: unhealthy" in row
