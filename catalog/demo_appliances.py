"""Build the three demo appliances (web, app, db) and the VMcast that publishes them.

Each appliance is a tiny qcow2 disk: a FAT filesystem made bootable by syslinux that holds a
Debian cloud kernel and a busybox initramfs. The initramfs loads the virtio network drivers,
takes a DHCP lease and serves one HTTP page on the tier's port, which is enough for the portal
to prove a stack came up without shipping real databases or app servers.

Everything is done without root: packages are fetched with ``apt-get download`` and unpacked
with ``dpkg-deb -x``, the cpio archive is written here (so device nodes need no mknod), and the
disk is assembled with mtools. This module does not import Django so it can run anywhere.
"""

from __future__ import annotations

import fcntl
import gzip
import hashlib
import io
import json
import lzma
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from catalog.vmcast import FeedItem, render_feed

# Bump whenever a change here alters the images, so cached outputs are rebuilt.
BUILDER_VERSION = "1"
BASE_VERSION = "1.0.0"

KERNEL_METAPACKAGE = "linux-image-cloud-amd64"
BUSYBOX_PACKAGE = "busybox-static"

# Only the modules the guest needs on top of the built-in drivers: the cloud kernel builds
# virtio as modules, and the disk is read by the BIOS rather than the kernel, so no block driver.
ROOT_MODULES = ("virtio_pci", "virtio_net")

# Under TCG the guest serves its page with 72 MiB and never starts its kernel with 64 MiB;
# 128 MiB keeps a comfortable margin above that floor.
MIN_RAM_MIB = 128

MANIFEST_NAME = "manifest.json"
FEED_NAME = "feed.xml"
READY_MARKER = "DEMO-APPLIANCE-READY"
KERNEL_CMDLINE = "console=ttyS0 quiet loglevel=3 panic=10"

REQUIRED_TOOLS = ("apt-get", "apt-cache", "dpkg-deb", "mformat", "mcopy", "syslinux", "qemu-img")

MIB = 1024 * 1024


class ApplianceBuildError(RuntimeError):
    """A tool, package or build step the demo appliances depend on is missing or failed."""


@dataclass(frozen=True)
class DemoAppliance:
    appliance: str
    role: str
    port: int
    title: str

    @property
    def filename(self) -> str:
        return f"{self.appliance}.qcow2"


DEMO_APPLIANCES = (
    DemoAppliance(appliance="demo-web", role="web", port=80, title="Demo web tier"),
    DemoAppliance(appliance="demo-app", role="app", port=8080, title="Demo app tier"),
    DemoAppliance(appliance="demo-db", role="db", port=5432, title="Demo db tier"),
)


@dataclass(frozen=True)
class Package:
    name: str
    version: str


@dataclass(frozen=True)
class BuildInputs:
    kernel: Package
    busybox: Package


Log = Callable[[str], None]


# --- guest files -------------------------------------------------------------------------------

INIT_TEMPLATE = """#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1
hostname {appliance}

for m in {modules}; do
    insmod /lib/modules/$m.ko || echo "{appliance}: insmod $m failed"
done
ifconfig lo 127.0.0.1 up

# Stays in the background after the first lease so it can renew it.
if ! udhcpc -i eth0 -s /etc/udhcpc.script -t 10 -T 1 -A 1 -n; then
    # The address qemu's user-mode network hands out, so the page is still reachable.
    echo "{appliance}: DHCP failed, using 10.0.2.15"
    ifconfig eth0 10.0.2.15 netmask 255.255.255.0 up
    route add default gw 10.0.2.2
fi

if httpd -p {port} -h /www; then
    echo "{ready} {appliance} port {port}"
else
    echo "{appliance}: httpd failed to start on port {port}"
fi

# PID 1 must never exit or the kernel panics.
while true; do sleep 3600; done
"""

UDHCPC_SCRIPT = """#!/bin/sh
case "$1" in
    deconfig)
        ifconfig "$interface" 0.0.0.0 up
        ;;
    bound|renew)
        ifconfig "$interface" "$ip" netmask "${subnet:-255.255.255.0}" up
        if [ -n "$router" ]; then
            while route del default gw 0.0.0.0 dev "$interface" 2>/dev/null; do :; done
            for gw in $router; do route add default gw "$gw" dev "$interface"; done
        fi
        ;;
esac
exit 0
"""

PAGE_TEMPLATE = """<!DOCTYPE html>
<html>
<head><title>{appliance}</title></head>
<body>
<h1>{appliance} appliance</h1>
<p>Role: {role}. Version: {version}.</p>
</body>
</html>
"""

SYSLINUX_CFG = f"""DEFAULT demo
PROMPT 0
TIMEOUT 0
LABEL demo
    LINUX /vmlinuz
    INITRD /initrd.gz
    APPEND {KERNEL_CMDLINE}
"""


def render_init(appliance: DemoAppliance, modules: tuple[str, ...]) -> str:
    return INIT_TEMPLATE.format(
        appliance=appliance.appliance, port=appliance.port, modules=" ".join(modules), ready=READY_MARKER
    )


def render_page(appliance: DemoAppliance, version: str) -> str:
    return PAGE_TEMPLATE.format(appliance=appliance.appliance, role=appliance.role, version=version)


# --- subprocesses and tools --------------------------------------------------------------------


def find_tools(names: tuple[str, ...] = REQUIRED_TOOLS) -> dict[str, str]:
    """Resolve each tool to an absolute path, naming every missing one in a single error."""
    found = {name: shutil.which(name) for name in names}
    missing = sorted(name for name, path in found.items() if path is None)
    if missing:
        raise ApplianceBuildError(
            f"missing tools: {', '.join(missing)} "
            "(install the Debian packages apt, dpkg, mtools, syslinux, syslinux-common and qemu-utils)"
        )
    return {name: path for name, path in found.items() if path is not None}


def run(args: list[str], *, cwd: Path | None = None) -> str:
    """Run a command from a fixed argument list and return stdout, or raise with its stderr."""
    try:
        result = subprocess.run(args, cwd=cwd, capture_output=True, text=True, check=False)  # noqa: S603
    except OSError as exc:
        raise ApplianceBuildError(f"could not run {args[0]}: {exc}") from exc
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip()
        raise ApplianceBuildError(f"{Path(args[0]).name} failed (exit {result.returncode}): {' '.join(args)}\n{detail}")
    return result.stdout


# --- package resolution and cache --------------------------------------------------------------


@dataclass(frozen=True)
class Apt:
    """apt-cache and apt-get command prefixes that keep apt's package cache in the work directory.

    Docker-style images disable apt's on-disk cache, which makes every apt-cache call re-parse
    all package lists (about half a second each); a private cache makes repeat calls instant,
    and apt rebuilds it by itself whenever the lists change.
    """

    cache: tuple[str, ...]
    get: tuple[str, ...]

    @classmethod
    def create(cls, tools: dict[str, str], cache_dir: Path) -> Apt:
        cache_dir.mkdir(parents=True, exist_ok=True)
        options = (
            "-o",
            f"Dir::Cache::pkgcache={cache_dir / 'pkgcache.bin'}",
            "-o",
            f"Dir::Cache::srcpkgcache={cache_dir / 'srcpkgcache.bin'}",
        )
        return cls(cache=(tools["apt-cache"], *options), get=(tools["apt-get"], *options))


def candidate_versions(apt: Apt, packages: tuple[str, ...]) -> dict[str, str]:
    """The version apt would install for each package, from a single apt-cache call."""
    versions: dict[str, str] = {}
    current = ""
    for line in run([*apt.cache, "policy", *packages]).splitlines():
        if line and not line[0].isspace() and line.rstrip().endswith(":"):
            current = line.rstrip()[:-1]
            continue
        key, _, value = line.strip().partition(":")
        if key == "Candidate" and value.strip() not in ("", "(none)"):
            versions[current] = value.strip()
    missing = [package for package in packages if package not in versions]
    if missing:
        raise ApplianceBuildError(f"not available from the configured apt sources: {', '.join(missing)}")
    return versions


def kernel_package_name(apt: Apt) -> str:
    """The versioned kernel package the metapackage currently points at."""
    output = run([*apt.cache, "depends", KERNEL_METAPACKAGE])
    for line in output.splitlines():
        key, _, value = line.strip().partition(":")
        name = value.strip()
        if key == "Depends" and name.startswith("linux-image-") and name != KERNEL_METAPACKAGE:
            return name
    raise ApplianceBuildError(f"could not find the kernel package {KERNEL_METAPACKAGE} depends on")


def resolve_inputs(apt: Apt) -> BuildInputs:
    kernel_name = kernel_package_name(apt)
    versions = candidate_versions(apt, (kernel_name, BUSYBOX_PACKAGE))
    return BuildInputs(
        kernel=Package(kernel_name, versions[kernel_name]),
        busybox=Package(BUSYBOX_PACKAGE, versions[BUSYBOX_PACKAGE]),
    )


def cache_key(package: Package) -> str:
    # Debian versions may contain ':' (epochs), awkward in file names.
    return f"{package.name}_{package.version.replace(':', '%3a')}"


def publish_dir(staging: Path, target: Path) -> None:
    """Move a finished directory into place; a concurrent builder that got there first wins."""
    try:
        staging.rename(target)
    except OSError:
        if not target.is_dir():
            raise
        shutil.rmtree(staging, ignore_errors=True)


def download_deb(apt: Apt, package: Package, debs_dir: Path, log: Log) -> Path:
    target = debs_dir / cache_key(package)
    if target.is_dir() and any(target.glob("*.deb")):
        return next(target.glob("*.deb"))
    log(f"downloading {package.name} {package.version}")
    debs_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".download-", dir=debs_dir))
    try:
        run([*apt.get, "download", f"{package.name}={package.version}"], cwd=staging)
        if not any(staging.glob("*.deb")):
            raise ApplianceBuildError(f"apt-get download {package.name}={package.version} produced no .deb")
        publish_dir(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return next(target.glob("*.deb"))


def unpack_deb(tools: dict[str, str], package: Package, deb: Path, tree_dir: Path) -> Path:
    target = tree_dir / cache_key(package)
    if target.is_dir():
        return target
    tree_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".unpack-", dir=tree_dir))
    try:
        run([tools["dpkg-deb"], "-x", str(deb), str(staging)])
        publish_dir(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def fetch_tree(tools: dict[str, str], apt: Apt, package: Package, work_dir: Path, log: Log) -> Path:
    tree = work_dir / "trees" / cache_key(package)
    if tree.is_dir():
        return tree
    deb = download_deb(apt, package, work_dir / "debs", log)
    log(f"unpacking {deb.name}")
    return unpack_deb(tools, package, deb, work_dir / "trees")


# --- kernel and modules ------------------------------------------------------------------------


def find_kernel(tree: Path) -> Path:
    kernels = sorted((tree / "boot").glob("vmlinuz-*"))
    if not kernels:
        raise ApplianceBuildError(f"no boot/vmlinuz-* in the unpacked kernel package at {tree}")
    return kernels[0]


def module_index(tree: Path) -> dict[str, Path]:
    """Map module names (as modinfo spells them) to their files in the kernel tree."""
    index: dict[str, Path] = {}
    for path in (tree / "lib" / "modules").rglob("*.ko*"):
        name = path.name.split(".ko", 1)[0].replace("-", "_")
        index[name] = path
    return index


def read_module(path: Path) -> bytes:
    """Module bytes as insmod needs them; busybox insmod cannot decompress on its own."""
    if path.name.endswith(".ko"):
        return path.read_bytes()
    if path.name.endswith(".ko.xz"):
        return lzma.decompress(path.read_bytes())
    if path.name.endswith(".ko.gz"):
        return gzip.decompress(path.read_bytes())
    raise ApplianceBuildError(f"unsupported module compression: {path.name}")


def module_depends(data: bytes) -> list[str]:
    """The ``depends=`` entry of a module's .modinfo section."""
    marker = b"\0depends="
    start = data.find(marker)
    if start < 0:
        return []
    start += len(marker)
    value = data[start : data.index(b"\0", start)].decode()
    return [name for name in value.split(",") if name]


def resolve_modules(index: dict[str, Path], roots: tuple[str, ...] = ROOT_MODULES) -> dict[str, bytes]:
    """Modules needed for ``roots`` in load order (dependencies first), with their bytes."""
    ordered: dict[str, bytes] = {}
    visiting: set[str] = set()

    def visit(name: str) -> None:
        if name in ordered or name in visiting:
            return
        if name not in index:
            raise ApplianceBuildError(f"kernel module {name} not found in the kernel package")
        visiting.add(name)
        data = read_module(index[name])
        for dependency in module_depends(data):
            visit(dependency)
        ordered[name] = data

    for root in roots:
        visit(root)
    return ordered


# --- initramfs ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class CpioEntry:
    path: str
    mode: int
    data: bytes = b""
    rdev: tuple[int, int] = (0, 0)


def cpio_header(entry: CpioEntry, ino: int) -> bytes:
    name = entry.path.encode() + b"\0"
    nlink = 2 if stat.S_ISDIR(entry.mode) else 1
    fields = (ino, entry.mode, 0, 0, nlink, 0, len(entry.data), 0, 0, *entry.rdev, len(name), 0)
    return b"070701" + b"".join(f"{value:08x}".encode() for value in fields) + name


def pad4(buffer: io.BytesIO) -> None:
    buffer.write(b"\0" * (-buffer.tell() % 4))


def write_cpio(entries: list[CpioEntry]) -> bytes:
    """A newc archive with zero timestamps and root ownership, so identical inputs give identical bytes."""
    buffer = io.BytesIO()
    for ino, entry in enumerate([*entries, CpioEntry("TRAILER!!!", 0)], start=1):
        buffer.write(cpio_header(entry, ino))
        pad4(buffer)
        buffer.write(entry.data)
        pad4(buffer)
    return buffer.getvalue()


def directory(path: str) -> CpioEntry:
    return CpioEntry(path, stat.S_IFDIR | 0o755)


def regular(path: str, data: bytes, mode: int = 0o644) -> CpioEntry:
    return CpioEntry(path, stat.S_IFREG | mode, data)


def initramfs_entries(
    appliance: DemoAppliance, version: str, busybox: bytes, modules: dict[str, bytes]
) -> list[CpioEntry]:
    entries = [directory(d) for d in ("bin", "dev", "etc", "lib", "lib/modules", "proc", "sys", "tmp", "www")]
    # The kernel opens /dev/console before init runs, i.e. before devtmpfs is mounted.
    entries.append(CpioEntry("dev/console", stat.S_IFCHR | 0o600, rdev=(5, 1)))
    entries.append(regular("bin/busybox", busybox, 0o755))
    entries.append(CpioEntry("bin/sh", stat.S_IFLNK | 0o777, b"busybox"))
    entries.extend(regular(f"lib/modules/{name}.ko", data) for name, data in modules.items())
    entries.append(regular("etc/udhcpc.script", UDHCPC_SCRIPT.encode(), 0o755))
    entries.append(regular("www/index.html", render_page(appliance, version).encode()))
    entries.append(regular("init", render_init(appliance, tuple(modules)).encode(), 0o755))
    return entries


def build_initramfs(appliance: DemoAppliance, version: str, busybox: bytes, modules: dict[str, bytes]) -> bytes:
    archive = write_cpio(initramfs_entries(appliance, version, busybox, modules))
    return gzip.compress(archive, compresslevel=6, mtime=0)


# --- boot disk ---------------------------------------------------------------------------------


def disk_size_mib(kernel: Path, initrd: Path) -> int:
    # Room for the payload, syslinux and FAT overhead; at least 32 MiB so mformat picks FAT16.
    payload = kernel.stat().st_size + initrd.stat().st_size
    return max(32, -(-payload // MIB) + 8)


def build_disk(tools: dict[str, str], kernel: Path, initrd: Path, label: str, qcow2: Path) -> None:
    """A raw FAT "superfloppy" made bootable by syslinux, converted to qcow2 at ``qcow2``."""
    with tempfile.TemporaryDirectory(prefix=".disk-", dir=qcow2.parent) as scratch:
        raw = Path(scratch) / "disk.raw"
        cfg = Path(scratch) / "syslinux.cfg"
        cfg.write_text(SYSLINUX_CFG)
        size_mib = disk_size_mib(kernel, initrd)
        with raw.open("wb") as handle:
            handle.truncate(size_mib * MIB)
        # 64 heads x 32 sectors makes one cylinder exactly 1 MiB.
        run(
            [
                tools["mformat"],
                "-i",
                str(raw),
                "-t",
                str(size_mib),
                "-h",
                "64",
                "-s",
                "32",
                "-v",
                label[:11].upper(),
                "::",
            ]
        )
        run([tools["mcopy"], "-i", str(raw), str(kernel), "::/vmlinuz"])
        run([tools["mcopy"], "-i", str(raw), str(initrd), "::/initrd.gz"])
        run([tools["mcopy"], "-i", str(raw), str(cfg), "::/syslinux.cfg"])
        run([tools["syslinux"], "--install", str(raw)])
        staged = Path(scratch) / "disk.qcow2"
        run([tools["qemu-img"], "convert", "-f", "raw", "-O", "qcow2", str(raw), str(staged)])
        staged.replace(qcow2)


# --- manifest, hashing, feed -------------------------------------------------------------------


def input_hash(inputs: BuildInputs, appliance: DemoAppliance) -> str:
    """Everything that shapes an image; the page is hashed as its template since it embeds the version."""
    description = {
        "builder": BUILDER_VERSION,
        "kernel": [inputs.kernel.name, inputs.kernel.version],
        "busybox": [inputs.busybox.name, inputs.busybox.version],
        "modules": list(ROOT_MODULES),
        "init": INIT_TEMPLATE,
        "udhcpc": UDHCPC_SCRIPT,
        "page": PAGE_TEMPLATE,
        "syslinux": SYSLINUX_CFG,
        "appliance": [appliance.appliance, appliance.role, appliance.port],
    }
    return hashlib.sha256(json.dumps(description, sort_keys=True).encode()).hexdigest()


def version_for(digest: str) -> str:
    return f"{BASE_VERSION}+{digest[:12]}"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(MIB):
            digest.update(chunk)
    return digest.hexdigest()


def load_manifest(out_dir: Path) -> dict[str, dict[str, str]]:
    try:
        data = json.loads((out_dir / MANIFEST_NAME).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def save_manifest(out_dir: Path, manifest: dict[str, dict[str, str]]) -> None:
    write_if_changed(out_dir / MANIFEST_NAME, json.dumps(manifest, indent=2, sort_keys=True).encode() + b"\n")


def write_if_changed(path: Path, content: bytes) -> None:
    """Leave identical files untouched so their mtime tells consumers nothing changed."""
    if path.is_file() and path.read_bytes() == content:
        return
    staged = path.with_name(f".{path.name}.tmp")
    staged.write_bytes(content)
    staged.replace(path)


MANIFEST_KEYS = ("input_hash", "version", "filename", "built_at")


def is_current(entry: object, digest: str, image: Path) -> bool:
    return (
        isinstance(entry, dict)
        and all(isinstance(entry.get(key), str) for key in MANIFEST_KEYS)
        and entry["input_hash"] == digest
        and image.is_file()
    )


def feed_item(appliance: DemoAppliance, image: Path, entry: dict[str, str], base_url: str) -> FeedItem:
    return FeedItem(
        appliance=appliance.appliance,
        title=appliance.title,
        description=(
            f"Minimal Linux guest serving an HTTP page on port {appliance.port} "
            f"as the {appliance.role} tier of the demo stack."
        ),
        version=entry["version"],
        url=f"{base_url.rstrip('/')}/{appliance.filename}",
        size_bytes=image.stat().st_size,
        sha256=file_sha256(image),
        disk_format="qcow2",
        arch="x86_64",
        min_ram_mib=MIN_RAM_MIB,
        min_vcpus=1,
        service_port=appliance.port,
        role=appliance.role,
        # The build time rather than now, so rerunning the builder leaves the feed byte-identical.
        published=datetime.fromisoformat(entry["built_at"]),
    )


def render_demo_feed(items: list[FeedItem], base_url: str) -> bytes:
    return render_feed(
        title="Demo appliances",
        link=base_url,
        description="Three small appliances (web, app, db) for trying out stacks.",
        items=items,
    )


# --- orchestration -----------------------------------------------------------------------------


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


@dataclass(frozen=True)
class Payload:
    """The parts shared by all three appliances, unpacked once per build."""

    kernel: Path
    busybox: bytes
    modules: dict[str, bytes]


def prepare_payload(tools: dict[str, str], apt: Apt, inputs: BuildInputs, work_dir: Path, log: Log) -> Payload:
    kernel_tree = fetch_tree(tools, apt, inputs.kernel, work_dir, log)
    busybox_tree = fetch_tree(tools, apt, inputs.busybox, work_dir, log)
    busybox = busybox_tree / "bin" / "busybox"
    if not busybox.is_file():
        raise ApplianceBuildError(f"{inputs.busybox.name} has no bin/busybox")
    return Payload(
        kernel=find_kernel(kernel_tree),
        busybox=busybox.read_bytes(),
        modules=resolve_modules(module_index(kernel_tree)),
    )


def build_appliance(
    tools: dict[str, str], payload: Payload, appliance: DemoAppliance, version: str, out_dir: Path, log: Log
) -> None:
    log(f"building {appliance.filename} ({version})")
    with tempfile.TemporaryDirectory(prefix=".initrd-", dir=out_dir) as scratch:
        initrd = Path(scratch) / "initrd.gz"
        initrd.write_bytes(build_initramfs(appliance, version, payload.busybox, payload.modules))
        build_disk(tools, payload.kernel, initrd, appliance.appliance, out_dir / appliance.filename)


def build_demo_appliances(
    *, out_dir: Path, base_url: str, work_dir: Path | None = None, log: Callable[[str], None] = print
) -> Path:
    """Build (or reuse) the images and write OUT_DIR/feed.xml; return the feed path."""
    # Absolute, because some steps run with a scratch directory as their working directory.
    out_dir = Path(out_dir).resolve()
    work_dir = Path(work_dir).resolve() if work_dir is not None else out_dir / ".work"
    tools = find_tools()
    out_dir.mkdir(parents=True, exist_ok=True)
    with locked(work_dir):
        apt = Apt.create(tools, work_dir / "apt")
        inputs = resolve_inputs(apt)
        log(f"kernel {inputs.kernel.name} {inputs.kernel.version}, busybox {inputs.busybox.version}")
        manifest = load_manifest(out_dir)
        payload: Payload | None = None
        for appliance in DEMO_APPLIANCES:
            digest = input_hash(inputs, appliance)
            image = out_dir / appliance.filename
            if is_current(manifest.get(appliance.appliance), digest, image):
                log(f"{appliance.filename} is up to date")
                continue
            payload = payload or prepare_payload(tools, apt, inputs, work_dir, log)
            version = version_for(digest)
            build_appliance(tools, payload, appliance, version, out_dir, log)
            manifest[appliance.appliance] = {
                "input_hash": digest,
                "version": version,
                "filename": appliance.filename,
                "built_at": datetime.now(UTC).replace(microsecond=0).isoformat(),
            }
            save_manifest(out_dir, manifest)
    items = [
        feed_item(appliance, out_dir / appliance.filename, manifest[appliance.appliance], base_url)
        for appliance in DEMO_APPLIANCES
    ]
    feed = out_dir / FEED_NAME
    write_if_changed(feed, render_demo_feed(items, base_url))
    log(f"wrote {feed}")
    return feed
