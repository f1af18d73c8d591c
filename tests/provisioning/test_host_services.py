"""Registering, changing and refreshing hosts: always through the driver, never losing an operator's edit."""

from __future__ import annotations

import re

import pytest

from portal import errors
from portal.models import AuditEvent
from provisioning.models import Host
from provisioning.services import hosts
from tests.factories import HostFactory


def test_only_operators_register_hosts(member):
    with pytest.raises(errors.PermissionDenied, match="only operators"):
        hosts.host_register(user=member, name="t1", uri="test:///default")
    assert not Host.objects.exists()


def test_a_field_hosts_do_not_have_is_refused(operator):
    with pytest.raises(errors.Invalid, match="no settable field healthy"):
        hosts.host_register(user=operator, name="t1", uri="test:///default", healthy=True)


def test_an_invalid_row_is_refused_before_connecting(operator):
    with pytest.raises(errors.Invalid, match="public_address") as refused:
        hosts.host_register(user=operator, name="t1", uri="test:///default", public_address="not an address")
    assert list(refused.value.fields) == ["public_address"]
    assert not Host.objects.exists()


def test_refresh_keeps_an_operators_edit_made_during_the_read(operator):
    host = hosts.host_register(
        user=operator, name="t1", uri="test:///default", storage_pool="default-pool", storage_pool_path="/default-pool"
    )
    stale = Host.objects.get(pk=host.pk)  # what the refresh task loaded before the slow read
    Host.objects.filter(pk=host.pk).update(enabled=False, memory_reserved_mib=2048, healthy=False)
    hosts.host_refresh(host=stale)
    saved = Host.objects.get(pk=host.pk)
    assert (saved.enabled, saved.memory_reserved_mib) == (False, 2048)  # the operator's edit
    assert saved.healthy is True  # what the refresh observed


def test_refresh_of_an_unreachable_host_marks_it_unhealthy_and_keeps_it(db):
    host = HostFactory(name="far", uri="qemu+tcp://127.0.0.1:1/system", healthy=True, cpus=8)
    hosts.host_refresh(host=host)
    saved = Host.objects.get(pk=host.pk)
    assert saved.healthy is False
    assert "127.0.0.1:1" in saved.health_error
    assert saved.cpus == 8  # the last known capacity stays


def test_update_reconnects_when_the_uri_changes_and_refuses_a_bad_one(operator):
    host = hosts.host_register(
        user=operator, name="t1", uri="test:///default", storage_pool="default-pool", storage_pool_path="/default-pool"
    )
    with pytest.raises(errors.Invalid, match=re.escape("cannot use host qemu+tcp://127.0.0.1:1/system")) as refused:
        hosts.host_update(user=operator, host=host, uri="qemu+tcp://127.0.0.1:1/system")
    assert list(refused.value.fields) == ["uri"]
    assert Host.objects.get(pk=host.pk).uri == "test:///default"

    hosts.host_update(user=operator, host=Host.objects.get(pk=host.pk), enabled=False, memory_reserved_mib=1024)
    saved = Host.objects.get(pk=host.pk)
    assert (saved.enabled, saved.memory_reserved_mib) == (False, 1024)
    assert AuditEvent.objects.get(action="host.update").detail == {"fields": ["enabled", "memory_reserved_mib"]}
