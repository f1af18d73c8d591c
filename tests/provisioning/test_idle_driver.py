"""The driver's activity samples (``domain_activity``) against libvirt's test driver, and the reading of
QEMU's ``info usernet`` listing as QEMU 7.2 writes it (real guests: tests/e2e/test_idle.py).

The test driver keeps no CPU time and has no QEMU monitor: its guests report no CPU use and
connections it cannot tell (None), which is what the idle sweep must cope with on any such host.
"""

from __future__ import annotations

import logging

import pytest

from provisioning.drivers.base import HostUnreachable
from provisioning.drivers.libvirt_driver import LibvirtDriver
from provisioning.drivers.libvirt_stats import UsernetConnections, parse_usernet
from tests.provisioning.libvirt_doubles import make_spec

DISK = "/portal-images/disk.qcow2"

# What QEMU 7.2 (libslirp 4.7) answered for a guest publishing port 5432 on 127.0.0.1:53591, while a
# client held one connection and another had just closed one (measured; lines end with \r\n).
USERNET = (
    "Hub -1 (pub0):\r\n"
    "  Protocol[State]    FD  Source Address  Port   Dest. Address  Port RecvQ SendQ\r\n"
    "  TCP[ESTABLISHED]   22       127.0.0.1 53591       10.0.2.15  5432     0     0\r\n"
    "  TCP[TIME_WAIT]     21       127.0.0.1 53591       10.0.2.15  5432     0     0\r\n"
    "  TCP[HOST_FORWARD]  10       127.0.0.1 53591       10.0.2.15  5432     0     0\r\n"
)


# --- bad input ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "answer",
    [
        "unknown command: 'info usernet'\r\n",
        "Error: something else entirely\r\n",
        "Hub -1 (pub0):\r\n  TCP[ESTABLISHED] 22 127.0.0.1 1 10.0.2.15 2 0 0\r\n",  # no header: not a listing we know
    ],
)
def test_an_answer_that_is_no_listing_is_unknown(answer: str) -> None:
    assert parse_usernet(answer) is None


def test_lines_that_are_no_connections_are_ignored() -> None:
    text = (
        "Hub -1 (pub0):\r\n"
        "  Protocol[State]    FD  Source Address  Port   Dest. Address  Port RecvQ SendQ\r\n"
        "  TCP[HOST_FORWARD]  10       127.0.0.1 53591       10.0.2.15  5432     0     0\r\n"
        "  TCP[NONE]          11       127.0.0.1 53592       10.0.2.15  5433     0     0\r\n"
        "  UDP[236 sec]       12       10.0.2.15   68       10.0.2.2    67     0     0\r\n"
        "  TCP[ESTABLISHED] <script>alert(1)</script>\r\n"
        "garbage\r\n"
    )
    assert parse_usernet(text) == UsernetConnections(frozenset(), 0)


def test_a_domain_the_host_does_not_know_is_left_out(driver: LibvirtDriver) -> None:
    driver.define_and_start(make_spec(DISK))
    assert driver.domain_activity(names=[]) == {}
    assert driver.domain_activity(names=["ghost"]) == {}
    assert set(driver.domain_activity(names=["ghost", "portal-i9"])) == {"portal-i9"}


def test_only_the_domains_asked_about_are_answered(driver: LibvirtDriver) -> None:
    driver.define_and_start(make_spec(DISK))
    driver.define_and_start(make_spec(DISK, name="portal-i10"))
    assert set(driver.domain_activity(names=["portal-i10"])) == {"portal-i10"}


def test_a_host_that_does_not_answer_is_unreachable() -> None:
    with LibvirtDriver("qemu+tcp://127.0.0.1:9/system") as driver, pytest.raises(HostUnreachable):
        driver.domain_activity(names=["portal-i9"])


# --- the listing --------------------------------------------------------------------------------


def test_open_connections_are_named_by_their_socket_and_closed_ones_counted() -> None:
    assert parse_usernet(USERNET) == UsernetConnections(frozenset({"pub0/22"}), 1)


def test_a_guest_without_a_user_mode_network_holds_no_connections() -> None:
    assert parse_usernet("") == UsernetConnections(frozenset(), 0)
    header_only = USERNET.split("  TCP[", 1)[0]
    assert parse_usernet(header_only) == UsernetConnections(frozenset(), 0)


def test_connections_the_guest_has_not_accepted_are_not_its_connections() -> None:
    # While the guest boots, clients' connections wait in QEMU (SYN_SENT) after the clients gave up.
    booting = USERNET.replace("TCP[ESTABLISHED]", "TCP[SYN_SENT]  ").replace("TCP[TIME_WAIT]  ", "TCP[SYN_SENT]  ")
    assert parse_usernet(booting) == UsernetConnections(frozenset(), 0)


def test_half_closed_connections_are_still_open() -> None:
    for state in ("CLOSE_WAIT", "FIN_WAIT_1", "FIN_WAIT_2", "LAST_ACK", "CLOSING"):
        listing = parse_usernet(USERNET.replace("ESTABLISHED", state))
        assert listing == UsernetConnections(frozenset({"pub0/22"}), 1), state


def test_connections_of_two_user_mode_networks_keep_apart() -> None:
    second = USERNET.replace("pub0", "pub1").replace("TIME_WAIT", "FIN_WAIT_2")
    listing = parse_usernet(USERNET + second)
    assert listing == UsernetConnections(frozenset({"pub0/22", "pub1/22", "pub1/21"}), 1)


def test_an_older_qemus_vlan_header_names_the_network() -> None:
    listing = parse_usernet(USERNET.replace("Hub -1 (pub0):", "VLAN 0 (user.0):"))
    assert listing is not None
    assert listing.open == frozenset({"user.0/22"})


# --- samples on the test driver -----------------------------------------------------------------


def test_a_running_guest_on_the_test_driver(driver: LibvirtDriver) -> None:
    driver.define_and_start(make_spec(DISK))
    (seen,) = driver.domain_activity(names=["portal-i9"]).values()
    assert seen.running is True
    assert seen.cpu_time_ns == 0  # the test driver keeps no CPU time
    assert seen.connections is None  # and has no QEMU monitor to ask
    assert seen.recently_closed == 0


def test_paused_and_stopped_guests_are_not_running(driver: LibvirtDriver) -> None:
    driver.define_and_start(make_spec(DISK))
    driver.define_and_start(make_spec(DISK, name="portal-i10"))
    driver.pause_domain(name="portal-i9")
    driver.power_off_domain(name="portal-i10")
    answers = driver.domain_activity(names=["portal-i9", "portal-i10"])
    assert answers["portal-i9"].running is False
    assert answers["portal-i9"].connections is None  # its QEMU would still hold them; this host cannot say
    assert answers["portal-i10"].running is False
    assert answers["portal-i10"].connections == frozenset()  # a guest that is off holds none


def test_a_host_without_a_monitor_is_asked_once_per_sample(driver: LibvirtDriver, caplog) -> None:
    for index in range(3):
        driver.define_and_start(make_spec(DISK, name=f"portal-i{index}"))
    with caplog.at_level(logging.INFO, logger="provisioning.drivers.libvirt_errors"):
        answers = driver.domain_activity(names=[f"portal-i{index}" for index in range(3)])
    assert all(seen.connections is None for seen in answers.values())
    refusals = [record for record in caplog.records if "cannot list the connections" in record.getMessage()]
    assert len(refusals) == 1
