"""LibvirtDriver's resize calls against libvirt's test driver (its own ``test:///<tmp>/node.xml`` host).

The test driver changes vCPUs and memory of a running guest at once (a balloon that always gets
there) and cannot grow disks: the driver says so (``Unsupported``) instead of pretending.
"""

from __future__ import annotations

import pytest

from provisioning.drivers.base import InvalidRequest, NotFound, Unsupported
from provisioning.drivers.libvirt_driver import LibvirtDriver
from tests.provisioning.libvirt_doubles import NODE_POOL, make_spec, upload

NAME = "portal-i9"
VOLUME = "portal-i9.qcow2"
GIB = 1024**3


@pytest.fixture
def running(driver: LibvirtDriver, image) -> str:
    overlay = driver.create_overlay(pool=NODE_POOL, name=VOLUME, backing=upload(driver, image), capacity_bytes=GIB)
    driver.define_and_start(make_spec(overlay.path, max_vcpus=4))
    return NAME


def test_the_size_of_a_domain_defined_with_room_for_more_vcpus(driver: LibvirtDriver, running: str) -> None:
    size = driver.domain_size(name=running)
    assert (size.running, size.vcpus, size.max_vcpus, size.memory_mib, size.max_memory_mib) == (True, 1, 4, 128, 128)


def test_vcpus_change_live_within_the_room_and_in_the_definition(driver: LibvirtDriver, running: str) -> None:
    driver.set_vcpus(name=running, vcpus=3, maximum=4, live=True)
    assert driver.domain_size(name=running).vcpus == 3
    driver.power_off_domain(name=running)
    defined = driver.domain_size(name=running)
    assert (defined.running, defined.vcpus, defined.max_vcpus) == (False, 3, 4)


def test_vcpus_beyond_the_room_are_refused_live_and_go_into_the_definition(driver: LibvirtDriver, running: str) -> None:
    with pytest.raises(InvalidRequest):
        driver.set_vcpus(name=running, vcpus=6, maximum=6, live=True)
    assert driver.domain_size(name=running).vcpus == 1
    driver.set_vcpus(name=running, vcpus=6, maximum=8, live=False)
    assert driver.domain_size(name=running).vcpus == 1  # the running guest is as it was
    driver.power_off_domain(name=running)
    defined = driver.domain_size(name=running)
    assert (defined.vcpus, defined.max_vcpus) == (6, 8)
    with pytest.raises(InvalidRequest, match="room for only 2"):
        driver.set_vcpus(name=running, vcpus=3, maximum=2, live=False)


def test_memory_through_the_balloon_and_into_the_definition(driver: LibvirtDriver, running: str) -> None:
    assert driver.set_memory(name=running, memory_mib=96, live=True, wait_seconds=1)
    assert driver.domain_size(name=running).memory_mib == 96
    assert not driver.set_memory(name=running, memory_mib=512, live=False, wait_seconds=1)
    assert driver.domain_size(name=running).max_memory_mib == 128  # live: unchanged until a restart
    driver.power_off_domain(name=running)
    defined = driver.domain_size(name=running)
    assert (defined.memory_mib, defined.max_memory_mib) == (512, 512)


def test_disks_only_grow_and_this_host_cannot_grow_them(driver: LibvirtDriver, running: str) -> None:
    grow = {"name": running, "device": "vda", "pool": NODE_POOL, "volume": VOLUME}
    with pytest.raises(InvalidRequest, match="disks only grow"):
        driver.grow_disk(**grow, size_bytes=GIB // 2)
    with pytest.raises(Unsupported):
        driver.grow_disk(**grow, size_bytes=2 * GIB)
    driver.power_off_domain(name=running)
    with pytest.raises(Unsupported):
        driver.grow_disk(**grow, size_bytes=2 * GIB)


def test_a_missing_domain_is_not_found(driver: LibvirtDriver) -> None:
    with pytest.raises(NotFound, match="domain 'ghost' not found"):
        driver.domain_size(name="ghost")
    with pytest.raises(NotFound):
        driver.set_vcpus(name="ghost", vcpus=2, maximum=2, live=False)
    with pytest.raises(NotFound):
        driver.set_memory(name="ghost", memory_mib=256, live=False, wait_seconds=0)
