"""The driver's power actions, managed saves, snapshots and volume downloads with real guests
under qemu:///system (marked e2e).

Each test boots the demo db appliance (it serves HTTP on port 5432, published on loopback) over
a qcow2 overlay in a pool of its own, beside a read-only raw config drive, as the portal does.
Everything is named ``driver-<hex>`` and removed afterwards.

Disk contents are checked from the host with ``qemu-io``: a pattern written into the overlay
while the guest is off must be gone after reverting to a snapshot taken before it.
"""

from __future__ import annotations

import json
import secrets
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from catalog.demo_appliances import build_demo_appliances
from provisioning.config_drive import GuestConfig, write_config_drive
from provisioning.drivers import open_driver
from provisioning.drivers.base import DomainSpec, DomainTags, InvalidRequest, NotFound, PortForward, Unsupported
from provisioning.drivers.libvirt_driver import LibvirtDriver
from tests.e2e.conftest import BUILD_CACHE, SYSTEM_URI

pytestmark = pytest.mark.e2e

DB_PORT = 5432
PATTERN_OFFSET = 16 * 1024 * 1024  # inside the demo disk's 32 MiB, past the files it holds


@dataclass
class Host:
    driver: LibvirtDriver
    prefix: str
    laps: dict[str, float]

    def lap(self, label: str, started: float) -> None:
        self.laps[label] = time.perf_counter() - started


@dataclass(frozen=True)
class Guest:
    name: str
    overlay_path: str
    overlay_name: str
    port: int


@pytest.fixture(scope="module")
def demo_db_image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out_dir = tmp_path_factory.mktemp("demo")
    # Not served: only the image is used, so the feed's address does not matter.
    build_demo_appliances(out_dir=out_dir, base_url="http://127.0.0.1:9", work_dir=BUILD_CACHE, log=lambda _: None)
    return out_dir / "demo-db.qcow2"


@pytest.fixture
def host() -> Iterator[Host]:
    prefix = f"driver-{secrets.token_hex(4)}"
    driver = open_driver(SYSTEM_URI)
    assert isinstance(driver, LibvirtDriver)
    driver.ensure_dir_pool(name=prefix, path=f"/var/lib/libvirt/images/{prefix}")
    laps: dict[str, float] = {}
    try:
        yield Host(driver=driver, prefix=prefix, laps=laps)
    finally:
        for domain in driver.list_domains():
            if domain.name.startswith(prefix):
                driver.destroy_domain(name=domain.name)
        for volume in driver.list_volumes(pool=prefix):
            driver.delete_volume(pool=prefix, name=volume.name)
        driver.delete_pool(name=prefix)
        driver.close()
        if laps:
            print(f"\n{SYSTEM_URI} timings: " + ", ".join(f"{label} {secs:.2f}s" for label, secs in laps.items()))
    assert not Path(f"/var/lib/libvirt/images/{prefix}").exists()


def _free_loopback_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _virtual_size(path: Path) -> int:
    info = subprocess.run(["qemu-img", "info", "--output=json", str(path)], check=True, capture_output=True, text=True)
    return int(json.loads(info.stdout)["virtual-size"])


def boot_guest(host: Host, image: Path, tmp_path: Path, *, disk_format: str = "qcow2") -> Guest:
    """Upload ``image`` as a base, lay an overlay over it (qcow2) and boot a guest with a config drive."""
    driver, prefix = host.driver, host.prefix
    name = f"{prefix}-{secrets.token_hex(2)}"
    base = driver.upload_volume(
        pool=prefix,
        name=f"{name}-base.{disk_format}",
        source_path=str(image),
        disk_format=disk_format,
        capacity_bytes=_virtual_size(image) if disk_format == "qcow2" else image.stat().st_size,
    )
    disk = base
    if disk_format == "qcow2":
        disk = driver.create_overlay(pool=prefix, name=f"{name}-disk.qcow2", backing=base)
    drive = tmp_path / f"{name}.iso"
    config = GuestConfig(
        instance_id=name,
        hostname=name,
        stack="driver",
        tier="db",
        mac_address="52:54:00:00:09:02",  # not qemu's default MAC, which the published NIC gets
        address="10.0.9.2",
        prefix_length=24,
    )
    write_config_drive(config, drive)
    config_volume = driver.upload_volume(
        pool=prefix,
        name=f"{name}-config.iso",
        source_path=str(drive),
        disk_format="raw",
        capacity_bytes=drive.stat().st_size,
    )
    port = _free_loopback_port()
    spec = DomainSpec(
        name=name,
        domain_type="qemu",
        vcpus=1,
        memory_mib=128,
        disk_path=disk.path,
        disk_format=disk_format,
        tags=DomainTags(deployment=prefix, project_id=1, stack_id=1, instance_id=1),
        port_forwards=(PortForward(host_port=port, guest_port=DB_PORT),),
        config_drive_path=config_volume.path,
    )
    assert driver.define_and_start(spec).state == "running"
    return Guest(name=name, overlay_path=disk.path, overlay_name=disk.name, port=port)


def serves_http(port: int, wait: float = 60.0) -> bool:
    """Whether the guest answers an HTTP request on its published port before ``wait`` seconds pass."""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as conn:
                conn.settimeout(2)
                conn.sendall(b"GET / HTTP/1.0\r\n\r\n")
                if conn.recv(16).startswith(b"HTTP/"):
                    return True
        except OSError:
            pass
        time.sleep(0.2)
    return False


def write_pattern(path: str) -> None:
    subprocess.run(
        ["qemu-io", "-f", "qcow2", "-c", f"write -P 0xab {PATTERN_OFFSET} 64k", path], check=True, capture_output=True
    )


def holds_pattern(path: str) -> bool:
    # -U: a paused guest's qemu holds the image's lock; reading beside it is safe.
    read = subprocess.run(
        ["qemu-io", "-r", "-U", "-f", "qcow2", "-c", f"read -P 0xab {PATTERN_OFFSET} 64k", path], capture_output=True
    )
    return read.returncode == 0


def state(host: Host, guest: Guest) -> str:
    return host.driver.domain_info(name=guest.name).state


# --- power and managed saves --------------------------------------------------------------------


def test_power_actions_and_managed_save(host: Host, demo_db_image: Path, tmp_path: Path) -> None:
    driver = host.driver
    guest = boot_guest(host, demo_db_image, tmp_path)
    assert serves_http(guest.port)

    # The demo guest may not act on the ACPI button: the call only asks and returns.
    started = time.perf_counter()
    driver.shutdown_domain(name=guest.name)
    host.lap("shutdown (ask)", started)
    assert state(host, guest) in {"running", "shutoff"}
    started = time.perf_counter()
    driver.power_off_domain(name=guest.name)
    host.lap("power off", started)
    driver.power_off_domain(name=guest.name)
    driver.shutdown_domain(name=guest.name)
    assert state(host, guest) == "shutoff"
    with pytest.raises(InvalidRequest, match="it is not running"):
        driver.reboot_domain(name=guest.name)

    assert driver.start_domain(name=guest.name).state == "running"
    assert driver.start_domain(name=guest.name).state == "running"
    assert serves_http(guest.port)

    driver.pause_domain(name=guest.name)
    driver.pause_domain(name=guest.name)
    assert state(host, guest) == "paused"
    driver.resume_domain(name=guest.name)
    driver.resume_domain(name=guest.name)
    assert state(host, guest) == "running"
    assert serves_http(guest.port)

    driver.reboot_domain(name=guest.name)
    assert state(host, guest) == "running"
    assert serves_http(guest.port)

    started = time.perf_counter()
    driver.save_domain_memory(name=guest.name)
    host.lap("managed save", started)
    driver.save_domain_memory(name=guest.name)
    assert state(host, guest) == "shutoff"
    assert driver.has_saved_memory(name=guest.name) is True
    started = time.perf_counter()
    assert driver.start_domain(name=guest.name).state == "running"
    host.lap("start from managed save", started)
    assert driver.has_saved_memory(name=guest.name) is False
    assert serves_http(guest.port)

    driver.pause_domain(name=guest.name)
    driver.save_domain_memory(name=guest.name)  # a paused guest comes back running
    driver.discard_saved_memory(name=guest.name)
    driver.discard_saved_memory(name=guest.name)
    assert driver.has_saved_memory(name=guest.name) is False
    assert driver.start_domain(name=guest.name).state == "running"  # boots afresh
    assert serves_http(guest.port)


# --- snapshots ----------------------------------------------------------------------------------


def test_snapshots_with_and_without_memory(host: Host, demo_db_image: Path, tmp_path: Path) -> None:
    driver = host.driver
    guest = boot_guest(host, demo_db_image, tmp_path)
    assert serves_http(guest.port)
    overlay = driver.find_volume(pool=host.prefix, name=guest.overlay_name)
    assert overlay is not None

    # With memory, of a running guest: a revert leaves it paused where it was.
    started = time.perf_counter()
    with_memory = driver.create_snapshot(domain=guest.name, name="with-memory", memory=True)
    host.lap("snapshot with memory (running)", started)
    assert with_memory.with_memory is True
    assert state(host, guest) == "running"
    grown = driver.find_volume(pool=host.prefix, name=guest.overlay_name)
    assert grown is not None
    assert grown.allocation_bytes > overlay.allocation_bytes  # the guest's memory is in the overlay now
    driver.power_off_domain(name=guest.name)
    write_pattern(guest.overlay_path)
    assert holds_pattern(guest.overlay_path)
    started = time.perf_counter()
    driver.revert_snapshot(domain=guest.name, name="with-memory")
    host.lap("revert with memory (from off)", started)
    assert state(host, guest) == "paused"
    assert not holds_pattern(guest.overlay_path)
    driver.resume_domain(name=guest.name)
    assert serves_http(guest.port)  # it carries on where it was, no boot

    started = time.perf_counter()
    driver.revert_snapshot(domain=guest.name, name="with-memory")
    host.lap("revert with memory (running)", started)
    assert state(host, guest) == "paused"
    driver.resume_domain(name=guest.name)

    # Without memory, of a running guest: libvirt keeps it anyway, but the revert leaves the guest off.
    started = time.perf_counter()
    disks_only = driver.create_snapshot(domain=guest.name, name="disks-only", memory=False)
    host.lap("snapshot without memory (running)", started)
    assert disks_only.with_memory is False
    driver.power_off_domain(name=guest.name)
    write_pattern(guest.overlay_path)
    driver.start_domain(name=guest.name)
    started = time.perf_counter()
    driver.revert_snapshot(domain=guest.name, name="disks-only")
    host.lap("revert without memory (running)", started)
    assert state(host, guest) == "shutoff"
    assert not holds_pattern(guest.overlay_path)
    assert driver.start_domain(name=guest.name).state == "running"
    assert serves_http(guest.port)  # booted afresh from the disks as they were

    # Of a guest that is off: the disks only, whatever was asked.
    driver.power_off_domain(name=guest.name)
    started = time.perf_counter()
    off = driver.create_snapshot(domain=guest.name, name="off", memory=True)
    host.lap("snapshot (off)", started)
    assert off.with_memory is False
    write_pattern(guest.overlay_path)
    driver.start_domain(name=guest.name)
    driver.revert_snapshot(domain=guest.name, name="off")
    assert state(host, guest) == "shutoff"
    assert not holds_pattern(guest.overlay_path)

    with pytest.raises(InvalidRequest, match="a snapshot of that name exists"):
        driver.create_snapshot(domain=guest.name, name="off", memory=False)
    listed = driver.list_snapshots(domain=guest.name)
    assert [(info.name, info.with_memory) for info in listed] == [
        ("with-memory", True),
        ("disks-only", False),
        ("off", False),
    ]

    driver.start_domain(name=guest.name)
    started = time.perf_counter()
    driver.delete_snapshot(domain=guest.name, name="with-memory")
    host.lap("delete snapshot (running)", started)
    driver.delete_snapshot(domain=guest.name, name="with-memory")
    driver.power_off_domain(name=guest.name)
    driver.delete_snapshot(domain=guest.name, name="disks-only")
    driver.delete_snapshot(domain=guest.name, name="off")
    assert driver.list_snapshots(domain=guest.name) == []
    snapshots_in_file = subprocess.run(
        ["qemu-img", "snapshot", "-l", "-U", guest.overlay_path], check=True, capture_output=True, text=True
    )
    assert snapshots_in_file.stdout.strip() == ""


def test_a_revert_discards_a_managed_save(host: Host, demo_db_image: Path, tmp_path: Path) -> None:
    driver = host.driver
    guest = boot_guest(host, demo_db_image, tmp_path)
    assert serves_http(guest.port)
    driver.create_snapshot(domain=guest.name, name="s1", memory=True)
    driver.save_domain_memory(name=guest.name)

    driver.revert_snapshot(domain=guest.name, name="s1")

    assert driver.has_saved_memory(name=guest.name) is False
    assert state(host, guest) == "paused"
    driver.resume_domain(name=guest.name)
    assert serves_http(guest.port)


def test_a_writable_raw_disk_cannot_be_snapshotted(host: Host, tmp_path: Path) -> None:
    raw = tmp_path / "disk.raw"
    raw.write_bytes(bytes(1024 * 1024))  # no boot sector: the guest stays in its firmware
    guest = boot_guest(host, raw, tmp_path, disk_format="raw")

    with pytest.raises(Unsupported, match=r"only qcow2 disks keep snapshots, and it has writable disks vda \(raw\)"):
        host.driver.create_snapshot(domain=guest.name, name="s1", memory=True)

    assert host.driver.list_snapshots(domain=guest.name) == []


# --- downloads ----------------------------------------------------------------------------------


def test_download_gives_back_the_uploaded_bytes(host: Host, tmp_path: Path) -> None:
    driver = host.driver
    source = tmp_path / "upload.raw"
    source.write_bytes(secrets.token_bytes(3 * 1024 * 1024 + 123))
    size = source.stat().st_size
    name = f"{host.prefix}-moved.raw"
    driver.upload_volume(pool=host.prefix, name=name, source_path=str(source), disk_format="raw", capacity_bytes=size)
    dest = tmp_path / "download.raw"
    calls: list[tuple[int, int]] = []

    started = time.perf_counter()
    written = driver.download_volume(
        pool=host.prefix, name=name, dest_path=str(dest), progress=lambda done, total: calls.append((done, total))
    )
    host.lap("download 3 MiB", started)

    assert written == size
    assert dest.read_bytes() == source.read_bytes()
    assert calls[0] == (0, size)
    assert calls[-1] == (size, size)
    with pytest.raises(NotFound):
        driver.download_volume(pool=host.prefix, name=f"{host.prefix}-ghost.raw", dest_path=str(tmp_path / "ghost"))
    assert not (tmp_path / "ghost").exists()
