"""Taking a real running stack home: its disks copied while its tiers are paused, as files that stand alone
(a qcow2, a raw image, an OVA of streamOptimized VMDKs), each holding the record the stack was given."""

from __future__ import annotations

import json
import subprocess
import tarfile
from pathlib import Path

import pytest

from provisioning.drivers import open_driver
from provisioning.models import Status
from provisioning.services import lifecycle
from tests.e2e.conftest import SYSTEM_URI
from tests.e2e.records import launch_classic, page_with, post_record, web_url
from transfers import exports
from transfers.disk_copy import instance_disk_copy, stack_paused
from transfers.models import JobStatus

pytestmark = pytest.mark.e2e


def _info(path) -> dict:
    done = subprocess.run(["qemu-img", "info", "--output=json", str(path)], check=True, capture_output=True, text=True)
    return json.loads(done.stdout)


def _as_raw(path: Path, fmt: str, raw: Path) -> bytes:
    subprocess.run(["qemu-img", "convert", "-f", fmt, "-O", "raw", str(path), str(raw)], check=True)
    return raw.read_bytes()


def test_a_running_stacks_disks_are_exported_whole_with_their_records(
    operator, member, project, inline_demo_catalog, django_capture_on_commit_callbacks, tmp_path, settings
):
    settings.EXPORT_DIR = tmp_path / "exports"
    shop = launch_classic(
        operator=operator, member=member, project=project, capture=django_capture_on_commit_callbacks, lease_seconds=900
    )
    db = shop.instances.get(role="db")
    page_with(shop, db.name, what="the web page showing the chain")
    assert post_record(web_url(shop), "carried home in a disk") == (201, "record saved\n")

    with stack_paused(shop) as paused:
        assert {i.role for i in paused} == {"db", "app", "web"}
        copy = instance_disk_copy(db, tmp_path / "db.raw", fmt="raw")
    with open_driver(SYSTEM_URI) as driver:
        assert {driver.domain_info(name=i.domain_name).state for i in shop.instances.all()} == {"running"}

    info = _info(copy.path)
    assert info["format"] == "raw"
    assert "backing-filename" not in info
    assert copy.size_bytes == info["virtual-size"] == copy.virtual_size_bytes
    assert b"carried home in a disk" in copy.path.read_bytes()
    page_with(shop, "carried home in a disk", what="the stack serving its record after the copy")

    # Through the service and its job: one tier's disk as qcow2, then the whole stack as an OVA.
    with django_capture_on_commit_callbacks(execute=True):
        disk = exports.export_instance(user=member, instance=db, fmt="qcow2")
    disk.refresh_from_db()
    assert disk.status == JobStatus.READY, disk.error
    info = _info(Path(disk.path))
    assert info["format"] == "qcow2"
    assert "backing-filename" not in info
    subprocess.run(["qemu-img", "check", "-f", "qcow2", disk.path], check=True, capture_output=True)
    assert b"carried home in a disk" in _as_raw(Path(disk.path), "qcow2", tmp_path / "disk.raw")

    with django_capture_on_commit_callbacks(execute=True):
        ova = exports.export_stack(user=member, stack=shop)
    ova.refresh_from_db()
    assert ova.status == JobStatus.READY, ova.error
    with tarfile.open(ova.path) as archive:
        names = archive.getnames()
        assert names[0].endswith(".ovf")
        assert names[1].endswith(".mf")
        archive.extractall(tmp_path / "ova", filter="data")
    (db_vmdk,) = [tmp_path / "ova" / n for n in names if n.endswith(f"-{db.name}.vmdk")]
    assert _info(db_vmdk)["format-specific"]["data"]["create-type"] == "streamOptimized"
    assert b"carried home in a disk" in _as_raw(db_vmdk, "vmdk", tmp_path / "db-from-ova.raw")
    shop.refresh_from_db()
    assert shop.status == Status.RUNNING
    page_with(shop, "carried home in a disk", what="the stack serving its record after the exports")

    with django_capture_on_commit_callbacks(execute=True):
        lifecycle.stack_destroy(user=member, stack=shop)
    shop.refresh_from_db()
    assert shop.status == Status.DELETED, shop.status_reason
