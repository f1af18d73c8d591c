"""Fixtures of the usage pages' tests: a three-tier stack on a host (no VMs) and its samples."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client
from django.utils import timezone

from metrics.models import HostSample, InstanceSample
from provisioning.models import Host, Instance, Stack, Status
from tests.factories import ApplianceVersionFactory, HostFactory

TIERS = (("web", 2, 2048, 10), ("app", 2, 4096, 10), ("db", 4, 8192, 20))


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def a_host(name: str = "hv-1") -> Host:
    return HostFactory(name=name, uri=f"test:///{name}", cpus=8, memory_mib=32768)


def three_tier_stack(*, project, member, host: Host) -> Stack:
    """A running stack of three tiers (web, app, db), one instance each, on ``host``."""
    version = ApplianceVersionFactory()
    made = Stack.objects.create(
        project=project,
        name="shop",
        created_by=member,
        status=Status.RUNNING,
        expires_at=datetime(2100, 1, 1, tzinfo=UTC),
    )
    for role, vcpus, memory_mib, disk_gib in TIERS:
        Instance.objects.create(
            stack=made,
            name=f"shop-{role}",
            role=role,
            appliance_version=version,
            host=host,
            vcpus=vcpus,
            memory_mib=memory_mib,
            disk_gib=disk_gib,
            status=Status.RUNNING,
        )
    return made


@pytest.fixture
def host(db):
    return a_host()


@pytest.fixture
def stack(project, member, host):
    return three_tier_stack(project=project, member=member, host=host)


def instance_of(stack: Stack, role: str) -> Instance:
    return stack.instances.get(role=role)


@pytest.fixture
def sample():
    """``sample(instance, ago=timedelta, cpu=, memory_used=, disk_read=, ...)``: one sample, ``ago`` before now."""

    def make(instance: Instance, *, ago: timedelta, **figures) -> InstanceSample:
        return InstanceSample.objects.create(**_instance_fields(instance, timezone.now() - ago, **figures))

    return make


def _instance_fields(instance: Instance, at: datetime, **figures) -> dict:
    return {
        "instance": instance,
        "host": instance.host,
        "sampled_at": at,
        "vcpus": instance.vcpus,
        "memory_mib": instance.memory_mib,
        "cpu_percent": figures.get("cpu"),
        "memory_used_mib": figures.get("memory_used"),
        "disk_read_bytes_sec": figures.get("disk_read"),
        "disk_write_bytes_sec": figures.get("disk_write"),
        "net_rx_bytes_sec": figures.get("net_rx"),
        "net_tx_bytes_sec": figures.get("net_tx"),
    }


def a_day_of_samples(instance: Instance, *, cpu: float, memory_used: int | None, every: int = 60, hours: float = 24):
    """Samples ``every`` seconds for ``hours`` up to now, at a steady ``cpu`` %, written in one insert."""
    now = timezone.now()
    count = int(hours * 3600 / every)
    rows = [
        InstanceSample(
            **_instance_fields(instance, now - timedelta(seconds=every * n), cpu=cpu, memory_used=memory_used)
        )
        for n in range(count)
    ]
    InstanceSample.objects.bulk_create(rows, batch_size=2000)


def host_samples(host, *, hours: float, every: int = 60, cpu: float = 25.0, free_mib: int = 16384) -> None:
    now = timezone.now()
    rows = [
        HostSample(
            host=host,
            sampled_at=now - timedelta(seconds=every * n),
            cpus=host.cpus,
            cpu_percent=cpu,
            memory_mib=host.memory_mib,
            memory_free_mib=free_mib,
        )
        for n in range(int(hours * 3600 / every))
    ]
    HostSample.objects.bulk_create(rows)
