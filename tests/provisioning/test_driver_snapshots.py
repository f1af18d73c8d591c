"""LibvirtDriver's internal snapshots against libvirt's test driver.

The test driver keeps snapshots in memory and follows the same rules for their state as QEMU's
(a running guest's snapshot holds its memory; read-only disks are left out). What QEMU itself
allows and refuses is checked with real guests in tests/e2e/test_driver_life.py.
"""

from __future__ import annotations

import secrets
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable

import pytest

from provisioning.drivers.base import InvalidRequest, NotFound, Unsupported
from provisioning.drivers.domain_xml import SNAPSHOT_DISKS_ONLY
from provisioning.drivers.libvirt_driver import LibvirtDriver
from tests.provisioning.libvirt_doubles import Opener, make_spec

NAME = "portal-i9"
DISK = "/portal-images/portal-i9.qcow2"
CONFIG_DRIVE = "/portal-images/portal-i9-config.iso"

SNAPSHOT_CALLS: dict[str, Callable[[LibvirtDriver, str, str], object]] = {
    "create_snapshot": lambda driver, domain, name: driver.create_snapshot(domain=domain, name=name, memory=True),
    "revert_snapshot": lambda driver, domain, name: driver.revert_snapshot(domain=domain, name=name),
    "delete_snapshot": lambda driver, domain, name: driver.delete_snapshot(domain=domain, name=name),
    "list_snapshots": lambda driver, domain, _name: driver.list_snapshots(domain=domain),
}


@pytest.fixture
def running(driver: LibvirtDriver) -> str:
    driver.define_and_start(make_spec(DISK, config_drive_path=CONFIG_DRIVE))
    return NAME


def state(driver: LibvirtDriver) -> str:
    return driver.domain_info(name=NAME).state


def stored_snapshot(opener: Opener, name: str) -> ET.Element:
    xml = opener.conn.lookupByName(NAME).snapshotLookupByName(name, 0).getXMLDesc(0)
    return ET.fromstring(xml)  # noqa: S314 - XML from libvirt


# --- bad input ----------------------------------------------------------------------------------


@pytest.mark.parametrize("call", SNAPSHOT_CALLS.values(), ids=SNAPSHOT_CALLS.keys())
def test_every_call_on_a_missing_domain_is_not_found(driver: LibvirtDriver, call: Callable[..., object]) -> None:
    with pytest.raises(NotFound, match="domain 'ghost' not found"):
        call(driver, "ghost", "s1")


NAMED_CALLS = {key: call for key, call in SNAPSHOT_CALLS.items() if key != "list_snapshots"}


@pytest.mark.parametrize("name", ["", "../s1", "a/b", "<s1>", "s1\n", "x" * 64, "-s1"])
@pytest.mark.parametrize("call", NAMED_CALLS.values(), ids=NAMED_CALLS.keys())
def test_unsafe_snapshot_names_are_refused(
    driver: LibvirtDriver, running: str, call: Callable[..., object], name: str
) -> None:
    with pytest.raises(InvalidRequest, match="invalid snapshot name"):
        call(driver, running, name)

    assert driver.list_snapshots(domain=running) == []
    assert state(driver) == "running"


def test_a_writable_disk_without_snapshots_is_unsupported(driver: LibvirtDriver) -> None:
    driver.define_and_start(make_spec("/portal-images/portal-i9.raw", disk_format="raw"))

    with pytest.raises(Unsupported) as raised:
        driver.create_snapshot(domain=NAME, name="s1", memory=True)

    assert raised.value.message == (
        f"cannot snapshot domain '{NAME}' as 's1': only qcow2 disks keep snapshots, and it has writable disks vda (raw)"
    )
    assert driver.list_snapshots(domain=NAME) == []


def test_a_taken_name_is_refused(driver: LibvirtDriver, running: str) -> None:
    first = driver.create_snapshot(domain=running, name="s1", memory=True)

    with pytest.raises(InvalidRequest, match="a snapshot of that name exists"):
        driver.create_snapshot(domain=running, name="s1", memory=False)

    assert driver.list_snapshots(domain=running) == [first]


def test_reverting_a_missing_snapshot_is_not_found(driver: LibvirtDriver, running: str) -> None:
    with pytest.raises(NotFound) as raised:
        driver.revert_snapshot(domain=running, name="s1")

    assert raised.value.message == f"snapshot 's1' of domain '{running}' not found"
    assert state(driver) == "running"


def test_a_snapshot_of_another_domain_is_not_reverted(driver: LibvirtDriver, running: str) -> None:
    other = "portal-i10"
    driver.define_and_start(make_spec("/portal-images/other.qcow2", name=other))
    driver.create_snapshot(domain=other, name="s1", memory=True)

    with pytest.raises(NotFound):
        driver.revert_snapshot(domain=running, name="s1")
    driver.delete_snapshot(domain=running, name="s1")

    assert [info.name for info in driver.list_snapshots(domain=other)] == ["s1"]


# --- create and list ----------------------------------------------------------------------------


def test_a_running_guests_snapshot_holds_its_memory(driver: LibvirtDriver, running: str, opener: Opener) -> None:
    before = int(time.time())

    info = driver.create_snapshot(domain=running, name="s1", memory=True)

    assert info.name == "s1"
    assert info.with_memory is True
    assert before <= info.created_at <= time.time() + 1
    assert driver.list_snapshots(domain=running) == [info]
    assert state(driver) == "running"
    disks = {disk.get("name"): disk.get("snapshot") for disk in stored_snapshot(opener, "s1").iterfind("disks/disk")}
    assert disks == {"vda": "internal", "vdb": "no"}  # the read-only config drive is left out


def test_a_running_guest_snapshotted_without_memory_is_marked(
    driver: LibvirtDriver, running: str, opener: Opener
) -> None:
    info = driver.create_snapshot(domain=running, name="s1", memory=False)

    assert info.with_memory is False
    assert driver.list_snapshots(domain=running) == [info]
    stored = stored_snapshot(opener, "s1")
    # libvirt kept the memory anyway (it takes no disk-only internal snapshot of a running guest).
    assert stored.find("memory").get("snapshot") == "internal"
    assert stored.findtext("description") == SNAPSHOT_DISKS_ONLY


def test_a_paused_guests_snapshot_holds_its_memory(driver: LibvirtDriver, running: str) -> None:
    driver.pause_domain(name=running)

    info = driver.create_snapshot(domain=running, name="s1", memory=True)

    assert info.with_memory is True
    assert state(driver) == "paused"


@pytest.mark.parametrize("memory", [True, False])
def test_a_domain_that_is_off_gives_its_disks_only(driver: LibvirtDriver, running: str, memory: bool) -> None:
    driver.power_off_domain(name=running)

    info = driver.create_snapshot(domain=running, name="s1", memory=memory)

    assert info.with_memory is False
    assert state(driver) == "shutoff"


def test_snapshots_are_listed_oldest_first(driver: LibvirtDriver, running: str) -> None:
    names = ["b", "a", "c"]
    for name in names:
        driver.create_snapshot(domain=running, name=name, memory=True)

    listed = driver.list_snapshots(domain=running)

    assert sorted(info.name for info in listed) == sorted(names)
    assert listed == sorted(listed, key=lambda info: (info.created_at, info.name))


# --- revert -------------------------------------------------------------------------------------


@pytest.mark.parametrize("now", ["running", "paused", "shutoff"])
def test_a_snapshot_with_memory_leaves_the_guest_paused(driver: LibvirtDriver, running: str, now: str) -> None:
    driver.create_snapshot(domain=running, name="s1", memory=True)
    if now == "paused":
        driver.pause_domain(name=running)
    if now == "shutoff":
        driver.power_off_domain(name=running)

    driver.revert_snapshot(domain=running, name="s1")

    assert state(driver) == "paused"
    driver.resume_domain(name=running)
    assert state(driver) == "running"


@pytest.mark.parametrize("now", ["running", "shutoff"])
def test_a_snapshot_without_memory_of_a_running_guest_leaves_it_off(
    driver: LibvirtDriver, running: str, now: str
) -> None:
    driver.create_snapshot(domain=running, name="s1", memory=False)
    if now == "shutoff":
        driver.power_off_domain(name=running)

    driver.revert_snapshot(domain=running, name="s1")

    assert state(driver) == "shutoff"
    assert driver.start_domain(name=running).state == "running"


def test_a_snapshot_of_a_domain_that_was_off_leaves_it_off(driver: LibvirtDriver, running: str) -> None:
    driver.power_off_domain(name=running)
    driver.create_snapshot(domain=running, name="s1", memory=True)
    driver.start_domain(name=running)

    driver.revert_snapshot(domain=running, name="s1")

    assert state(driver) == "shutoff"


def test_a_revert_drops_the_managed_save(driver: LibvirtDriver, running: str) -> None:
    driver.create_snapshot(domain=running, name="s1", memory=True)
    driver.save_domain_memory(name=running)

    driver.revert_snapshot(domain=running, name="s1")

    # The saved memory belonged to the disks as they were; the next start must not restore it.
    assert driver.has_saved_memory(name=running) is False
    assert state(driver) == "paused"


def test_a_revert_keeps_the_other_snapshots(driver: LibvirtDriver, running: str) -> None:
    first = driver.create_snapshot(domain=running, name="s1", memory=True)
    second = driver.create_snapshot(domain=running, name="s2", memory=False)

    driver.revert_snapshot(domain=running, name="s1")

    assert {info.name: info for info in driver.list_snapshots(domain=running)} == {"s1": first, "s2": second}


# --- delete -------------------------------------------------------------------------------------


def test_delete_removes_one_snapshot_and_a_missing_one_is_no_error(driver: LibvirtDriver, running: str) -> None:
    driver.create_snapshot(domain=running, name="s1", memory=True)
    kept = driver.create_snapshot(domain=running, name="s2", memory=True)

    driver.delete_snapshot(domain=running, name="s1")
    driver.delete_snapshot(domain=running, name="s1")
    driver.delete_snapshot(domain=running, name="never")

    assert driver.list_snapshots(domain=running) == [kept]
    assert state(driver) == "running"


def test_destroying_a_domain_drops_its_snapshots(driver: LibvirtDriver, running: str) -> None:
    driver.create_snapshot(domain=running, name="s1", memory=True)

    driver.destroy_domain(name=running)
    driver.define_and_start(make_spec(DISK))

    assert driver.list_snapshots(domain=running) == []


# --- the shared default host --------------------------------------------------------------------


def test_snapshot_round_trip_on_the_default_test_host() -> None:
    name = f"portal-snap-{secrets.token_hex(3)}"
    with LibvirtDriver("test:///default") as driver:
        try:
            driver.define_and_start(make_spec(f"/default-pool/{name}.qcow2", name=name))
            taken = driver.create_snapshot(domain=name, name="s1", memory=True)
            assert driver.list_snapshots(domain=name) == [taken]
            driver.revert_snapshot(domain=name, name="s1")
            assert driver.domain_info(name=name).state == "paused"
            driver.delete_snapshot(domain=name, name="s1")
            assert driver.list_snapshots(domain=name) == []
        finally:
            driver.destroy_domain(name=name)
