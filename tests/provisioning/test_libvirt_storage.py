"""LibvirtDriver's pools, volumes and uploads against libvirt's test driver (one fresh host per test)."""

from __future__ import annotations

from pathlib import Path

import libvirt
import pytest

from provisioning.drivers.base import InvalidRequest, NotFound, Unsupported, VolumeInfo
from provisioning.drivers.libvirt_driver import LibvirtDriver
from provisioning.drivers.libvirt_errors import Subject, translate_error
from provisioning.drivers.upload_stream import send_file
from provisioning.naming import overlay_volume_name
from tests.provisioning.libvirt_doubles import NODE_POOL, NODE_POOL_PATH, TAGS, Opener, PosingAsQemu, upload, volume_xml

# --- pools --------------------------------------------------------------------------------------


def test_ensure_dir_pool_defines_starts_and_is_idempotent(driver: LibvirtDriver, opener: Opener) -> None:
    first = driver.ensure_dir_pool(name="portal", path="/srv/portal")
    again = driver.ensure_dir_pool(name="portal", path="/srv/portal/")

    assert first.name == "portal"
    assert first.path == "/srv/portal"
    assert first.capacity_bytes > 0
    assert again == first
    assert driver.pool_info(name="portal") == first
    pool = opener.conn.storagePoolLookupByName("portal")
    assert pool.isActive() == 1
    assert pool.autostart() == 1


def test_ensure_dir_pool_returns_an_existing_pool(driver: LibvirtDriver) -> None:
    assert driver.ensure_dir_pool(name=NODE_POOL, path=NODE_POOL_PATH).path == NODE_POOL_PATH


def test_ensure_dir_pool_starts_an_inactive_pool(driver: LibvirtDriver, opener: Opener) -> None:
    driver.pool_info(name=NODE_POOL)
    opener.conn.storagePoolLookupByName(NODE_POOL).destroy()

    driver.ensure_dir_pool(name=NODE_POOL, path=NODE_POOL_PATH)

    assert opener.conn.storagePoolLookupByName(NODE_POOL).isActive() == 1


def test_ensure_dir_pool_refuses_an_existing_pool_elsewhere(driver: LibvirtDriver) -> None:
    with pytest.raises(InvalidRequest, match=f"pool '{NODE_POOL}' already exists at '{NODE_POOL_PATH}'"):
        driver.ensure_dir_pool(name=NODE_POOL, path="/somewhere/else")


def test_missing_pool_is_not_found(driver: LibvirtDriver, node_uri: str) -> None:
    with pytest.raises(NotFound, match="pool 'nope' not found") as raised:
        driver.pool_info(name="nope")

    assert raised.value.message == "pool 'nope' not found"
    assert raised.value.detail.startswith(f"host {node_uri}: ")
    assert raised.value.retryable is False


def test_delete_pool_is_idempotent(driver: LibvirtDriver) -> None:
    driver.ensure_dir_pool(name="scratch", path="/srv/scratch")

    driver.delete_pool(name="scratch")
    driver.delete_pool(name="scratch")

    with pytest.raises(NotFound, match="pool 'scratch' not found"):
        driver.pool_info(name="scratch")


def test_delete_pool_refuses_a_pool_with_volumes(driver: LibvirtDriver, image: Path) -> None:
    upload(driver, image)

    with pytest.raises(InvalidRequest, match="still holds volumes"):
        driver.delete_pool(name=NODE_POOL)
    assert driver.pool_info(name=NODE_POOL).name == NODE_POOL


# --- volumes ------------------------------------------------------------------------------------


def test_upload_overlay_and_delete(driver: LibvirtDriver, image: Path, opener: Opener) -> None:
    calls: list[tuple[int, int]] = []
    size = image.stat().st_size

    base = upload(driver, image, "base.raw", "raw", progress=lambda done, total: calls.append((done, total)))

    # The test driver keeps no data, so nothing is streamed: progress is complete at once.
    assert calls == [(size, size)]
    assert base == VolumeInfo(
        name="base.raw",
        path=f"{NODE_POOL_PATH}/base.raw",
        capacity_bytes=64 * 1024 * 1024,  # the virtual size asked for, not the file's size
        disk_format="raw",
    )
    assert driver.find_volume(pool=NODE_POOL, name="base.raw") == base

    name = overlay_volume_name(TAGS)
    overlay = driver.create_overlay(pool=NODE_POOL, name=name, backing=base)

    assert overlay.capacity_bytes == base.capacity_bytes
    assert overlay.disk_format == "qcow2"
    stored = volume_xml(opener.conn, NODE_POOL, name)
    assert stored.findtext("backingStore/path") == base.path
    assert stored.find("backingStore/format").attrib["type"] == "raw"
    assert [volume.name for volume in driver.list_volumes(pool=NODE_POOL)] == ["base.raw", name]

    driver.delete_volume(pool=NODE_POOL, name=name)
    driver.delete_volume(pool=NODE_POOL, name=name)

    assert driver.find_volume(pool=NODE_POOL, name=name) is None
    assert [volume.name for volume in driver.list_volumes(pool=NODE_POOL)] == ["base.raw"]


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


def test_upload_without_upload_support_is_unsupported_and_leaves_no_volume(node_uri: str, image: Path) -> None:
    # Taken for a host that stores volume data, the test driver is asked to stream, and it cannot.
    with LibvirtDriver(node_uri, connect=Opener(wrap=PosingAsQemu)) as driver:
        with pytest.raises(
            Unsupported, match=r"cannot upload an image into volume 'base\.qcow2': the host does not"
        ) as raised:
            upload(driver, image)

        assert "virStorageVolUpload" in raised.value.detail
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
    with pytest.raises(NotFound, match="pool 'nope' not found"):
        driver.upload_volume(
            pool="nope", name="v.qcow2", source_path=str(image), disk_format="qcow2", capacity_bytes=1024
        )


def test_missing_volumes(driver: LibvirtDriver, node_uri: str) -> None:
    assert driver.find_volume(pool=NODE_POOL, name="ghost.qcow2") is None
    driver.delete_volume(pool=NODE_POOL, name="ghost.qcow2")  # idempotent

    with pytest.raises(NotFound, match="pool 'nope' not found"):
        driver.find_volume(pool="nope", name="ghost.qcow2")
    with pytest.raises(NotFound, match="pool 'nope' not found"):
        driver.delete_volume(pool="nope", name="ghost.qcow2")
    missing = VolumeInfo(name="ghost", path="/nowhere/ghost", capacity_bytes=1024, disk_format="qcow2")
    with pytest.raises(NotFound, match="pool 'nope' not found"):
        driver.create_overlay(pool="nope", name="child.qcow2", backing=missing)


def test_missing_volume_message_names_host_volume_and_pool(driver: LibvirtDriver, opener: Opener) -> None:
    # No public method reports a missing volume (find returns None, delete ignores it), but a volume
    # can vanish between two calls inside one; that error must read well too.
    driver.pool_info(name=NODE_POOL)
    with pytest.raises(libvirt.libvirtError, match=r"ghost\.qcow2") as raised:
        opener.conn.storagePoolLookupByName(NODE_POOL).storageVolLookupByName("ghost.qcow2")

    subject = Subject(pool=NODE_POOL, volume="ghost.qcow2")
    error = translate_error(raised.value, uri="test:///elsewhere", action="read volume", subject=subject)

    assert isinstance(error, NotFound)
    assert error.message == f"volume 'ghost.qcow2' not found in pool '{NODE_POOL}'"
    assert error.detail.startswith("host test:///elsewhere: cannot read volume: ")
    assert error.retryable is False


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

    send_file(stream, str(image), size, lambda done, total: calls.append((done, total)))

    assert bytes(stream.received) == image.read_bytes()
    assert calls == [(0, size), (1 << 20, size), (2 << 20, size), (size, size)]
