"""Downloading a volume into a local file: the driver on libvirt's test driver, and the stream helpers.

The test driver keeps no volume data and cannot stream any; a real download under qemu:///system is
in tests/e2e/test_driver_life.py.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from provisioning.drivers.base import InvalidRequest, NotFound, Unsupported
from provisioning.drivers.domain_xml import build_volume_xml
from provisioning.drivers.download_stream import DOWNLOAD_CHUNK_BYTES, complete_local_file, receive_file
from provisioning.drivers.libvirt_driver import LibvirtDriver
from tests.provisioning.libvirt_doubles import NODE_POOL, Opener, PosingAsQemu, upload


class ChunkSource:
    """A stream that hands out ``chunks`` one per ``recv``, then ``b""``."""

    def __init__(self, *chunks: bytes | int) -> None:
        self.chunks = list(chunks)
        self.asked: list[int] = []

    def recv(self, nbytes: int) -> bytes | int:
        self.asked.append(nbytes)
        return self.chunks.pop(0) if self.chunks else b""


# --- bad input ----------------------------------------------------------------------------------


def test_a_missing_volume_is_not_found_and_writes_nothing(driver: LibvirtDriver, tmp_path: Path) -> None:
    dest = tmp_path / "copy.qcow2"

    with pytest.raises(NotFound, match=f"volume 'ghost.qcow2' not found in pool '{NODE_POOL}'"):
        driver.download_volume(pool=NODE_POOL, name="ghost.qcow2", dest_path=str(dest))

    assert list(tmp_path.iterdir()) == [tmp_path / "node.xml"]


def test_a_missing_pool_is_not_found(driver: LibvirtDriver, tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="pool 'ghost' not found"):
        driver.download_volume(pool="ghost", name="base.qcow2", dest_path=str(tmp_path / "copy"))


def test_a_local_folder_that_does_not_exist_is_refused(driver: LibvirtDriver, image: Path, tmp_path: Path) -> None:
    upload(driver, image)

    with pytest.raises(InvalidRequest) as raised:
        driver.download_volume(pool=NODE_POOL, name="base.qcow2", dest_path=str(tmp_path / "missing" / "copy"))

    assert raised.value.message == "cannot write the downloaded volume to a local file: No such file or directory"
    assert str(tmp_path) not in raised.value.message


def test_a_failed_download_leaves_no_file_and_keeps_an_older_one(node_uri: str, tmp_path: Path) -> None:
    dest = tmp_path / "copy.qcow2"
    dest.write_bytes(b"older copy")
    opener = Opener(wrap=PosingAsQemu)
    # A host that claims to store volume data, so the driver streams, and the test driver then refuses.
    with LibvirtDriver(node_uri, connect=opener) as driver:
        driver.host_info()
        opener.conn.storagePoolLookupByName(NODE_POOL).createXML(build_volume_xml("base.qcow2", 1024, "qcow2"), 0)

        with pytest.raises(Unsupported, match=r"cannot download volume 'base\.qcow2' from pool 'images'"):
            driver.download_volume(pool=NODE_POOL, name="base.qcow2", dest_path=str(dest))

    assert dest.read_bytes() == b"older copy"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["copy.qcow2", "node.xml"]


# --- the simulated host -------------------------------------------------------------------------


def test_a_simulated_volume_downloads_as_an_empty_file(driver: LibvirtDriver, image: Path, tmp_path: Path) -> None:
    upload(driver, image)
    dest = tmp_path / "copy.qcow2"
    calls: list[tuple[int, int]] = []

    written = driver.download_volume(
        pool=NODE_POOL, name="base.qcow2", dest_path=str(dest), progress=lambda done, total: calls.append((done, total))
    )

    assert written == 0
    assert dest.read_bytes() == b""
    assert calls == [(0, 0)]


def test_volume_info_reports_what_libvirt_says_is_allocated(driver: LibvirtDriver, opener: Opener) -> None:
    driver.host_info()
    # Without an <allocation> the test driver counts the whole capacity as allocated.
    xml = "<volume><name>full.qcow2</name><capacity>1048576</capacity><target><format type='qcow2'/></target></volume>"
    opener.conn.storagePoolLookupByName(NODE_POOL).createXML(xml, 0)

    found = driver.find_volume(pool=NODE_POOL, name="full.qcow2")

    assert found is not None
    assert found.allocation_bytes == 1048576
    assert driver.list_volumes(pool=NODE_POOL) == [found]


# --- receive_file -------------------------------------------------------------------------------


def test_receive_file_copies_every_chunk_and_reports_progress() -> None:
    source = ChunkSource(b"abc", b"de", b"f")
    target = io.BytesIO()
    calls: list[tuple[int, int]] = []

    written = receive_file(source, target, 6, lambda done, total: calls.append((done, total)))

    assert written == 6
    assert target.getvalue() == b"abcdef"
    assert calls == [(0, 6), (3, 6), (5, 6), (6, 6)]
    assert set(source.asked) == {DOWNLOAD_CHUNK_BYTES}


def test_receive_file_grows_the_total_when_more_arrives_than_announced() -> None:
    calls: list[tuple[int, int]] = []

    receive_file(ChunkSource(b"abcd"), io.BytesIO(), 2, lambda done, total: calls.append((done, total)))

    assert calls == [(0, 2), (4, 4)]


def test_receive_file_refuses_a_stream_that_answers_with_a_number() -> None:
    with pytest.raises(InvalidRequest, match=r"recv returned -2"):
        receive_file(ChunkSource(b"ab", -2), io.BytesIO(), 4, None)


def test_a_progress_callback_that_raises_stops_the_transfer() -> None:
    source = ChunkSource(b"ab", b"cd", b"ef")

    def cancel(done: int, _total: int) -> None:
        if done >= 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        receive_file(source, io.BytesIO(), 6, cancel)

    assert source.chunks == [b"cd", b"ef"]


# --- complete_local_file ------------------------------------------------------------------------


def test_a_complete_file_replaces_the_destination(tmp_path: Path) -> None:
    dest = tmp_path / "copy"
    dest.write_bytes(b"old")

    with complete_local_file(str(dest)) as target:
        target.write(b"new")
        assert dest.read_bytes() == b"old"  # nothing shows until the block ends

    assert dest.read_bytes() == b"new"
    assert list(tmp_path.iterdir()) == [dest]


def test_an_error_in_the_block_removes_the_partial_file(tmp_path: Path) -> None:
    dest = tmp_path / "copy"

    def write_half_then_break() -> None:
        with complete_local_file(str(dest)) as target:
            target.write(b"half")
            raise RuntimeError("stream broke")

    with pytest.raises(RuntimeError, match="stream broke"):
        write_half_then_break()

    assert list(tmp_path.iterdir()) == []


def test_a_local_write_error_is_an_invalid_request_without_the_path(tmp_path: Path) -> None:
    dest = tmp_path / "copy"

    with pytest.raises(InvalidRequest) as raised, complete_local_file(str(dest)):
        raise OSError(28, "No space left on device")

    assert raised.value.message == "cannot write the downloaded volume to a local file: No space left on device"
    assert list(tmp_path.iterdir()) == []
