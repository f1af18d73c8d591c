"""The driver's metrics (``sample_metrics``): bulk-stats records read as figures, and what libvirt's test
driver gives (its domains' state only; its node's CPU times; memory from its node description)."""

from __future__ import annotations

import pytest

from provisioning.drivers.base import HostUnreachable
from provisioning.drivers.libvirt_driver import LibvirtDriver
from provisioning.drivers.libvirt_metrics import domain_metrics
from tests.provisioning.libvirt_doubles import make_spec

KIB = 1024
# A record as libvirt 9.0 gives it for a running QEMU guest with its system disk, its config drive and
# one NIC on a stack network (the keys of virConnectGetAllDomainStats; values made up).
QEMU_RECORD = {
    "state.state": 1,
    "state.reason": 1,
    "cpu.time": 123_000_000_000,
    "cpu.user": 100_000_000_000,
    "cpu.system": 20_000_000_000,
    "balloon.current": 512 * KIB,
    "balloon.maximum": 512 * KIB,
    "balloon.rss": 300 * KIB,
    "vcpu.current": 2,
    "vcpu.maximum": 4,
    "vcpu.0.state": 1,
    "vcpu.0.time": 50_000_000_000,
    "block.count": 2,
    "block.0.name": "vda",
    "block.0.path": "/var/lib/libvirt/images/portal-i1.qcow2",
    "block.0.rd.bytes": 5000,
    "block.0.wr.bytes": 7000,
    "block.1.name": "vdb",
    "block.1.path": "/var/lib/libvirt/images/portal-i1-config.img",
    "block.1.rd.bytes": 900,
    "block.1.wr.bytes": 0,
    "net.count": 1,
    "net.0.name": "vnet3",
    "net.0.rx.bytes": 111,
    "net.0.tx.bytes": 222,
}


def test_a_qemu_record_reads_as_figures():
    figures = domain_metrics(QEMU_RECORD)
    assert figures.running
    assert (figures.vcpus, figures.cpu_time_ns) == (2, 123_000_000_000)
    assert (figures.memory_mib, figures.memory_used_mib) == (512, 300)
    assert (figures.disk_read_bytes, figures.disk_write_bytes) == (5000, 7000)  # the config drive left out
    assert (figures.net_rx_bytes, figures.net_tx_bytes) == (111, 222)


def test_memory_in_use_is_the_guests_own_view_when_it_gives_one():
    record = {**QEMU_RECORD, "balloon.available": 500 * KIB, "balloon.unused": 380 * KIB}
    assert domain_metrics(record).memory_used_mib == 120


def test_nics_are_summed_and_a_guest_without_any_has_zero():
    record = {**QEMU_RECORD, "net.count": 2, "net.1.name": "vnet4", "net.1.rx.bytes": 9, "net.1.tx.bytes": 1}
    assert (domain_metrics(record).net_rx_bytes, domain_metrics(record).net_tx_bytes) == (120, 223)
    assert domain_metrics({**QEMU_RECORD, "net.count": 0}).net_rx_bytes == 0


def test_a_guest_that_is_off_reports_no_counters():
    figures = domain_metrics({"state.state": 5, "state.reason": 0, "balloon.current": 512 * KIB})
    assert not figures.running
    assert figures.cpu_time_ns is None
    assert figures.disk_read_bytes is None
    assert figures.memory_mib == 512


def test_the_test_driver_gives_state_and_host_totals(driver: LibvirtDriver):
    driver.define_and_start(make_spec("/portal-images/disk.qcow2"))
    driver.define_and_start(make_spec("/portal-images/disk.qcow2", name="portal-i10"))
    driver.power_off_domain(name="portal-i10")
    sample = driver.sample_metrics(names=["portal-i9", "portal-i10", "ghost"])
    assert set(sample.domains) == {"portal-i9", "portal-i10"}
    assert sample.domains["portal-i9"].running
    assert not sample.domains["portal-i10"].running
    assert sample.domains["portal-i9"].cpu_time_ns is None  # not kept by the test driver: unknown, not 0
    assert sample.host.cpus == 6
    assert sample.host.memory_mib == 2048
    assert sample.host.cpu_total_ns is not None
    assert sample.host.cpu_busy_ns is not None
    assert sample.host.cpu_total_ns >= sample.host.cpu_busy_ns
    assert sample.host.domains_running == 1


def test_no_names_asks_no_domains(driver: LibvirtDriver):
    driver.define_and_start(make_spec("/portal-images/disk.qcow2"))
    assert driver.sample_metrics(names=[]).domains == {}


def test_a_host_that_does_not_answer_is_unreachable():
    with LibvirtDriver("qemu+tcp://127.0.0.1:9/system") as driver, pytest.raises(HostUnreachable):
        driver.sample_metrics(names=["portal-i9"])


def test_qemus_own_memory_is_not_counted_as_the_guests():
    record = {**QEMU_RECORD, "balloon.current": 128 * KIB, "balloon.rss": 235 * KIB}  # measured under TCG
    assert domain_metrics(record).memory_used_mib == 128
