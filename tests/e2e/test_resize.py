"""Resizing a real demo VM under qemu:///system: vCPUs and disk grow while it runs, more memory waits
for a restart and is there after it; less memory is live only if the guest's balloon gives it back; a
stopped stack gets everything in its definition (the disk's volume grown) and starts with it."""

from __future__ import annotations

import pytest

from provisioning.demand import GIB
from provisioning.drivers import open_driver
from provisioning.models import Host, Operation, Stack, Status
from provisioning.services import power
from provisioning.services.launch import stack_launch
from provisioning.services.resize import stack_resize
from tests.e2e.conftest import SYSTEM_URI

pytestmark = pytest.mark.e2e


def test_vcpus_and_disk_grow_live_and_memory_at_the_next_restart(
    member, project, inline_demo_catalog, system_pool, settings, django_capture_on_commit_callbacks
):
    settings.SHUTDOWN_TIMEOUT_SECONDS = 60
    pool, _path = system_pool

    def run(work):
        with django_capture_on_commit_callbacks(execute=True):
            return work()

    version = inline_demo_catalog["demo-web"].versions.newest_first().first()
    stack = run(lambda: stack_launch(user=member, project=project, name="grow", appliance_version=version))
    stack.refresh_from_db()
    assert stack.status == Status.RUNNING, stack.status_reason
    instance = stack.instances.get()
    host = Host.objects.get(name="local")
    assert host.cpus >= 2, "the machine needs two CPUs for a domain with room for a second vCPU"
    with open_driver(SYSTEM_URI) as driver:
        before = driver.domain_size(name=instance.domain_name)
    assert before.running
    assert before.vcpus == instance.vcpus == 1
    assert before.max_vcpus >= 2

    # More vCPUs and a bigger disk, while the guest runs.
    grown = run(
        lambda: stack_resize(user=member, stack=stack, tier=instance.role, vcpus=2, disk_gib=instance.disk_gib + 1)
    )
    grown.refresh_from_db()
    assert grown.status == Operation.State.SUCCEEDED, grown.detail
    assert grown.result["applied"] == "live", grown.result
    with open_driver(SYSTEM_URI) as driver:
        assert driver.domain_size(name=instance.domain_name).vcpus == 2  # the live domain's own count
        volume = driver.find_volume(pool=pool, name=instance.volume_name)
    assert volume is not None
    assert volume.capacity_bytes == (instance.disk_gib + 1) * GIB

    # More memory than the domain was started with: only a restart gives it.
    memory = instance.memory_mib + 64
    later = run(lambda: stack_resize(user=member, stack=stack, tier=instance.role, memory_mib=memory))
    later.refresh_from_db()
    assert later.status == Operation.State.SUCCEEDED, later.detail
    assert later.result["applied"] == "at_restart"
    assert later.result["restart_needed"] == [instance.name]
    instance.refresh_from_db()
    assert instance.restart_needed
    with open_driver(SYSTEM_URI) as driver:
        assert driver.domain_size(name=instance.domain_name).max_memory_mib == memory - 64

    run(lambda: power.stack_power(user=member, stack=Stack.objects.get(pk=stack.pk), action="reboot"))
    stack.refresh_from_db()
    assert stack.status == Status.RUNNING, stack.status_reason
    with open_driver(SYSTEM_URI) as driver:
        after = driver.domain_size(name=instance.domain_name)
    assert after.running
    assert after.max_memory_mib == memory
    assert after.vcpus == 2
    instance.refresh_from_db()
    assert not instance.restart_needed
    host.refresh_from_db()
    assert (host.allocated_vcpus, host.allocated_memory_mib) == (2, memory)

    # Less memory: live only if the guest's balloon driver gives it back, else at the next restart.
    shrunk = run(lambda: stack_resize(user=member, stack=stack, tier=instance.role, memory_mib=memory - 64))
    shrunk.refresh_from_db()
    assert shrunk.status == Operation.State.SUCCEEDED, shrunk.detail
    applied = shrunk.result["instances"][0]["memory_mib"]["applied"]
    with open_driver(SYSTEM_URI) as driver:
        live_memory = driver.domain_size(name=instance.domain_name).memory_mib
    assert live_memory == (memory - 64 if applied == "live" else memory), (applied, live_memory)

    # Stopped: the disk's volume grows, fewer vCPUs go into the definition, and the start uses them.
    run(lambda: power.stack_power(user=member, stack=Stack.objects.get(pk=stack.pk), action="poweroff"))
    stopped = run(
        lambda: stack_resize(user=member, stack=stack, tier=instance.role, vcpus=1, disk_gib=instance.disk_gib + 1)
    )
    stopped.refresh_from_db()
    assert stopped.status == Operation.State.SUCCEEDED, stopped.detail
    instance.refresh_from_db()
    with open_driver(SYSTEM_URI) as driver:
        volume = driver.find_volume(pool=pool, name=instance.volume_name)
        assert volume is not None
        assert volume.capacity_bytes == instance.disk_gib * GIB
    run(lambda: power.stack_power(user=member, stack=Stack.objects.get(pk=stack.pk), action="start"))
    with open_driver(SYSTEM_URI) as driver:
        started = driver.domain_size(name=instance.domain_name)
    assert started.running
    assert started.vcpus == 1
    assert started.max_memory_mib == memory - 64
    instance.refresh_from_db()
    assert not instance.restart_needed
    host.refresh_from_db()
    assert (host.allocated_vcpus, host.allocated_disk_gib) == (1, instance.disk_gib)
