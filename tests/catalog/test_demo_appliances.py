"""The demo appliance builder: images, feed and reuse, checked without booting or downloading anything.

The build runs on package trees made here (``demo_packages``: a stand-in kernel, modules and
busybox), so it needs mtools, syslinux and qemu-img but neither apt sources nor the network, and
writes only into ``tmp_path``. The end-to-end tests build from the real Debian packages and boot
the result.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from catalog.demo_appliances import DEMO_APPLIANCES, DEMO_PROBE
from catalog.demo_appliances.appliances import DEMO_DB
from catalog.demo_appliances.guest import rootfs_files
from catalog.demo_appliances.manifest import input_hash
from catalog.demo_appliances.records import MIB, RECORD_LOG_HEADER_BYTES, RECORD_LOG_MAX_BYTES, record_log_reserve_mib
from catalog.vmcast import NAMESPACE
from tests.catalog.demo_packages import BASE_URL, FakePackages, build, feed_appliances


@pytest.fixture(scope="module")
def packages(tmp_path_factory: pytest.TempPathFactory) -> FakePackages:
    return FakePackages(tmp_path_factory.mktemp("packages"))


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, packages: FakePackages) -> Path:
    out_dir = tmp_path_factory.mktemp("demo") / "out"
    build(out_dir, packages)
    return out_dir


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_builds_three_standalone_qcow2_images(built: Path) -> None:
    for appliance in DEMO_APPLIANCES:
        image = built / appliance.filename
        info = json.loads(
            subprocess.run(
                ["qemu-img", "info", "-f", "qcow2", "--output=json", str(image)],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
        assert info["format"] == "qcow2"
        # The smallest filesystem mformat makes FAT16 on, and the record log's space after it.
        assert info["virtual-size"] == (32 + record_log_reserve_mib()) * MIB
        assert "backing-filename" not in info
        assert "full-backing-filename" not in info


def test_the_record_log_lies_after_the_filesystem_where_the_kernel_command_line_says(
    built: Path, tmp_path: Path
) -> None:
    raw = tmp_path / "disk.raw"
    image = built / DEMO_DB.filename
    subprocess.run(["qemu-img", "convert", "-f", "qcow2", "-O", "raw", str(image), str(raw)], check=True)
    config = subprocess.run(
        ["mtype", "-i", str(raw), "::/syslinux.cfg"], capture_output=True, text=True, check=True
    ).stdout
    (offset,) = [int(word.split("=")[1]) for word in config.split() if word.startswith("demo.record_log=")]
    boot_sector = raw.read_bytes()[:512]
    # FAT16 with more than 65535 sectors keeps the count in the 32-bit field of the boot sector.
    sectors = int.from_bytes(boot_sector[19:21], "little") or int.from_bytes(boot_sector[32:36], "little")
    assert offset == sectors * 512
    assert raw.stat().st_size >= offset + RECORD_LOG_HEADER_BYTES + RECORD_LOG_MAX_BYTES
    # A fresh log: nothing written there, so the guest reads it as empty.
    assert raw.read_bytes()[offset:] == bytes(raw.stat().st_size - offset)


def test_feed_describes_each_image(built: Path) -> None:
    # The feed was just written by the build under test, not fetched from anywhere.
    channel = ET.parse(built / "feed.xml").getroot().find("channel")  # noqa: S314
    assert channel is not None
    items = channel.findall("item")
    assert len(items) == 3
    by_appliance = {item.findtext(f"{{{NAMESPACE}}}appliance"): item for item in items}
    manifest = json.loads((built / "manifest.json").read_text())
    for appliance in DEMO_APPLIANCES:
        item = by_appliance[appliance.appliance]
        image = built / appliance.filename
        enclosure = item.find("enclosure")
        assert enclosure is not None
        assert enclosure.get("url") == f"{BASE_URL.rstrip('/')}/{appliance.filename}"
        assert int(enclosure.get("length", "-1")) == image.stat().st_size
        assert item.findtext(f"{{{NAMESPACE}}}sha256") == sha256_of(image)
        assert item.findtext(f"{{{NAMESPACE}}}version") == manifest[appliance.appliance]["version"]
        assert item.findtext(f"{{{NAMESPACE}}}format") == "qcow2"
        assert item.findtext(f"{{{NAMESPACE}}}port") == str(appliance.port)
        assert item.findtext(f"{{{NAMESPACE}}}role") == appliance.role
        assert item.findtext(f"{{{NAMESPACE}}}minram") == "128"
        # Declared, so a launch claims the disk before the image is downloaded.
        assert item.findtext(f"{{{NAMESPACE}}}virtualsize") == str((32 + record_log_reserve_mib()) * MIB)


def test_second_build_reuses_outputs_without_unpacking_packages(built: Path, packages: FakePackages) -> None:
    outputs = [built / appliance.filename for appliance in DEMO_APPLIANCES] + [built / "feed.xml"]
    before = {path: path.stat().st_mtime_ns for path in outputs}
    feed_before = (built / "feed.xml").read_bytes()
    packages.unpacked_packages.clear()
    lines: list[str] = []

    build(built, packages, lines)

    assert {path: path.stat().st_mtime_ns for path in outputs} == before
    assert (built / "feed.xml").read_bytes() == feed_before
    assert packages.unpacked_packages == []
    assert not any(line.startswith(("building", "downloading", "unpacking")) for line in lines)
    assert [line for line in lines if line.endswith("is up to date")] == [
        f"{appliance.filename} is up to date" for appliance in DEMO_APPLIANCES
    ]


def test_a_new_kernel_publishes_new_versions(tmp_path: Path) -> None:
    out_dir = tmp_path / "out"
    build(out_dir, FakePackages(tmp_path / "old"))
    old = json.loads((out_dir / "manifest.json").read_text())
    build(out_dir, FakePackages(tmp_path / "new", kernel_version="6.1.100-1"))
    new = json.loads((out_dir / "manifest.json").read_text())
    for appliance in DEMO_APPLIANCES:
        assert new[appliance.appliance]["version"] != old[appliance.appliance]["version"]
        assert new[appliance.appliance]["version"].startswith("1.0.0+")


def test_the_probe_is_built_and_listed_only_when_asked_for(tmp_path: Path) -> None:
    out_dir = tmp_path / "out"
    build(out_dir, FakePackages(tmp_path / "packages"), include_probe=True)
    assert feed_appliances(out_dir) == ["demo-web", "demo-app", "demo-db", "demo-probe"]
    assert (out_dir / DEMO_PROBE.filename).is_file()

    # The same folder built again without it: the image may stay, the catalog must not see it.
    lines: list[str] = []
    build(out_dir, FakePackages(tmp_path / "again"), lines)
    assert feed_appliances(out_dir) == ["demo-web", "demo-app", "demo-db"]
    assert not any(line.startswith("building") for line in lines)


def test_the_demo_feed_has_no_probe(built: Path) -> None:
    assert feed_appliances(built) == ["demo-web", "demo-app", "demo-db"]
    assert not (built / DEMO_PROBE.filename).exists()


def test_a_changed_guest_script_changes_every_cache_key(packages: FakePackages) -> None:
    files = rootfs_files()
    changed = {**files, "lib/demo/serve.sh": files["lib/demo/serve.sh"] + b"\n# changed\n"}
    added = {**files, "etc/motd": b"hello"}
    for appliance in (*DEMO_APPLIANCES, DEMO_PROBE):
        digest = input_hash(packages.inputs, appliance, files)
        assert digest == input_hash(packages.inputs, appliance, dict(files))
        assert digest != input_hash(packages.inputs, appliance, changed)
        assert digest != input_hash(packages.inputs, appliance, added)


def test_each_appliance_has_its_own_cache_key(packages: FakePackages) -> None:
    files = rootfs_files()
    digests = {input_hash(packages.inputs, appliance, files) for appliance in (*DEMO_APPLIANCES, DEMO_PROBE)}
    assert len(digests) == 4


def test_changed_scripts_rebuild_the_images(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out_dir = tmp_path / "out"
    build(out_dir, FakePackages(tmp_path / "packages"))
    before = json.loads((out_dir / "manifest.json").read_text())
    files = rootfs_files()
    monkeypatch.setattr(
        "catalog.demo_appliances.build.rootfs_files", lambda: {**files, "init": files["init"] + b"\n# changed\n"}
    )
    lines: list[str] = []
    build(out_dir, FakePackages(tmp_path / "again"), lines)
    after = json.loads((out_dir / "manifest.json").read_text())
    assert len([line for line in lines if line.startswith("building")]) == 3
    for appliance in DEMO_APPLIANCES:
        assert after[appliance.appliance]["version"] != before[appliance.appliance]["version"]
