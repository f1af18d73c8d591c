"""LibvirtDriver's power actions and managed saves against libvirt's test driver.

Each test has its own ``test:///<tmp_path>/node.xml`` host (conftest.py), where guests change state
at once: a shutdown ends them, a managed save keeps no bytes but is remembered. Real guests are in
tests/e2e/test_driver_life.py.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from typing import Any

import libvirt
import pytest

from provisioning.drivers.base import DriverError, InvalidRequest, NotFound
from provisioning.drivers.libvirt_driver import LibvirtDriver
from tests.provisioning.libvirt_doubles import Opener, Wrapper, make_spec

NAME = "portal-i9"
DISK = "/portal-images/portal-i9.qcow2"

# Every call that names a domain, with the arguments it needs.
DOMAIN_CALLS: dict[str, Callable[[LibvirtDriver, str], object]] = {
    "start_domain": lambda driver, name: driver.start_domain(name=name),
    "shutdown_domain": lambda driver, name: driver.shutdown_domain(name=name),
    "power_off_domain": lambda driver, name: driver.power_off_domain(name=name),
    "reboot_domain": lambda driver, name: driver.reboot_domain(name=name),
    "pause_domain": lambda driver, name: driver.pause_domain(name=name),
    "resume_domain": lambda driver, name: driver.resume_domain(name=name),
    "save_domain_memory": lambda driver, name: driver.save_domain_memory(name=name),
    "discard_saved_memory": lambda driver, name: driver.discard_saved_memory(name=name),
    "has_saved_memory": lambda driver, name: driver.has_saved_memory(name=name),
}


@pytest.fixture
def running(driver: LibvirtDriver) -> str:
    driver.define_and_start(make_spec(DISK))
    return NAME


def state(driver: LibvirtDriver, name: str = NAME) -> str:
    return driver.domain_info(name=name).state


# --- bad input ----------------------------------------------------------------------------------


@pytest.mark.parametrize("call", DOMAIN_CALLS.values(), ids=DOMAIN_CALLS.keys())
def test_every_call_on_a_missing_domain_is_not_found(driver: LibvirtDriver, call: Callable[..., object]) -> None:
    with pytest.raises(NotFound, match="domain 'ghost' not found"):
        call(driver, "ghost")


@pytest.mark.parametrize("call", DOMAIN_CALLS.values(), ids=DOMAIN_CALLS.keys())
def test_a_domain_of_another_name_is_never_touched(
    driver: LibvirtDriver, running: str, call: Callable[..., object]
) -> None:
    with pytest.raises(NotFound):
        call(driver, f"{running}-other")

    assert state(driver) == "running"
    assert driver.has_saved_memory(name=running) is False


def test_rebooting_a_domain_that_is_off_is_refused(driver: LibvirtDriver, running: str) -> None:
    driver.power_off_domain(name=running)

    with pytest.raises(InvalidRequest, match=f"cannot reboot domain '{running}': it is not running"):
        driver.reboot_domain(name=running)

    assert state(driver) == "shutoff"


# --- power --------------------------------------------------------------------------------------


def test_start_a_stopped_domain_and_again(driver: LibvirtDriver, running: str) -> None:
    driver.power_off_domain(name=running)

    started = driver.start_domain(name=running)
    again = driver.start_domain(name=running)

    assert started.state == "running"
    assert started.name == running
    assert again == started


def test_starting_a_paused_domain_leaves_it_paused(driver: LibvirtDriver, running: str) -> None:
    driver.pause_domain(name=running)

    assert driver.start_domain(name=running).state == "paused"


def test_shutdown_ends_the_guest_and_is_a_no_op_once_off(driver: LibvirtDriver, running: str) -> None:
    driver.shutdown_domain(name=running)  # the test driver's guests obey at once
    assert state(driver) == "shutoff"

    driver.shutdown_domain(name=running)
    assert state(driver) == "shutoff"
    assert driver.domain_info(name=running).tags is not None  # still defined


def test_shutdown_of_a_paused_guest_resumes_it_to_hear_the_button(driver: LibvirtDriver, running: str) -> None:
    driver.pause_domain(name=running)

    driver.shutdown_domain(name=running)

    assert state(driver) == "shutoff"


def test_power_off_keeps_the_domain_and_is_a_no_op_once_off(driver: LibvirtDriver, running: str) -> None:
    driver.power_off_domain(name=running)
    driver.power_off_domain(name=running)

    assert state(driver) == "shutoff"
    assert [info.name for info in driver.list_domains()] == [running]


def test_reboot_keeps_a_guest_running(driver: LibvirtDriver, running: str) -> None:
    driver.reboot_domain(name=running)

    assert state(driver) == "running"


def test_pause_and_resume_are_no_ops_in_the_state_they_reach(driver: LibvirtDriver, running: str) -> None:
    driver.resume_domain(name=running)
    assert state(driver) == "running"

    driver.pause_domain(name=running)
    driver.pause_domain(name=running)
    assert state(driver) == "paused"

    driver.resume_domain(name=running)
    driver.resume_domain(name=running)
    assert state(driver) == "running"


def test_pause_and_resume_leave_a_domain_that_is_off_alone(driver: LibvirtDriver, running: str) -> None:
    driver.power_off_domain(name=running)

    driver.pause_domain(name=running)
    driver.resume_domain(name=running)

    assert state(driver) == "shutoff"


# --- managed save -------------------------------------------------------------------------------


def test_saved_memory_is_restored_by_the_next_start(driver: LibvirtDriver, running: str) -> None:
    assert driver.has_saved_memory(name=running) is False

    driver.save_domain_memory(name=running)
    driver.save_domain_memory(name=running)  # already saved and off

    assert state(driver) == "shutoff"
    assert driver.has_saved_memory(name=running) is True
    assert driver.start_domain(name=running).state == "running"
    assert driver.has_saved_memory(name=running) is False


def test_a_paused_guest_is_saved_to_come_back_running(driver: LibvirtDriver, running: str) -> None:
    driver.pause_domain(name=running)

    driver.save_domain_memory(name=running)

    assert driver.has_saved_memory(name=running) is True
    assert driver.start_domain(name=running).state == "running"


def test_a_domain_that_is_off_has_no_memory_to_save(driver: LibvirtDriver, running: str) -> None:
    driver.power_off_domain(name=running)

    driver.save_domain_memory(name=running)

    assert driver.has_saved_memory(name=running) is False


def test_discarded_memory_is_gone_and_discarding_again_is_a_no_op(driver: LibvirtDriver, running: str) -> None:
    driver.save_domain_memory(name=running)

    driver.discard_saved_memory(name=running)
    driver.discard_saved_memory(name=running)

    assert driver.has_saved_memory(name=running) is False
    assert driver.start_domain(name=running).state == "running"


def test_destroying_a_domain_drops_its_saved_memory(driver: LibvirtDriver, running: str) -> None:
    driver.save_domain_memory(name=running)

    driver.destroy_domain(name=running)

    assert driver.list_domains() == []


# --- drivers that lack a flag, refusals ---------------------------------------------------------


def _real_error(call: Callable[[], object]) -> libvirt.libvirtError:
    """The error a real test:// call raises, to hand out in place of another call's answer."""
    try:
        call()
    except libvirt.libvirtError as exc:
        return exc
    raise AssertionError("the call was expected to fail")


class DomainWithoutAcpiReboot(Wrapper):
    """A domain whose driver knows neither the ACPI reboot flag nor a plain reboot; it records resets."""

    resets: list[int] = []

    def reboot(self, flags: int = 0) -> int:
        if flags:
            # The test driver's own answer to a flag it does not know.
            raise _real_error(lambda: self.inner.shutdownFlags(libvirt.VIR_DOMAIN_SHUTDOWN_ACPI_POWER_BTN))
        raise _real_error(lambda: self.inner.pMWakeup(0))  # "not supported by the connection driver"

    def reset(self, flags: int = 0) -> int:
        self.resets.append(flags)
        return int(self.inner.reset(flags))


class DomainThatRefusesToPause(Wrapper):
    """A domain whose pause fails for real while it keeps running (the refusal is no state race)."""

    def suspend(self) -> int:
        return int(self.inner.resume())  # test:// refuses: the domain is not paused


class Domains(Wrapper):
    """A test:// connection whose looked-up domains get wrapped in ``domain_type``."""

    domain_type: type[Wrapper] = Wrapper

    def lookupByName(self, name: str) -> Any:
        return self.domain_type(self.inner.lookupByName(name))


@pytest.fixture
def wrapped_domains(node_uri: str) -> Iterator[Callable[[type[Wrapper]], LibvirtDriver]]:
    drivers: list[LibvirtDriver] = []

    def open_with(domain_type: type[Wrapper]) -> LibvirtDriver:
        connection_type = type("WrappedDomains", (Domains,), {"domain_type": domain_type})
        driver = LibvirtDriver(node_uri, connect=Opener(wrap=connection_type))
        drivers.append(driver)
        driver.define_and_start(make_spec(DISK))
        return driver

    yield open_with
    for driver in drivers:
        driver.close()


def test_reboot_resets_a_domain_whose_driver_cannot_ask_the_guest(
    wrapped_domains: Callable[[type[Wrapper]], LibvirtDriver],
) -> None:
    DomainWithoutAcpiReboot.resets = []
    driver = wrapped_domains(DomainWithoutAcpiReboot)

    driver.reboot_domain(name=NAME)

    assert DomainWithoutAcpiReboot.resets == [0]
    assert state(driver) == "running"


def test_a_refusal_is_raised_in_the_portals_words(
    wrapped_domains: Callable[[type[Wrapper]], LibvirtDriver], caplog: pytest.LogCaptureFixture
) -> None:
    driver = wrapped_domains(DomainThatRefusesToPause)

    with pytest.raises(DriverError) as raised:
        driver.pause_domain(name=NAME)

    assert raised.value.message == f"cannot pause domain '{NAME}': the host refused it"
    assert raised.value.retryable is False
    assert "not paused" not in raised.value.message
    assert "not paused" in raised.value.detail  # libvirt's words, for operators only
    assert "not paused" in caplog.text
    assert state(driver) == "running"


# --- the shared default host --------------------------------------------------------------------


def test_power_round_trip_on_the_default_test_host() -> None:
    name = f"portal-power-{secrets.token_hex(3)}"
    with LibvirtDriver("test:///default") as driver:
        try:
            driver.define_and_start(make_spec(f"/default-pool/{name}.qcow2", name=name))
            driver.pause_domain(name=name)
            driver.resume_domain(name=name)
            driver.save_domain_memory(name=name)
            assert driver.has_saved_memory(name=name) is True
            assert driver.start_domain(name=name).state == "running"
            driver.shutdown_domain(name=name)
            assert driver.domain_info(name=name).state == "shutoff"
        finally:
            driver.destroy_domain(name=name)


# --- published ports moved while the domain is off -----------------------------------------------


def test_published_ports_move_only_while_the_domain_is_off(driver: LibvirtDriver, running: str) -> None:
    # The rewrite itself is in test_domain_xml.py and, on QEMU (whose XML keeps the user-mode NIC),
    # in tests/e2e/test_taken_port.py: libvirt's test driver drops QEMU's command-line namespace.
    from provisioning.drivers.base import PortForward

    moved = (PortForward(host_port=18023, guest_port=22),)
    with pytest.raises(InvalidRequest, match="runs"):
        driver.set_port_forwards(name=running, forwards=moved)
    with pytest.raises(NotFound):
        driver.set_port_forwards(name="ghost", forwards=moved)
