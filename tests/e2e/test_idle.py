"""Idle stacks on real VMs (marked e2e): the driver's samples of real guests, and the idle sweep
judging real stacks from them.

The sweep is driven through ``now=``: a minute of the sweep passes in a moment, while each sample is
read from the real guests. CPU use is measured against those minutes, so a guest's real CPU time
is far under any threshold here; CPU judgment is covered by tests/provisioning/test_idle_sweep.py.
Everything carries the prefix ``idle-<hex>`` (the deployment, the storage pool) and is removed.
"""

from __future__ import annotations

import secrets
import socket
from collections.abc import Iterator
from datetime import datetime, timedelta
from urllib.parse import urlsplit

import pytest
from django.utils import timezone

from notices.models import Event, Notification
from provisioning.drivers import open_driver
from provisioning.drivers.base import DomainActivity
from provisioning.models import Stack, StackActivity, Status
from provisioning.services import idle
from tests.e2e.conftest import SYSTEM_URI, remove_pool
from tests.e2e.demo_web import Visitors
from tests.e2e.records import web_url
from tests.polling import wait_for

pytestmark = pytest.mark.e2e


@pytest.fixture(autouse=True)
def idle_names(settings) -> None:
    """Domains and networks named ``idle-<hex>-...``; the e2e conftest removes them by this prefix."""
    settings.DEPLOYMENT_NAME = f"idle-{secrets.token_hex(3)}"


@pytest.fixture
def system_pool() -> Iterator[tuple[str, str]]:
    """The stacks' storage pool, named like everything else of these tests and deleted afterwards."""
    name = f"idle-{secrets.token_hex(4)}"
    yield name, f"/var/lib/libvirt/images/{name}"
    with open_driver(SYSTEM_URI) as driver:
        remove_pool(driver, name)


def sample(stack: Stack) -> DomainActivity:
    domain = stack.instances.get().domain_name
    with open_driver(SYSTEM_URI) as driver:
        return driver.domain_activity(names=[domain])[domain]


def endpoint(stack: Stack) -> tuple[str, int]:
    parts = urlsplit(web_url(stack))
    assert parts.hostname in ("localhost", "127.0.0.1")
    return "127.0.0.1", int(parts.port or 80)


def test_the_driver_samples_a_real_guests_cpu_and_connections(launch_demo_web):
    stack = launch_demo_web("sampled")
    first = sample(stack)
    assert first.running
    assert first.cpu_time_ns > 0
    assert first.connections is not None  # QEMU's monitor lists the user-mode network's connections

    # The page fetches that waited for the boot are forgotten within seconds.
    wait_for(lambda: not _busy(sample(stack)), timeout=30, what="no connection left from the boot")
    # A client holds a connection open: it is listed, under a name.
    with socket.create_connection(endpoint(stack), timeout=10):
        seen = wait_for(lambda: sample(stack).connections, timeout=10, what="the held connection listed")
        assert len(seen) == 1
    # The client closed it first (gracefully), so QEMU keeps it a few seconds as closed (TIME_WAIT):
    # counted, not named, as its socket's number is free to be used again.
    closed = wait_for(lambda: sample(stack).recently_closed, timeout=10, what="the closed connection counted")
    assert closed == 1
    assert sample(stack).connections == frozenset()
    assert sample(stack).cpu_time_ns > first.cpu_time_ns


def test_an_idle_stack_is_warned_then_shelved_and_a_visited_one_is_not(
    project, member, launch_demo_web, settings, step
):
    project.idle_after_seconds = 120
    project.save()
    settings.IDLE_WARNING_SECONDS = 60
    settings.IDLE_CPU_PERCENT = 100  # only connections (and consoles) can keep these stacks busy
    quiet, visited = launch_demo_web("quiet"), launch_demo_web("visited")

    def sweep(now: datetime) -> int:
        return step(lambda: idle.idle_sweep(now=now))

    # What the boot left in QEMU's user-mode network is forgotten within seconds: the quiet stack starts quiet.
    wait_for(lambda: not _busy(sample(quiet)), timeout=30, what="no connection left from the boot")
    t0 = timezone.now()
    warned_at = shelved_at = None
    seen: list[str] = []  # what kept the quiet stack busy at each minute, for the failure message
    with Visitors(web_url(visited)) as visitors:
        visitors.another_visit()
        # Minute by minute: on a quiet machine the warning comes at minute 1 and the shelve at minute 2;
        # a sample that a loaded host could not answer, or a stray connection, only moves both later.
        for minute in range(8):
            now = t0 + timedelta(minutes=minute)
            sweep(now)
            record = StackActivity.objects.filter(stack=quiet).first()
            seen.append(f"{minute}: {record.last_activity if record else 'no record'}")
            if warned_at is None and Notification.objects.filter(stack=quiet, event=Event.STACK_IDLE).exists():
                warned_at = now
                warning = Notification.objects.get(stack=quiet, event=Event.STACK_IDLE)
                assert warning.moment == now + timedelta(minutes=1)  # when it will be shelved
            quiet.refresh_from_db()
            if quiet.status == Status.SHELVED:
                shelved_at = now
                break
            if minute > 0:
                busy = StackActivity.objects.get(stack=visited)
                assert (busy.last_activity, busy.last_active_at) == ("connection", now)
            visitors.another_visit()  # before the next sample
    assert warned_at is not None, seen
    assert shelved_at == warned_at + timedelta(minutes=1), seen
    assert warned_at <= t0 + timedelta(minutes=2), seen  # at most one lost sample
    assert quiet.shelved_with_memory
    assert not Notification.objects.filter(stack=visited, event=Event.STACK_IDLE).exists()
    visited.refresh_from_db()
    assert visited.status == Status.RUNNING
    assert not Notification.objects.filter(stack=visited, event=Event.STACK_IDLE).exists()

    # The visitors gone (and their last connections forgotten by QEMU), the visited stack goes idle too.
    wait_for(lambda: not _busy(sample(visited)), timeout=30, what="no connection left")
    sweep(t0 + timedelta(minutes=5))
    assert Notification.objects.filter(stack=visited, event=Event.STACK_IDLE, moment=t0 + timedelta(minutes=6)).exists()


def _busy(seen: DomainActivity) -> bool:
    return bool(seen.connections or seen.recently_closed)
