"""LibvirtDriver against libvirt's test driver, plus real VMs under qemu:///system (marked e2e).

Each test-driver test opens its own ``test:///<tmp_path>/node.xml`` host, so no state leaks between
tests (``test:///default`` is shared by everything in the process and only used where noted).
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
import secrets
import shutil
import socket
import subprocess
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from provisioning.drivers import open_driver
from provisioning.drivers.base import (
    DomainSpec,
    DomainTags,
    HostUnreachable,
    HypervisorDriver,
    InvalidRequest,
    NotFound,
    PortForward,
    Unsupported,
    VolumeInfo,
)
from provisioning.drivers.domain_xml import base_volume_name, overlay_volume_name
from provisioning.drivers.libvirt_driver import LibvirtDriver, _send_file, _Subject

NODE_POOL = "images"
NODE_POOL_PATH = "/portal-images"
NODE_XML = f"""\
<node>
  <pool type="dir">
    <name>{NODE_POOL}</name>
    <target><path>{NODE_POOL_PATH}</path></target>
  </pool>
  <cpu>
    <mhz>2400</mhz>
    <model>i686</model>
    <active>6</active>
    <nodes>1</nodes>
    <sockets>1</sockets>
    <cores>3</cores>
    <threads>2</threads>
  </cpu>
  <memory>2097152</memory>
</node>
"""
TAGS = DomainTags(project_id=7, stack_id=8, instance_id=9)
UNREACHABLE_URI = "qemu+tcp://127.0.0.1:1/system"  # nothing listens on port 1 of loopback


@pytest.fixture
def node_uri(tmp_path: Path) -> str:
    node = tmp_path / "node.xml"
    node.write_text(NODE_XML)
    return f"test://{node}"


@pytest.fixture
def driver(node_uri: str) -> Iterator[LibvirtDriver]:
    with LibvirtDriver(node_uri) as opened:
        yield opened


@pytest.fixture
def image(tmp_path: Path) -> Path:
    path = tmp_path / "image.qcow2"
    path.write_bytes(secrets.token_bytes(2 * 1024 * 1024 + 123))
    return path


def make_spec(disk_path: str, **changes: object) -> DomainSpec:
    spec = DomainSpec(
        name="portal-i9",
        domain_type="qemu",
        vcpus=1,
        memory_mib=128,
        disk_path=disk_path,
        tags=TAGS,
        port_forwards=(PortForward(host_port=18022, guest_port=22),),
    )
    return dataclasses.replace(spec, **changes)


def upload(driver: LibvirtDriver, image: Path, name: str = "base.qcow2", **kwargs: object) -> VolumeInfo:
    return driver.upload_volume(
        pool=NODE_POOL,
        name=name,
        source_path=str(image),
        disk_format="qcow2",
        capacity_bytes=64 * 1024 * 1024,
        **kwargs,
    )


def volume_xml(driver: LibvirtDriver, pool: str, name: str) -> ET.Element:
    """Read what libvirt stored, beyond what VolumeInfo exposes."""
    conn = driver._connection()
    xml = conn.storagePoolLookupByName(pool).storageVolLookupByName(name).XMLDesc(0)
    return ET.fromstring(xml)  # noqa: S314 - XML from libvirt


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


def test_context_manager_closes_the_connection(node_uri: str) -> None:
    with LibvirtDriver(node_uri) as driver:
        assert driver._conn is None
        driver.host_info()
        assert driver._conn is not None
    assert driver._conn is None


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


def test_a_dead_connection_is_reopened_once(driver: LibvirtDriver) -> None:
    driver.host_info()
    stale = driver._conn
    stale.isAlive = lambda: 0  # what a daemon restart looks like to the client

    assert driver.host_info().cpus == 6
    assert driver._conn is not stale


# --- pools --------------------------------------------------------------------------------------


def test_ensure_dir_pool_defines_starts_and_is_idempotent(driver: LibvirtDriver) -> None:
    first = driver.ensure_dir_pool(name="portal", path="/srv/portal")
    again = driver.ensure_dir_pool(name="portal", path="/srv/portal/")

    assert first.name == "portal"
    assert first.path == "/srv/portal"
    assert first.capacity_bytes > 0
    assert again == first
    assert driver.pool_info(name="portal") == first
    pool = driver._connection().storagePoolLookupByName("portal")
    assert pool.isActive() == 1
    assert pool.autostart() == 1


def test_ensure_dir_pool_returns_an_existing_pool(driver: LibvirtDriver) -> None:
    assert driver.ensure_dir_pool(name=NODE_POOL, path=NODE_POOL_PATH).path == NODE_POOL_PATH


def test_ensure_dir_pool_starts_an_inactive_pool(driver: LibvirtDriver) -> None:
    driver._connection().storagePoolLookupByName(NODE_POOL).destroy()

    driver.ensure_dir_pool(name=NODE_POOL, path=NODE_POOL_PATH)

    assert driver._connection().storagePoolLookupByName(NODE_POOL).isActive() == 1


def test_ensure_dir_pool_refuses_an_existing_pool_elsewhere(driver: LibvirtDriver) -> None:
    with pytest.raises(InvalidRequest, match=f"pool '{NODE_POOL}' already exists at '{NODE_POOL_PATH}'"):
        driver.ensure_dir_pool(name=NODE_POOL, path="/somewhere/else")


def test_missing_pool_is_not_found(driver: LibvirtDriver, node_uri: str) -> None:
    with pytest.raises(NotFound) as raised:
        driver.pool_info(name="nope")

    assert raised.value.message == f"host {node_uri}: pool 'nope' not found"
    assert raised.value.retryable is False


def test_delete_pool_is_idempotent(driver: LibvirtDriver) -> None:
    driver.ensure_dir_pool(name="scratch", path="/srv/scratch")

    driver.delete_pool(name="scratch")
    driver.delete_pool(name="scratch")

    with pytest.raises(NotFound):
        driver.pool_info(name="scratch")


def test_delete_pool_refuses_a_pool_with_volumes(driver: LibvirtDriver, image: Path) -> None:
    upload(driver, image)

    with pytest.raises(InvalidRequest, match="still holds volumes"):
        driver.delete_pool(name=NODE_POOL)
    assert driver.pool_info(name=NODE_POOL).name == NODE_POOL


# --- volumes ------------------------------------------------------------------------------------


def test_upload_overlay_and_delete(driver: LibvirtDriver, image: Path) -> None:
    calls: list[tuple[int, int]] = []
    size = image.stat().st_size

    base = upload(driver, image, progress=lambda done, total: calls.append((done, total)))

    # The test driver keeps no data, so progress jumps straight to complete.
    assert calls[-1] == (size, size)
    assert base == VolumeInfo(
        name="base.qcow2",
        path=f"{NODE_POOL_PATH}/base.qcow2",
        capacity_bytes=64 * 1024 * 1024,  # the virtual size asked for, not the file's size
        disk_format="qcow2",
    )
    assert driver.find_volume(pool=NODE_POOL, name="base.qcow2") == base

    name = overlay_volume_name(TAGS)
    overlay = driver.create_overlay(pool=NODE_POOL, name=name, backing=base)

    assert overlay.capacity_bytes == base.capacity_bytes
    assert overlay.disk_format == "qcow2"
    stored = volume_xml(driver, NODE_POOL, name)
    assert stored.findtext("backingStore/path") == base.path
    assert stored.find("backingStore/format").attrib["type"] == "qcow2"
    assert [volume.name for volume in driver.list_volumes(pool=NODE_POOL)] == ["base.qcow2", name]

    driver.delete_volume(pool=NODE_POOL, name=name)
    driver.delete_volume(pool=NODE_POOL, name=name)

    assert driver.find_volume(pool=NODE_POOL, name=name) is None
    assert [volume.name for volume in driver.list_volumes(pool=NODE_POOL)] == ["base.qcow2"]


def test_overlay_may_be_larger_but_not_smaller_than_its_backing(driver: LibvirtDriver, image: Path) -> None:
    base = upload(driver, image)

    bigger = driver.create_overlay(pool=NODE_POOL, name="big.qcow2", backing=base, capacity_bytes=2**30)
    assert bigger.capacity_bytes == 2**30
    with pytest.raises(InvalidRequest, match="smaller"):
        driver.create_overlay(pool=NODE_POOL, name="small.qcow2", backing=base, capacity_bytes=1024)
    assert driver.find_volume(pool=NODE_POOL, name="small.qcow2") is None


def test_a_cancelled_upload_leaves_no_volume(driver: LibvirtDriver, image: Path) -> None:
    def cancel(done: int, total: int) -> None:
        raise RuntimeError("cancelled by the caller")

    with pytest.raises(RuntimeError, match="cancelled"):
        upload(driver, image, progress=cancel)

    assert driver.find_volume(pool=NODE_POOL, name="base.qcow2") is None


def test_upload_without_upload_support_is_unsupported_and_leaves_no_volume(
    driver: LibvirtDriver, image: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Seen as a real hypervisor, the test driver's missing virStorageVolUpload is an error.
    monkeypatch.setattr(LibvirtDriver, "_is_test_driver", staticmethod(lambda conn: False))

    with pytest.raises(Unsupported, match="virStorageVolUpload") as raised:
        upload(driver, image)

    assert raised.value.retryable is False
    assert driver.find_volume(pool=NODE_POOL, name="base.qcow2") is None


def test_upload_of_a_missing_local_file_creates_nothing(driver: LibvirtDriver, tmp_path: Path) -> None:
    with pytest.raises(InvalidRequest, match="cannot read local file"):
        upload(driver, tmp_path / "missing.qcow2")

    assert driver.list_volumes(pool=NODE_POOL) == []


def test_upload_over_an_existing_volume_keeps_the_existing_one(driver: LibvirtDriver, image: Path) -> None:
    first = upload(driver, image)

    with pytest.raises(InvalidRequest, match="already exists"):
        upload(driver, image)

    assert driver.find_volume(pool=NODE_POOL, name="base.qcow2") == first


def test_upload_into_a_missing_pool_is_not_found(driver: LibvirtDriver, image: Path, node_uri: str) -> None:
    with pytest.raises(NotFound, match=f"host {node_uri}: pool 'nope' not found"):
        driver.upload_volume(
            pool="nope", name="v.qcow2", source_path=str(image), disk_format="qcow2", capacity_bytes=1024
        )


def test_missing_volumes(driver: LibvirtDriver, node_uri: str) -> None:
    assert driver.find_volume(pool=NODE_POOL, name="ghost.qcow2") is None
    driver.delete_volume(pool=NODE_POOL, name="ghost.qcow2")  # idempotent

    with pytest.raises(NotFound, match=f"host {node_uri}: pool 'nope' not found"):
        driver.find_volume(pool="nope", name="ghost.qcow2")
    with pytest.raises(NotFound):
        driver.delete_volume(pool="nope", name="ghost.qcow2")
    missing = VolumeInfo(name="ghost", path="/nowhere/ghost", capacity_bytes=1024, disk_format="qcow2")
    with pytest.raises(NotFound, match="pool 'nope' not found"):
        driver.create_overlay(pool="nope", name="child.qcow2", backing=missing)


def test_missing_volume_message_names_host_volume_and_pool(driver: LibvirtDriver, node_uri: str) -> None:
    # No public method reports a missing volume (find returns None, delete ignores it), but a volume
    # can vanish between two calls inside one; that error must read well too.
    subject = _Subject(pool=NODE_POOL, volume="ghost.qcow2")
    with pytest.raises(NotFound) as raised, driver._call("read volume", subject) as conn:
        conn.storagePoolLookupByName(NODE_POOL).storageVolLookupByName("ghost.qcow2")

    assert raised.value.message == f"host {node_uri}: volume 'ghost.qcow2' not found in pool '{NODE_POOL}'"


class _TrickleStream:
    """Accepts at most a few bytes per send, as virStreamSend may."""

    def __init__(self) -> None:
        self.received = bytearray()

    def send(self, data: bytes) -> int:
        accepted = data[:700_000]
        self.received += accepted
        return len(accepted)


def test_streaming_sends_every_byte_in_chunks_and_reports_progress(image: Path) -> None:
    stream = _TrickleStream()
    calls: list[tuple[int, int]] = []
    size = image.stat().st_size

    _send_file(stream, str(image), size, lambda done, total: calls.append((done, total)))  # type: ignore[arg-type]

    assert bytes(stream.received) == image.read_bytes()
    assert calls == [(0, size), (1 << 20, size), (2 << 20, size), (size, size)]


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
    with pytest.raises(NotFound):
        driver.domain_info(name="portal-i9")


def test_list_domains_skips_domains_without_portal_tags(driver: LibvirtDriver) -> None:
    foreign = "<domain type='test'><name>foreign</name><memory>65536</memory><os><type>hvm</type></os></domain>"
    driver._connection().defineXML(foreign)
    driver.define_and_start(make_spec("/portal-images/x.qcow2"))

    assert [info.name for info in driver.list_domains()] == ["portal-i9"]


def test_destroy_undefines_a_stopped_domain(driver: LibvirtDriver) -> None:
    driver.define_and_start(make_spec("/portal-images/x.qcow2"))
    driver._connection().lookupByName("portal-i9").destroy()
    assert driver.domain_info(name="portal-i9").state == "shutoff"

    driver.destroy_domain(name="portal-i9")

    with pytest.raises(NotFound):
        driver.domain_info(name="portal-i9")


def test_missing_domain_is_not_found(driver: LibvirtDriver, node_uri: str) -> None:
    with pytest.raises(NotFound) as raised:
        driver.domain_info(name="ghost")

    assert raised.value.message == f"host {node_uri}: domain 'ghost' not found"
    driver.destroy_domain(name="ghost")  # idempotent


def test_a_taken_name_is_refused_and_the_existing_domain_survives(driver: LibvirtDriver) -> None:
    first = driver.define_and_start(make_spec("/portal-images/a.qcow2"))

    with pytest.raises(InvalidRequest, match="already exists") as raised:
        driver.define_and_start(make_spec("/portal-images/b.qcow2"))

    assert raised.value.retryable is False
    assert driver.domain_info(name="portal-i9") == first


def test_xml_libvirt_rejects_is_an_invalid_request(driver: LibvirtDriver, node_uri: str) -> None:
    with pytest.raises(InvalidRequest, match=f"host {node_uri}: cannot define domain 'portal-i9'"):
        driver.define_and_start(make_spec("/portal-images/x.qcow2", arch="nosucharch"))

    assert driver.list_domains() == []


def test_an_unsafe_spec_never_reaches_libvirt(driver: LibvirtDriver) -> None:
    with pytest.raises(InvalidRequest, match="invalid domain name"):
        driver.define_and_start(make_spec("/portal-images/x.qcow2", name="x'/><evil/>"))

    assert driver._conn is None


def test_a_failed_start_leaves_nothing_defined(driver: LibvirtDriver, monkeypatch: pytest.MonkeyPatch) -> None:
    def start_twice(domain: object) -> None:
        # The second create() fails for real ("already running"), after the domain did start.
        domain.create()  # type: ignore[attr-defined]
        domain.create()  # type: ignore[attr-defined]

    monkeypatch.setattr(LibvirtDriver, "_start", staticmethod(start_twice))

    with pytest.raises(InvalidRequest, match="cannot start domain 'portal-i9'"):
        driver.define_and_start(make_spec("/portal-images/x.qcow2"))

    with pytest.raises(NotFound):
        driver.domain_info(name="portal-i9")


# --- unreachable hosts --------------------------------------------------------------------------


def test_unreachable_host_is_retryable() -> None:
    driver = LibvirtDriver(UNREACHABLE_URI)

    with pytest.raises(HostUnreachable) as raised:
        driver.host_info()
    with pytest.raises(HostUnreachable):
        driver.list_domains()

    assert raised.value.retryable is True
    assert raised.value.message.startswith(f"host {UNREACHABLE_URI}: cannot connect:")


def test_a_broken_test_node_file_is_not_worth_retrying(tmp_path: Path) -> None:
    broken = tmp_path / "broken.xml"
    broken.write_text("<node><cpu>")

    with pytest.raises(HostUnreachable) as raised:
        LibvirtDriver(f"test://{broken}").host_info()

    assert raised.value.retryable is False


# --- real VMs under qemu:///system --------------------------------------------------------------

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
def system_host(tmp_path: Path) -> Iterator[tuple[LibvirtDriver, str]]:
    """A driver on qemu:///system and a unique prefix; everything under that prefix is removed after."""
    # scripts/test.sh installs and starts all of this; a missing piece is a failure, not a skip.
    if shutil.which("qemu-img") is None or shutil.which("virsh") is None:
        pytest.fail("qemu-img and virsh are needed (Debian packages qemu-utils, libvirt-clients)")
    driver = LibvirtDriver(SYSTEM_URI)
    try:
        driver.host_info()
    except HostUnreachable as exc:
        pytest.fail(f"{SYSTEM_URI} is not reachable (start libvirtd): {exc}")
    prefix = f"drvtest-{secrets.token_hex(4)}"
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
def test_real_vm_with_published_port(system_host: tuple[LibvirtDriver, str], tmp_path: Path) -> None:
    driver, prefix = system_host
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
    overlay = driver.create_overlay(pool=prefix, name=overlay_volume_name(TAGS), backing=base)
    clock.lap("overlay", started)
    assert volume_xml(driver, prefix, overlay.name).findtext("backingStore/path") == base.path

    spec = DomainSpec(
        name=prefix,
        domain_type="qemu",
        vcpus=1,
        memory_mib=128,
        disk_path=overlay.path,
        tags=TAGS,
        port_forwards=(PortForward(host_port=port, guest_port=22),),
    )
    started = time.perf_counter()
    info = driver.define_and_start(spec)
    clock.lap("define+start", started)
    assert info.state == "running"
    assert info.tags == TAGS
    assert info.vnc_port is not None
    assert info.vnc_port >= 5900
    assert info in driver.list_domains()
    _wait_for_listener(port)  # slirp's hostfwd listens on the host even before the guest boots

    started = time.perf_counter()
    driver.destroy_domain(name=prefix)
    clock.lap("destroy", started)
    driver.destroy_domain(name=prefix)
    with pytest.raises(NotFound):
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
        tags=TAGS,
    )

    with pytest.raises(InvalidRequest, match=f"cannot start domain '{prefix}'"):
        driver.define_and_start(spec)

    assert prefix not in _virsh_names("list", "--all", "--name")
