"""The demo appliance builder's steps one by one: packages, kernel modules, the initramfs and its guest files."""

from __future__ import annotations

import gzip
import stat
from pathlib import Path

import pytest

from catalog.demo_appliances import DEMO_PROBE, ApplianceBuildError
from catalog.demo_appliances.appliances import DEMO_APP, DEMO_DB, DEMO_WEB, DemoAppliance
from catalog.demo_appliances.guest import READY_MARKER, rootfs_files
from catalog.demo_appliances.initramfs import CpioEntry, build_initramfs, write_cpio
from catalog.demo_appliances.kernel import ROOT_MODULES, module_depends, module_index, resolve_modules
from catalog.demo_appliances.packages import parse_candidates, parse_kernel_dependency
from catalog.demo_appliances.records import RECORD_LOG_HEADER_BYTES, RECORD_LOG_MAX_BYTES, RECORD_MAX_BYTES
from catalog.demo_appliances.tools import find_tools
from tests.catalog.demo_packages import KERNEL, FakePackages, modinfo, read_cpio


def test_initramfs_holds_init_busybox_console_and_modules_in_load_order() -> None:
    modules = {"virtio": b"m1", "virtio_net": b"m2"}
    files = rootfs_files()
    entries = read_cpio(gzip.decompress(build_initramfs(DEMO_WEB, "1.0.0+abc", b"busybox-bytes", modules, files)))
    mode = entries["init"][0]
    assert stat.S_ISREG(mode)
    assert mode & 0o111
    assert entries["etc/udhcpc.script"][0] & 0o111
    for path, data in files.items():
        assert entries[path][1] == data
    assert entries["bin/busybox"][1] == b"busybox-bytes"
    assert stat.S_ISCHR(entries["dev/console"][0])
    assert entries["lib/modules/virtio_net.ko"][1] == b"m2"
    for folder in ("cidata", "www", "lib/demo", "proc", "sys", "dev"):
        assert stat.S_ISDIR(entries[folder][0]), folder
    settings = entries["etc/appliance.env"][1].decode().splitlines()
    assert "MODULES='virtio virtio_net'" in settings
    assert "VERSION=1.0.0+abc" in settings
    assert f"READY_MARKER={READY_MARKER}" in settings


@pytest.mark.parametrize(
    ("appliance", "expected"),
    [
        (DEMO_WEB, ["ROLE=web", "PORT=80", "UPSTREAM_ROLE=app", "UPSTREAM_PORT=8080"]),
        (DEMO_APP, ["ROLE=app", "PORT=8080", "UPSTREAM_ROLE=db", "UPSTREAM_PORT=5432"]),
        (DEMO_DB, ["ROLE=db", "PORT=5432", "UPSTREAM_ROLE=''", "UPSTREAM_PORT=''"]),
        (DEMO_PROBE, ["ROLE=probe", "PORT=80", "UPSTREAM_ROLE=''"]),
    ],
)
def test_each_appliance_is_told_its_role_port_and_upstream(appliance: DemoAppliance, expected: list[str]) -> None:
    entries = read_cpio(gzip.decompress(build_initramfs(appliance, "1", b"bb", {}, rootfs_files())))
    settings = entries["etc/appliance.env"][1].decode().splitlines()
    assert f"APPLIANCE={appliance.appliance}" in settings
    for line in expected:
        assert line in settings


def test_init_reads_the_config_drive_then_serves_and_stays() -> None:
    init = rootfs_files()["init"].decode()
    steps = [
        "load_modules $MODULES",
        "watch_power_button &",
        "if read_config_drive; then",
        "configure_stack_nic",
        'configure_public_nics "$PORTAL_MAC"',
        'configure_public_nics ""',
        '[ "$ROLE" = db ] && log_record_log',
        "publish_first_page",
        "if start_server; then",
        'log "$READY_MARKER $APPLIANCE port $PORT"',
        "serve_forever &",
        "while true; do sleep 3600; done",
    ]
    positions = [init.index(step) for step in steps]
    assert positions == sorted(positions)


def test_the_probe_serves_with_httpd_and_the_tiers_with_their_own_server() -> None:
    serve = rootfs_files()["lib/demo/serve.sh"].decode()
    start = serve[serve.index("start_server() {") :]
    start = start[: start.index("\n}\n")]
    assert '[ "$ROLE" = probe ]' in start
    assert 'httpd -p "$PORT" -h "$WWW"' in start
    assert 'nc -ll -p "$PORT" -e "$DEMO_LIB/handle-request"' in serve


def test_the_request_handler_and_init_are_executable_in_the_initramfs() -> None:
    entries = read_cpio(gzip.decompress(build_initramfs(DEMO_DB, "1", b"bb", {}, rootfs_files())))
    for path in ("init", "etc/udhcpc.script", "lib/demo/handle-request"):
        assert entries[path][0] & 0o111, path
    assert not entries["lib/demo/records.sh"][0] & 0o111


def test_every_appliance_is_told_the_record_caps() -> None:
    entries = read_cpio(gzip.decompress(build_initramfs(DEMO_DB, "1", b"bb", {}, rootfs_files())))
    settings = entries["etc/appliance.env"][1].decode().splitlines()
    assert f"RECORD_MAX_BYTES={RECORD_MAX_BYTES}" in settings
    assert f"RECORD_LOG_MAX_BYTES={RECORD_LOG_MAX_BYTES}" in settings
    assert f"RECORD_LOG_HEADER_BYTES={RECORD_LOG_HEADER_BYTES}" in settings


def test_the_guest_loads_the_config_drive_modules_after_their_dependencies(tmp_path: Path) -> None:
    packages = FakePackages(tmp_path)
    order = list(resolve_modules(module_index(packages.kernel_tree)))
    assert set(ROOT_MODULES) <= set(order)
    assert order.index("cdrom") < order.index("isofs")
    assert order.index("virtio") < order.index("virtio_blk")
    # The ACPI power button, as an input device the guest can read.
    assert {"button", "evdev"} <= set(order)


def test_initramfs_is_byte_identical_for_identical_inputs() -> None:
    files = rootfs_files()
    first = build_initramfs(DEMO_WEB, "1", b"bb", {"virtio": b"m"}, files)
    assert first == build_initramfs(DEMO_WEB, "1", b"bb", {"virtio": b"m"}, files)


def test_cpio_archive_is_newc_with_trailer() -> None:
    archive = write_cpio([CpioEntry("init", 0o100755, b"#!/bin/sh\n")])
    assert archive.startswith(b"070701")
    assert b"init\0" in archive
    assert b"TRAILER!!!\0" in archive
    assert len(archive) % 4 == 0


def test_modules_load_after_their_dependencies(tmp_path: Path) -> None:
    def module(name: str, depends: str) -> Path:
        path = tmp_path / f"{name}.ko"
        path.write_bytes(modinfo(depends))
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


def test_a_missing_module_is_named(tmp_path: Path) -> None:
    (tmp_path / "virtio_net.ko").write_bytes(modinfo("net_failover"))
    with pytest.raises(ApplianceBuildError, match="kernel module net_failover not found"):
        resolve_modules({"virtio_net": tmp_path / "virtio_net.ko"}, roots=("virtio_net",))


APT_POLICY = """linux-image-6.1.0-99-cloud-amd64:
  Installed: (none)
  Candidate: 6.1.99-1
  Version table:
     6.1.99-1 500
        500 http://deb.debian.org/debian bookworm/main amd64 Packages
busybox-static:
  Installed: (none)
  Candidate: 1:1.35.0-4+b3
  Version table:
     1:1.35.0-4+b3 500
"""


def test_apt_policy_gives_each_packages_candidate_version() -> None:
    assert parse_candidates(APT_POLICY, (KERNEL, "busybox-static")) == {
        KERNEL: "6.1.99-1",
        "busybox-static": "1:1.35.0-4+b3",
    }


def test_a_package_apt_cannot_install_is_named() -> None:
    policy = APT_POLICY.replace("Candidate: 6.1.99-1", "Candidate: (none)")
    with pytest.raises(ApplianceBuildError, match=f"not available from the configured apt sources: {KERNEL}"):
        parse_candidates(policy, (KERNEL, "busybox-static"))


def test_the_metapackage_names_the_versioned_kernel() -> None:
    depends = f"linux-image-cloud-amd64\n  Depends: {KERNEL}\n  Depends: linux-base\n"
    assert parse_kernel_dependency(depends) == KERNEL
    with pytest.raises(ApplianceBuildError, match="could not find the kernel package"):
        parse_kernel_dependency("linux-image-cloud-amd64\n  Depends: linux-base\n")


def test_missing_tools_are_named() -> None:
    with pytest.raises(ApplianceBuildError, match="missing tools: no-such-tool-here "):
        find_tools(("no-such-tool-here", "qemu-img"))
