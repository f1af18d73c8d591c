"""A 1 GiB disk exported through the portal, against ``qemu-img convert`` of the same disk.

Run:  .venv/bin/python benchmarks/catalog_export.py [--rounds 3] [--gib 1] [--data-share 0.75]

The disk is an instance's disk as the portal keeps one: a qcow2 overlay in a storage pool of the
local libvirtd (qemu:///system, a pool of the run's own) over a base image in the image cache.
The base holds 64 MiB of random data; the overlay is ``--gib`` GiB, of which ``--data-share`` is
random data written over it (random, so neither side can skip or compress it). Each round, in
rotating order:
  export   the export job of that instance as a qcow2 (``transfers.exports.export_job``): the
           overlay downloaded through libvirt's storage API, rebased onto the cached base,
           converted to one self-contained qcow2, hashed (sha256), and recorded;
  convert  ``qemu-img convert -f qcow2 -O qcow2`` of a local copy of the same overlay over the
           same base, into a self-contained qcow2 (no download, no hash): the goal's baseline;
  route    what the export's route costs at least, without the portal: ``virsh vol-download`` of
           the overlay from the pool, ``qemu-img rebase -u`` onto the base, the same convert.
All write their files into the same folder, emptied after each round. The run prints each round,
the medians as rates (the disk's virtual size per second), export/convert (goal: 0.8x or better)
and export/route (what the portal adds to moving the bytes through libvirt). The database is SQLite
in a temporary folder; the pool and its volumes, the folder and everything in it are removed at the
end, also when a round fails.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
WORK = Path(tempfile.mkdtemp(prefix="portal-bench-export-"))
if not os.environ.get("BENCH_DATABASE_URL"):
    os.environ.pop("DATABASE_URL", None)  # the embedded default: SQLite in PORTAL_VAR_DIR
else:
    os.environ["DATABASE_URL"] = os.environ["BENCH_DATABASE_URL"]
os.environ["PORTAL_VAR_DIR"] = str(WORK)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
os.environ.setdefault("DJANGO_SECRET_KEY", secrets.token_urlsafe(32))
os.environ.setdefault("PORTAL_LOG_LEVEL", "WARNING")
os.environ.setdefault("PORTAL_DEPLOYMENT", f"bench{secrets.token_hex(3)}")
os.environ.pop("REDIS_URL", None)  # the queued task waits in the run's own database; the job is run here
(WORK / "static").mkdir()

import django  # noqa: E402

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.utils import timezone  # noqa: E402

from catalog.models import Appliance, ApplianceVersion, CachedImage, Feed, ImageDelivery, image_source_key  # noqa: E402
from portal.models import Project  # noqa: E402
from provisioning.drivers.libvirt_driver import LibvirtDriver  # noqa: E402
from provisioning.models import Host, Instance, Stack, Status  # noqa: E402
from provisioning.services import hosts  # noqa: E402
from provisioning.templates import validate_document  # noqa: E402
from transfers import exports  # noqa: E402
from transfers.models import JobStatus  # noqa: E402

URI = "qemu:///system"
POOL = f"portal-bench-{secrets.token_hex(3)}"
POOL_PATH = f"/var/lib/libvirt/images/{POOL}"
GIB = 1024**3
MIB = 1024**2
BASE_DATA_BYTES = 64 * MIB
CHUNK_BYTES = 64 * MIB


def qemu_img(*arguments: str) -> None:
    subprocess.run(["qemu-img", *arguments], check=True, capture_output=True)


def random_file(path: Path, size: int) -> None:
    with path.open("wb") as handle:
        for _ in range(size // CHUNK_BYTES):
            handle.write(os.urandom(CHUNK_BYTES))
        handle.write(os.urandom(size % CHUNK_BYTES))


def make_disks(folder: Path, *, virtual_bytes: int, data_bytes: int) -> tuple[Path, Path]:
    """The base (in the image cache's folder) and an overlay over it with ``data_bytes`` of random data."""
    base, overlay, noise = folder / "base.qcow2", folder / "overlay.qcow2", folder / "noise.raw"
    random_file(noise, BASE_DATA_BYTES)
    qemu_img("convert", "-f", "raw", "-O", "qcow2", str(noise), str(base))
    qemu_img("resize", "-f", "qcow2", str(base), str(virtual_bytes))
    qemu_img("create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", str(base), str(overlay), str(virtual_bytes))
    random_file(noise, data_bytes)
    qemu_img("convert", "-n", "-f", "raw", "-O", "qcow2", str(noise), str(overlay))
    noise.unlink()
    return base, overlay


def set_up(base: Path, overlay: Path, *, virtual_bytes: int) -> tuple[object, Instance]:
    """The portal's rows for an instance whose disk is ``overlay`` (uploaded into the pool) over ``base``."""
    call_command("migrate", verbosity=0)
    user = get_user_model().objects.create_superuser("bench", password=secrets.token_urlsafe(16))
    project = Project.objects.create(name="bench", max_export_gib=1000)
    host = hosts.host_register(
        user=user,
        name="local",
        uri=URI,
        domain_type=Host.DomainType.QEMU,
        storage_pool=POOL,
        storage_pool_path=POOL_PATH,
    )
    digest = hashlib.sha256(base.read_bytes()).hexdigest()
    image = CachedImage.objects.create(
        sha256=digest,
        source_format="qcow2",
        status=CachedImage.Status.READY,
        path=str(base),
        size_bytes=base.stat().st_size,
        virtual_size_bytes=virtual_bytes,
    )
    feed = Feed.objects.create(url="https://feeds.example.org/bench.xml", title="bench")
    appliance = Appliance.objects.create(feed=feed, identifier="bench-disk", title="Bench disk", role="disk")
    version = ApplianceVersion.objects.create(
        appliance=appliance,
        version="1",
        image_url="https://feeds.example.org/bench.qcow2",
        size_bytes=image.size_bytes,
        disk_format="qcow2",
        image=image,
    )
    ImageDelivery.objects.create(
        version=version, source=image_source_key(version.image_url), status=ImageDelivery.Status.DELIVERED
    )
    document = validate_document({"tiers": [{"name": "disk", "appliance": "bench-disk"}]}).as_json()
    stack = Stack.objects.create(
        project=project,
        name="bench",
        document=document,
        status=Status.STOPPED,  # its disk is read as it is; nothing to pause
        expires_at=timezone.now() + timedelta(hours=1),
    )
    volume = f"{os.environ['PORTAL_DEPLOYMENT']}-bench-overlay"
    with LibvirtDriver(URI) as driver:
        driver.upload_volume(
            pool=POOL, name=volume, source_path=str(overlay), disk_format="qcow2", capacity_bytes=virtual_bytes
        )
    instance = Instance.objects.create(
        stack=stack,
        name="bench-disk",
        role="disk",
        appliance_version=version,
        host=host,
        vcpus=1,
        memory_mib=64,
        disk_gib=virtual_bytes // GIB,
        status=Status.STOPPED,
        volume_name=volume,
        domain_name=f"{os.environ['PORTAL_DEPLOYMENT']}-bench",
    )
    return user, instance


def export_round(user: object, instance: Instance) -> float:
    made = exports.export_instance(user=user, instance=instance, fmt="qcow2")  # type: ignore[arg-type]
    started = time.perf_counter()
    outcome = exports.export_job(export_id=made.pk)
    seconds = time.perf_counter() - started
    made.refresh_from_db()
    if outcome != "ready" or made.status != JobStatus.READY:
        raise SystemExit(f"the export failed: {made.error}")
    exports.export_delete(user=user, export=made)  # type: ignore[arg-type]
    return seconds


def convert_round(overlay: Path, out: Path) -> float:
    target = out / "converted.qcow2"
    started = time.perf_counter()
    qemu_img("convert", "-f", "qcow2", "-O", "qcow2", str(overlay), str(target))
    seconds = time.perf_counter() - started
    target.unlink()
    return seconds


def route_round(instance: Instance, base: Path, out: Path) -> float:
    downloaded, target = out / "downloaded.qcow2", out / "routed.qcow2"
    started = time.perf_counter()
    download = ["virsh", "-q", "-c", URI, "vol-download", "--pool", POOL, instance.volume_name, str(downloaded)]
    subprocess.run(download, check=True, capture_output=True)
    qemu_img("rebase", "-u", "-f", "qcow2", "-F", "qcow2", "-b", str(base), str(downloaded))
    qemu_img("convert", "-f", "qcow2", "-O", "qcow2", str(downloaded), str(target))
    seconds = time.perf_counter() - started
    downloaded.unlink()
    target.unlink()
    return seconds


def clean_up() -> None:
    with LibvirtDriver(URI) as driver:
        try:
            volumes = driver.list_volumes(pool=POOL)
        except Exception:
            volumes = []
        for volume in volumes:
            driver.delete_volume(pool=POOL, name=volume.name)
        driver.delete_pool(name=POOL)
    shutil.rmtree(WORK, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--gib", type=int, default=1)
    parser.add_argument("--data-share", type=float, default=0.75)
    arguments = parser.parse_args()
    virtual_bytes = arguments.gib * GIB
    data_bytes = int(virtual_bytes * arguments.data_share) // MIB * MIB
    try:
        disks = WORK / "images"
        disks.mkdir()
        base, overlay = make_disks(disks, virtual_bytes=virtual_bytes, data_bytes=data_bytes)
        user, instance = set_up(base, overlay, virtual_bytes=virtual_bytes)
        out = WORK / "out"
        out.mkdir()
        print(
            f"disk: {arguments.gib} GiB qcow2 overlay with {data_bytes // MIB} MiB of random data over a base "
            f"with {BASE_DATA_BYTES // MIB} MiB, in pool {POOL} of {URI}"
        )
        sides = {
            "export": lambda: export_round(user, instance),
            "convert": lambda: convert_round(overlay, out),
            "route": lambda: route_round(instance, base, out),
        }
        for run in sides.values():  # warm-up: every side then reads from a warm page cache
            run()
        figures: dict[str, list[float]] = {side: [] for side in sides}
        for index in range(arguments.rounds):
            names = list(sides)
            order = names[index % len(names) :] + names[: index % len(names)]
            for side in order:
                figures[side].append(sides[side]())
            print(f"round {index + 1}: " + ", ".join(f"{side} {figures[side][-1]:.2f} s" for side in names))
        rates = {side: virtual_bytes / MIB / statistics.median(seconds) for side, seconds in figures.items()}
        for side, what in (
            ("export", "export (download, rebase, convert, sha256)"),
            ("convert", "qemu-img convert of the same disk"),
            ("route", "virsh vol-download + rebase + convert"),
        ):
            print(f"{what:<45} median {statistics.median(figures[side]):.2f} s = {rates[side]:.0f} MiB/s")
        ratio = rates["export"] / rates["convert"]
        verdict = "meets" if ratio >= 0.8 else "misses"
        print(f"export/convert rate: {ratio:.2f}x ({verdict} the goal of 0.8x or better)")
        print(
            f"export/route rate:   {rates['export'] / rates['route']:.2f}x (the portal's cost over the libvirt route)"
        )
        return 0
    finally:
        clean_up()


if __name__ == "__main__":
    sys.exit(main())
