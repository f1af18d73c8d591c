"""Rows for the exposition tests: a host, stacks with instances, and samples written as the sampler would."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from metrics.models import HostSample, InstanceSample
from portal.models import Project
from provisioning.models import Host, Instance, Stack, Status
from tests.factories import HostFactory

MIB = 1024 * 1024


@pytest.fixture
def host(db) -> Host:
    return HostFactory(
        name="kvm-1", cpus=8, memory_mib=32768, memory_reserved_mib=512, allocated_vcpus=6, allocated_memory_mib=4096
    )


@pytest.fixture
def guest(project, host):
    """``guest(stack_name, role, status=RUNNING)``: a one-instance stack on ``host``."""

    def make(stack_name: str, role: str = "web", *, status: str = Status.RUNNING, in_project: Project | None = None):
        stack = Stack.objects.create(
            project=in_project or project,
            name=stack_name,
            status=status,
            expires_at=timezone.now() + timedelta(hours=1),
        )
        return Instance.objects.create(
            stack=stack,
            name=f"{stack_name}-{role}",
            role=role,
            host=host,
            vcpus=2,
            memory_mib=1024,
            status=status,
            domain_name=f"test-i{stack.pk}-{role}",
        )

    return make


def instance_sample(instance: Instance, *, at: datetime | None = None, cpu_s: float = 10.0, **fields) -> InstanceSample:
    values = {
        "vcpus": instance.vcpus,
        "memory_mib": instance.memory_mib,
        "memory_used_mib": 300,
        "disk_read_bytes": 1000,
        "disk_write_bytes": 2000,
        "net_rx_bytes": 3000,
        "net_tx_bytes": 4000,
        **fields,
    }
    return InstanceSample.objects.create(
        instance=instance,
        host=instance.host,
        sampled_at=at or timezone.now(),
        cpu_time_ns=int(cpu_s * 1e9),
        **values,
    )


def host_sample(host: Host, *, at: datetime | None = None, busy_s: float = 100.0) -> HostSample:
    return HostSample.objects.create(
        host=host,
        sampled_at=at or timezone.now(),
        cpus=host.cpus,
        cpu_busy_ns=int(busy_s * 1e9),
        cpu_total_ns=int(busy_s * 4e9),
        memory_mib=host.memory_mib,
        memory_free_mib=20000,
        domains=2,
        load_1m=0.5,
    )
