"""The sampler on real guests under qemu:///system (marked e2e; run under the e2e lock): a guest kept
busy serving its page shows clearly more CPU than an idle one, and QEMU's figures (memory, disk) are
read. Everything carries the e2e prefix and is removed by the e2e fixtures."""

from __future__ import annotations

import threading
import time

import pytest
from django.utils import timezone

from metrics.models import InstanceSample
from metrics.sampler import take_samples
from provisioning.models import Stack, Status
from provisioning.services.launch import stack_launch
from tests.e2e.conftest import demo_feed, inline_demo_catalog, own_names_and_ports, system_pool  # noqa: F401
from tests.e2e.records import web_url
from tests.polling import page_text, wait_for

pytestmark = pytest.mark.e2e

BUSY_SECONDS = 10


@pytest.fixture
def launch(member, project, inline_demo_catalog, step):  # noqa: F811
    """``launch(name)``: a one-tier demo-web stack, running and serving its page."""
    version = inline_demo_catalog["demo-web"].versions.newest_first().first()

    def run(name: str) -> Stack:
        stack = step(
            lambda: stack_launch(user=member, project=project, name=name, appliance_version=version, lease_seconds=900)
        )
        stack.refresh_from_db()
        assert stack.status == Status.RUNNING, stack.status_reason
        wait_for(lambda: page_text(web_url(stack)), timeout=120, interval=0.5, what=f"{name}'s page")
        return stack

    return run


def _fetch_until(url: str, stop: threading.Event) -> None:
    while not stop.is_set():
        page_text(url)


def test_a_busy_guest_shows_more_cpu_than_an_idle_one(launch):
    idle, busy = launch("idle"), launch("busy")
    take_samples(now=timezone.now())
    stop = threading.Event()
    clients = [threading.Thread(target=_fetch_until, args=(web_url(busy), stop), daemon=True) for _ in range(4)]
    for client in clients:
        client.start()
    try:
        time.sleep(BUSY_SECONDS)
        assert take_samples(now=timezone.now()) == 2
    finally:
        stop.set()
        for client in clients:
            client.join(timeout=10)
    idle_sample = InstanceSample.objects.filter(instance__stack=idle).latest("sampled_at")
    busy_sample = InstanceSample.objects.filter(instance__stack=busy).latest("sampled_at")
    assert idle_sample.cpu_percent is not None
    assert busy_sample.cpu_percent is not None
    assert busy_sample.cpu_percent > idle_sample.cpu_percent + 10, (busy_sample.cpu_percent, idle_sample.cpu_percent)
    # QEMU's own figures are there: what the guest holds, what it read from its disk while booting.
    assert 0 < busy_sample.memory_used_mib <= busy_sample.memory_mib
    assert busy_sample.cpu_time_ns > 0
    assert busy_sample.disk_read_bytes > 0
    assert busy_sample.disk_read_bytes_sec is not None
