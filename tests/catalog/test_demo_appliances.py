"""The demo appliance builder: images, feed and reuse, checked without booting anything."""

from __future__ import annotations

import hashlib
import json
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from catalog.demo_appliances import (
    DEMO_APPLIANCES,
    ApplianceBuildError,
    CpioEntry,
    build_demo_appliances,
    find_tools,
    module_depends,
    resolve_modules,
    write_cpio,
)
from catalog.vmcast import NAMESPACE

# Shared across runs so only the first run downloads the kernel and busybox packages.
CACHE_DIR = Path(__file__).resolve().parents[2] / "var" / "cache" / "demo-build"
BASE_URL = "http://127.0.0.1:8000/demo/"


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    out_dir = tmp_path_factory.mktemp("demo-out")
    build_demo_appliances(out_dir=out_dir, base_url=BASE_URL, work_dir=CACHE_DIR, log=lambda _line: None)
    return out_dir


def test_builds_three_standalone_qcow2_images(built: Path) -> None:
    for appliance in DEMO_APPLIANCES:
        image = built / appliance.filename
        assert image.is_file()
        info = json.loads(
            subprocess.run(
                ["qemu-img", "info", "-f", "qcow2", "--output=json", str(image)],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
        assert info["format"] == "qcow2"
        assert "backing-filename" not in info
        assert "full-backing-filename" not in info


def test_feed_describes_each_image(built: Path) -> None:
    # The feed was just written by the build under test, not fetched from anywhere.
    channel = ET.parse(built / "feed.xml").getroot().find("channel")  # noqa: S314
    assert channel is not None
    items = channel.findall("item")
    assert len(items) == 3
    by_appliance = {item.findtext(f"{{{NAMESPACE}}}appliance"): item for item in items}
    for appliance in DEMO_APPLIANCES:
        item = by_appliance[appliance.appliance]
        image = built / appliance.filename
        enclosure = item.find("enclosure")
        assert enclosure is not None
        assert enclosure.get("url") == f"{BASE_URL.rstrip('/')}/{appliance.filename}"
        assert int(enclosure.get("length", "-1")) == image.stat().st_size
        assert item.findtext(f"{{{NAMESPACE}}}sha256") == sha256_of(image)
        assert item.findtext(f"{{{NAMESPACE}}}format") == "qcow2"
        assert item.findtext(f"{{{NAMESPACE}}}port") == str(appliance.port)
        assert item.findtext(f"{{{NAMESPACE}}}role") == appliance.role
        assert int(item.findtext(f"{{{NAMESPACE}}}minram", "0")) >= 64


def test_second_build_reuses_outputs(built: Path) -> None:
    outputs = [built / appliance.filename for appliance in DEMO_APPLIANCES] + [built / "feed.xml"]
    before = {path: path.stat().st_mtime_ns for path in outputs}
    feed_before = (built / "feed.xml").read_bytes()
    lines: list[str] = []

    build_demo_appliances(out_dir=built, base_url=BASE_URL, work_dir=CACHE_DIR, log=lines.append)

    assert {path: path.stat().st_mtime_ns for path in outputs} == before
    assert (built / "feed.xml").read_bytes() == feed_before
    assert not any(line.startswith(("building", "downloading")) for line in lines)


def test_cpio_archive_is_newc_with_trailer() -> None:
    archive = write_cpio([CpioEntry("init", 0o100755, b"#!/bin/sh\n")])
    assert archive.startswith(b"070701")
    assert b"init\0" in archive
    assert b"TRAILER!!!\0" in archive
    assert len(archive) % 4 == 0


def test_modules_load_after_their_dependencies(tmp_path: Path) -> None:
    def module(name: str, depends: str) -> Path:
        path = tmp_path / f"{name}.ko"
        path.write_bytes(b"\x7fELF\0license=GPL\0depends=" + depends.encode() + b"\0vermagic=x\0")
        return path

    index = {
        "virtio_net": module("virtio_net", "virtio,net_failover"),
        "net_failover": module("net_failover", "failover"),
        "failover": module("failover", ""),
        "virtio": module("virtio", ""),
    }
    assert module_depends(index["virtio_net"].read_bytes()) == ["virtio", "net_failover"]
    assert list(resolve_modules(index, roots=("virtio_net",))) == [
        "virtio",
        "failover",
        "net_failover",
        "virtio_net",
    ]


def test_missing_tools_are_named() -> None:
    with pytest.raises(ApplianceBuildError, match="no-such-tool-here"):
        find_tools(("no-such-tool-here", "qemu-img"))
