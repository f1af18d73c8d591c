"""The sampler on real guests under qemu:///system (marked e2e; run under the e2e lock): a guest kept
busy serving its page shows clearly more CPU than an idle one, and QEMU's figures (memory, disk) are
read. Everything carries the e2e prefix and is removed by the e2e fixtures."""

from __future__ import annotations

import time

import pytest
from django.utils import timezone

from metrics.models import InstanceSample
from metrics.sampler import take_samples
from tests.e2e.conftest import (  # noqa: F401 (fixtures)
    demo_feed,
    inline_demo_catalog,
    launch_demo_web,
    own_names_and_ports,
    system_pool,
)
from tests.e2e.demo_web import Visitors
from tests.e2e.records import web_url

pytestmark = pytest.mark.e2e

BUSY_SECONDS = 10


def test_a_busy_guest_shows_more_cpu_than_an_idle_one(launch_demo_web):  # noqa: F811
    idle, busy = launch_demo_web("idle"), launch_demo_web("busy")
    take_samples(now=timezone.now())
    with Visitors(web_url(busy), clients=4):
        time.sleep(BUSY_SECONDS)
        assert take_samples(now=timezone.now()) == 2
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
