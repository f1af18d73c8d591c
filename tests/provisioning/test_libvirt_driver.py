"""LibvirtDriver's connection, host and domains against libvirt's test driver.

Each test opens its own ``test:///<tmp_path>/node.xml`` host (see conftest.py), so no state leaks
between tests (``test:///default`` is shared by everything in the process and only used where noted).
Storage is in test_libvirt_storage.py, real VMs under qemu:///system in test_libvirt_real_vms.py.
"""

from __future__ import annotations

import dataclasses
import inspect
import secrets
from pathlib import Path

import libvirt
import pytest

from provisioning.drivers import open_driver
from provisioning.drivers.base import HostCapabilities, HostUnreachable, HypervisorDriver, InvalidRequest, NotFound
from provisioning.drivers.libvirt_driver import LibvirtDriver
from provisioning.naming import overlay_volume_name
from tests.provisioning.libvirt_doubles import (
    NODE_POOL,
    TAGS,
    DomainsFailToStart,
    Opener,
    PosingAsQemu,
    make_spec,
    upload,
)

UNREACHABLE_URI = "qemu+tcp://127.0.0.1:1/system"  # nothing listens on port 1 of loopback


# --- the interface ------------------------------------------------------------------------------


def test_signatures_match_the_protocol() -> None:
    for name, member in vars(HypervisorDriver).items():
        if callable(member) and not name.startswith("_"):
            assert inspect.signature(getattr(LibvirtDriver, name)) == inspect.signature(member), name


def test_open_driver_returns_a_lazy_libvirt_driver() -> None:
    driver = open_driver(UNREACHABLE_URI)  # nothing is contacted yet

    assert isinstance(driver, LibvirtDriver)
    assert driver.uri == UNREACHABLE_URI
    driver.close()


def test_the_connection_opens_on_first_use_and_closes_with_the_context(node_uri: str, opener: Opener) -> None:
    with LibvirtDriver(node_uri, connect=opener) as driver:
        assert opener.opened == []
        driver.host_info()
        driver.list_domains()
        assert len(opener.opened) == 1

    with pytest.raises(libvirt.libvirtError, match="invalid connection pointer"):
        opener.conn.isAlive()


# --- host ---------------------------------------------------------------------------------------


def test_host_info_matches_the_node_file(driver: LibvirtDriver) -> None:
    info = driver.host_info()

    assert info.hypervisor == "TEST"  # libvirt's spelling for the test driver
    assert info.cpus == 6
    assert info.memory_mib == 2048
    assert info.free_memory_mib >= 0
    assert info.hostname
    assert len(info.libvirt_version.split(".")) == 3
    assert all(part.isdigit() for part in info.libvirt_version.split("."))


def test_a_simulated_host_neither_stores_volume_data_nor_binds_guest_ports(driver: LibvirtDriver) -> None:
    capabilities = driver.host_info().capabilities

    assert capabilities == HostCapabilities(stores_volume_data=False, guests_bind_host_ports=False)


def test_a_real_hypervisor_stores_volume_data_and_binds_guest_ports(node_uri: str) -> None:
    with LibvirtDriver(node_uri, connect=Opener(wrap=PosingAsQemu)) as driver:
        info = driver.host_info()

    assert info.hypervisor == "QEMU"
    assert info.capabilities == HostCapabilities(stores_volume_data=True, guests_bind_host_ports=True)


def test_default_test_host_lists_only_portal_domains(tmp_path: Path) -> None:
    # test:///default ships an untagged domain named "test"; it must never show up as ours.
    name = f"portal-default-{secrets.token_hex(3)}"
    with LibvirtDriver("test:///default") as driver:
        assert driver.host_info().cpus > 0
        assert driver.pool_info(name="default-pool").path == "/default-pool"
        try:
            started = driver.define_and_start(make_spec(f"/default-pool/{name}.qcow2", name=name))
            listed = {info.name: info for info in driver.list_domains()}
            assert "test" not in listed
            assert listed[name] == started
        finally:
            driver.destroy_domain(name=name)


def test_a_dead_connection_is_reopened_once(driver: LibvirtDriver, opener: Opener) -> None:
    driver.host_info()
    opener.conn.close()  # what a daemon restart looks like to the client: the old connection is dead

    assert driver.host_info().cpus == 6
    assert driver.host_info().cpus == 6
    assert len(opener.opened) == 2


# --- domains ------------------------------------------------------------------------------------


def test_define_start_inspect_list_and_destroy(driver: LibvirtDriver, image: Path) -> None:
    base = upload(driver, image)
    overlay = driver.create_overlay(pool=NODE_POOL, name=overlay_volume_name(TAGS), backing=base)

    started = driver.define_and_start(make_spec(overlay.path))

    assert started.name == "portal-i9"
    assert started.state == "running"
    assert started.tags == TAGS
    assert len(started.uuid) == 36
    assert started.vnc_port is None  # the test driver never assigns one
    assert driver.domain_info(name="portal-i9") == started
    assert driver.list_domains() == [started]

    driver.destroy_domain(name="portal-i9")
    driver.destroy_domain(name="portal-i9")

    assert driver.list_domains() == []
    with pytest.raises(NotFound, match="domain 'portal-i9' not found"):
        driver.domain_info(name="portal-i9")


def test_list_domains_skips_domains_without_portal_tags(driver: LibvirtDriver, opener: Opener) -> None:
    other_portal = dataclasses.replace(TAGS, deployment="other", instance_id=10)
    driver.define_and_start(make_spec("/portal-images/x.qcow2"))
    driver.define_and_start(make_spec("/portal-images/y.qcow2", name="other-i10", tags=other_portal))
    foreign = "<domain type='test'><name>foreign</name><memory>65536</memory><os><type>hvm</type></os></domain>"
    opener.conn.defineXML(foreign)

    # Every portal's domains are listed with their tags; telling ours apart is naming.is_ours's job.
    assert [(info.name, info.tags) for info in driver.list_domains()] == [
        ("other-i10", other_portal),
        ("portal-i9", TAGS),
    ]


def test_destroy_undefines_a_stopped_domain(driver: LibvirtDriver, opener: Opener) -> None:
    driver.define_and_start(make_spec("/portal-images/x.qcow2"))
    opener.conn.lookupByName("portal-i9").destroy()
    assert driver.domain_info(name="portal-i9").state == "shutoff"

    driver.destroy_domain(name="portal-i9")

    with pytest.raises(NotFound, match="domain 'portal-i9' not found"):
        driver.domain_info(name="portal-i9")


def test_missing_domain_is_not_found(driver: LibvirtDriver, node_uri: str) -> None:
    with pytest.raises(NotFound, match="domain 'ghost' not found") as raised:
        driver.domain_info(name="ghost")

    assert raised.value.message == "domain 'ghost' not found"
    assert raised.value.detail.startswith(f"host {node_uri}: cannot read domain 'ghost': ")  # for the log
    driver.destroy_domain(name="ghost")  # idempotent


def test_a_taken_name_is_refused_and_the_existing_domain_survives(driver: LibvirtDriver) -> None:
    first = driver.define_and_start(make_spec("/portal-images/a.qcow2"))

    with pytest.raises(InvalidRequest, match="already exists") as raised:
        driver.define_and_start(make_spec("/portal-images/b.qcow2"))

    assert raised.value.retryable is False
    assert driver.domain_info(name="portal-i9") == first


def test_xml_libvirt_rejects_is_an_invalid_request(driver: LibvirtDriver, node_uri: str) -> None:
    with pytest.raises(InvalidRequest) as raised:
        driver.define_and_start(make_spec("/portal-images/x.qcow2", arch="nosucharch"))

    assert raised.value.message == "cannot define domain 'portal-i9': the host does not support that configuration"
    assert "nosucharch" in raised.value.detail

    assert driver.list_domains() == []


def test_an_unsafe_spec_never_reaches_libvirt(driver: LibvirtDriver, opener: Opener) -> None:
    with pytest.raises(InvalidRequest, match="invalid domain name"):
        driver.define_and_start(make_spec("/portal-images/x.qcow2", name="x'/><evil/>"))

    assert opener.opened == []


def test_a_failed_start_leaves_nothing_defined(node_uri: str) -> None:
    with LibvirtDriver(node_uri, connect=Opener(wrap=DomainsFailToStart)) as driver:
        with pytest.raises(InvalidRequest, match="cannot start domain 'portal-i9'"):
            driver.define_and_start(make_spec("/portal-images/x.qcow2"))

        with pytest.raises(NotFound, match="domain 'portal-i9' not found"):
            driver.domain_info(name="portal-i9")
        assert driver.list_domains() == []


# --- unreachable hosts --------------------------------------------------------------------------


def test_unreachable_host_is_retryable() -> None:
    driver = LibvirtDriver(UNREACHABLE_URI)

    with pytest.raises(HostUnreachable, match="cannot connect") as raised:
        driver.host_info()
    with pytest.raises(HostUnreachable, match="cannot connect"):
        driver.list_domains()

    assert raised.value.retryable is True
    assert raised.value.message == "cannot connect to the host: it did not answer"
    assert raised.value.detail.startswith(f"host {UNREACHABLE_URI}: cannot connect: ")


def test_a_broken_test_node_file_is_not_worth_retrying(tmp_path: Path) -> None:
    broken = tmp_path / "broken.xml"
    broken.write_text("<node><cpu>")

    with pytest.raises(
        HostUnreachable, match="cannot connect to the host: the URI or the credentials were refused"
    ) as raised:
        LibvirtDriver(f"test://{broken}").host_info()

    assert raised.value.retryable is False
