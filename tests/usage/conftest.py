"""Fixtures of the usage tests: stacks with instances in chosen statuses (no VMs), at fixed moments."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from provisioning.models import Instance, Stack, StackSnapshot, Status
from tests.factories import ApplianceVersionFactory

GIB = 1024**3


def at(text: str) -> datetime:
    """A moment in UTC from ``YYYY-MM-DD HH:MM``."""
    return datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=UTC)


@pytest.fixture
def prices(settings):
    """Round prices, so expected costs are exact: 1 per vCPU-hour, 0.5 per GiB-hour of memory,
    0.01 per GiB-hour of disk, 0.001 per GiB-hour of snapshot."""
    settings.PRICE_VCPU_HOUR = "1"
    settings.PRICE_MEMORY_GIB_HOUR = "0.5"
    settings.PRICE_DISK_GIB_HOUR = "0.01"
    settings.PRICE_SNAPSHOT_GIB_HOUR = "0.001"
    settings.CURRENCY = "EUR"
    return settings


@pytest.fixture
def version(db):
    return ApplianceVersionFactory()


@pytest.fixture
def make_stack(project, member, version):
    """``make_stack(name, created, tiers=[(vcpus, memory_mib, disk_gib, status), ...], project=, user=)``."""

    def make(
        name: str = "web",
        *,
        created: datetime,
        tiers: list[tuple[int, int, int, str]] | None = None,
        **fields,
    ) -> Stack:
        stack = Stack.objects.create(
            project=fields.pop("project", project),
            name=name,
            created_by=fields.pop("user", member),
            status=fields.pop("status", Status.RUNNING),
            expires_at=datetime(2100, 1, 1, tzinfo=UTC),
        )
        Stack.objects.filter(pk=stack.pk).update(created_at=created)
        for n, (vcpus, memory_mib, disk_gib, status) in enumerate(tiers or [(1, 1024, 10, Status.RUNNING)]):
            Instance.objects.create(
                stack=stack,
                name=f"{name}-{n}",
                role=f"tier{n}",
                appliance_version=version,
                vcpus=vcpus,
                memory_mib=memory_mib,
                disk_gib=disk_gib,
                status=status,
            )
        stack.refresh_from_db()
        return stack

    return make


@pytest.fixture
def snapshot():
    def make(stack: Stack, *, size_bytes: int, name: str = "snap") -> StackSnapshot:
        return StackSnapshot.objects.create(
            stack=stack, name=name, libvirt_name=f"{name}-x", size_bytes=size_bytes, status=StackSnapshot.State.READY
        )

    return make
