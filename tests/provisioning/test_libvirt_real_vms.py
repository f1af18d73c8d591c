"""LibvirtDriver with real VMs under qemu:///system (marked e2e): pools, upload, overlay, boot, teardown."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pytest_django.fixtures import Settings

from provisioning.drivers.base import DomainSpec, HostUnreachable, InvalidRequest, NotFound, PortForward
from provisioning.drivers.libvirt_driver import LibvirtDriver
from provisioning.naming import base_volume_name, overlay_volume_name
from tests.provisioning.libvirt_doubles import TAGS, Opener, volume_xml

SYSTEM_URI = "qemu:///system"


def _free_loopback_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _virsh_names(*args: str) -> list[str]:
    result = subprocess.run(["virsh", "-c", SYSTEM_URI, *args], check=True, capture_output=True, text=True)
    return [line.strip() for line in result.stdout.splitlines() if line.strip()]


def _wait_for_listener(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


class _Stopwatch:
    def __init__(self) -> None:
        self.laps: dict[str, float] = {}

    def lap(self, label: str, started: float) -> None:
        self.laps[label] = time.perf_counter() - started

    def report(self) -> str:
        return ", ".join(f"{label} {seconds:.2f}s" for label, seconds in self.laps.items())


@pytest.fixture
def system_host(opener: Opener, settings: Settings) -> Iterator[tuple[LibvirtDriver, str]]:
    """A driver on qemu:///system and a unique prefix; everything under that prefix is removed after.

    The prefix is the deployment name too, so no portal sharing this host takes what it makes for its own.
    """
    # scripts/test.sh installs and starts all of this; a missing piece is a failure, not a skip.
    if shutil.which("qemu-img") is None or shutil.which("virsh") is None:
        pytest.fail("qemu-img and virsh are needed (Debian packages qemu-utils, libvirt-clients)")
    driver = LibvirtDriver(SYSTEM_URI, connect=opener)
    try:
        driver.host_info()
    except HostUnreachable as exc:
        pytest.fail(f"{SYSTEM_URI} is not reachable (start libvirtd): {exc}")
    prefix = f"drvtest-{secrets.token_hex(4)}"
    settings.DEPLOYMENT_NAME = prefix
    try:
        yield driver, prefix
    finally:
        _remove_everything(driver, prefix)
        driver.close()
    assert not [name for name in _virsh_names("list", "--all", "--name") if name.startswith(prefix)]
    assert not [name for name in _virsh_names("pool-list", "--all", "--name") if name.startswith(prefix)]
    assert not Path(f"/var/lib/libvirt/images/{prefix}").exists()


def _remove_everything(driver: LibvirtDriver, prefix: str) -> None:
    for name in _virsh_names("list", "--all", "--name"):
        if name.startswith(prefix):
            driver.destroy_domain(name=name)
    if prefix in _virsh_names("pool-list", "--all", "--name"):
        driver.ensure_dir_pool(name=prefix, path=f"/var/lib/libvirt/images/{prefix}")
        for volume in driver.list_volumes(pool=prefix):
            driver.delete_volume(pool=prefix, name=volume.name)
        driver.delete_pool(name=prefix)


def _make_base_image(path: Path) -> int:
    subprocess.run(["qemu-img", "create", "-f", "qcow2", str(path), "64M"], check=True, capture_output=True)
    info = subprocess.run(["qemu-img", "info", "--output=json", str(path)], check=True, capture_output=True, text=True)
    return json.loads(info.stdout)["virtual-size"]


@pytest.mark.e2e
def test_real_vm_with_published_port(system_host: tuple[LibvirtDriver, str], opener: Opener, tmp_path: Path) -> None:
    driver, prefix = system_host
    tags = dataclasses.replace(TAGS, deployment=prefix)
    clock = _Stopwatch()
    pool_path = f"/var/lib/libvirt/images/{prefix}"
    base_path = tmp_path / "base.qcow2"
    virtual_size = _make_base_image(base_path)
    base_name = base_volume_name(hashlib.sha256(base_path.read_bytes()).hexdigest(), "qcow2")
    port = _free_loopback_port()

    started = time.perf_counter()
    pool = driver.ensure_dir_pool(name=prefix, path=pool_path)
    clock.lap("pool", started)
    assert pool.path == pool_path

    calls: list[tuple[int, int]] = []
    started = time.perf_counter()
    base = driver.upload_volume(
        pool=prefix,
        name=base_name,
        source_path=str(base_path),
        disk_format="qcow2",
        capacity_bytes=virtual_size,
        progress=lambda done, total: calls.append((done, total)),
    )
    clock.lap("upload", started)
    size = base_path.stat().st_size
    assert calls[0] == (0, size)
    assert calls[-1] == (size, size)
    assert base.capacity_bytes == virtual_size
    assert base.disk_format == "qcow2"

    started = time.perf_counter()
    overlay = driver.create_overlay(pool=prefix, name=overlay_volume_name(tags), backing=base)
    clock.lap("overlay", started)
    assert volume_xml(opener.conn, prefix, overlay.name).findtext("backingStore/path") == base.path

    spec = DomainSpec(
        name=prefix,
        domain_type="qemu",
        vcpus=1,
        memory_mib=128,
        disk_path=overlay.path,
        tags=tags,
        port_forwards=(PortForward(host_port=port, guest_port=22),),
    )
    started = time.perf_counter()
    info = driver.define_and_start(spec)
    clock.lap("define+start", started)
    assert info.state == "running"
    assert info.tags == tags
    assert info.vnc_port is not None
    assert info.vnc_port >= 5900
    assert info in driver.list_domains()
    _wait_for_listener(port)  # slirp's hostfwd listens on the host even before the guest boots

    started = time.perf_counter()
    driver.destroy_domain(name=prefix)
    clock.lap("destroy", started)
    driver.destroy_domain(name=prefix)
    with pytest.raises(NotFound, match=f"domain '{prefix}' not found"):
        driver.domain_info(name=prefix)

    started = time.perf_counter()
    driver.delete_volume(pool=prefix, name=overlay.name)
    driver.delete_volume(pool=prefix, name=base.name)
    driver.delete_pool(name=prefix)
    clock.lap("cleanup", started)
    print(f"\n{SYSTEM_URI} timings: {clock.report()}")


@pytest.mark.e2e
def test_real_failed_start_leaves_nothing_defined(system_host: tuple[LibvirtDriver, str]) -> None:
    driver, prefix = system_host
    spec = DomainSpec(
        name=prefix,
        domain_type="qemu",
        vcpus=1,
        memory_mib=64,
        disk_path=f"/var/lib/libvirt/images/{prefix}/missing.qcow2",  # qemu cannot open it
        tags=dataclasses.replace(TAGS, deployment=prefix),
    )

    with pytest.raises(InvalidRequest, match=f"cannot start domain '{prefix}'"):
        driver.define_and_start(spec)

    assert prefix not in _virsh_names("list", "--all", "--name")
