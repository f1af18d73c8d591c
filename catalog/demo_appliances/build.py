"""Runs the steps: packages, kernel modules, initramfs, disk for each appliance, then the feed.

An appliance whose inputs have not changed since the last build (``manifest``) is reused, and
the packages are only fetched when at least one image needs building.
"""

from __future__ import annotations

import fcntl
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from catalog.demo_appliances.appliances import DemoAppliance, demo_appliances
from catalog.demo_appliances.disk import build_disk
from catalog.demo_appliances.feed import write_feed
from catalog.demo_appliances.guest import rootfs_files
from catalog.demo_appliances.initramfs import build_initramfs
from catalog.demo_appliances.kernel import find_kernel, module_index, resolve_modules
from catalog.demo_appliances.manifest import input_hash, is_current, load_manifest, new_entry, save_manifest
from catalog.demo_appliances.packages import AptPackages, BuildInputs, PackageSource
from catalog.demo_appliances.tools import ApplianceBuildError, Log, Tools, find_tools


@dataclass(frozen=True)
class Payload:
    """The parts shared by every appliance, unpacked once per build."""

    kernel: Path
    busybox: bytes
    modules: dict[str, bytes]
    files: dict[str, bytes]


@contextmanager
def locked(work_dir: Path) -> Iterator[None]:
    """Serialise builders sharing a work directory so they do not download the same packages twice."""
    work_dir.mkdir(parents=True, exist_ok=True)
    with (work_dir / ".lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def prepare_payload(packages: PackageSource, inputs: BuildInputs, files: dict[str, bytes]) -> Payload:
    kernel_tree = packages.unpacked(inputs.kernel)
    busybox = packages.unpacked(inputs.busybox) / "bin" / "busybox"
    if not busybox.is_file():
        raise ApplianceBuildError(f"{inputs.busybox.name} has no bin/busybox")
    return Payload(
        kernel=find_kernel(kernel_tree),
        busybox=busybox.read_bytes(),
        modules=resolve_modules(module_index(kernel_tree)),
        files=files,
    )


def build_appliance(tools: Tools, payload: Payload, appliance: DemoAppliance, version: str, out_dir: Path) -> None:
    with tempfile.TemporaryDirectory(prefix=".initrd-", dir=out_dir) as scratch:
        initrd = Path(scratch) / "initrd.gz"
        initrd.write_bytes(build_initramfs(appliance, version, payload.busybox, payload.modules, payload.files))
        build_disk(tools, payload.kernel, initrd, appliance.appliance, out_dir / appliance.filename)


def build_demo_appliances(
    *,
    out_dir: Path,
    base_url: str,
    work_dir: Path | None = None,
    log: Log = print,
    packages: PackageSource | None = None,
    include_probe: bool = False,
) -> Path:
    """Build (or reuse) the images and write OUT_DIR/feed.xml; return the feed path.

    ``packages`` defaults to the machine's apt sources, cached in ``work_dir`` (OUT_DIR/.work).
    ``include_probe`` adds the test-only network probe to the images and the feed.
    """
    appliances = demo_appliances(include_probe=include_probe)
    # Read once, so every image of this build is made from, and hashed over, the same scripts.
    files = rootfs_files()
    # Absolute, because some steps run with a scratch directory as their working directory.
    out_dir = Path(out_dir).resolve()
    work_dir = Path(work_dir).resolve() if work_dir is not None else out_dir / ".work"
    tools = find_tools()
    out_dir.mkdir(parents=True, exist_ok=True)
    with locked(work_dir):
        packages = packages or AptPackages(tools=tools, work_dir=work_dir, log=log)
        inputs = packages.resolve()
        log(f"kernel {inputs.kernel.name} {inputs.kernel.version}, busybox {inputs.busybox.version}")
        manifest = load_manifest(out_dir)
        payload: Payload | None = None
        for appliance in appliances:
            digest = input_hash(inputs, appliance, files)
            if is_current(manifest.get(appliance.appliance), digest, out_dir / appliance.filename):
                log(f"{appliance.filename} is up to date")
                continue
            payload = payload or prepare_payload(packages, inputs, files)
            entry = new_entry(appliance, digest)
            log(f"building {appliance.filename} ({entry['version']})")
            build_appliance(tools, payload, appliance, entry["version"], out_dir)
            manifest[appliance.appliance] = entry
            save_manifest(out_dir, manifest)
    feed = write_feed(out_dir, manifest, base_url, appliances)
    log(f"wrote {feed}")
    return feed
