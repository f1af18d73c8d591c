"""After the last byte: the file is checked and converted like a downloaded image, becomes a version of
the project's own catalog or is refused with the reason, and is removed either way. Then the sweep.

Hostile and mistaken files first. The check runs as its task would (``process_upload``), directly.
"""

from __future__ import annotations

import gzip
import os
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from django_q.models import Schedule

from catalog import selectors
from catalog.models import Appliance, ApplianceVersion, CachedImage, Feed
from portal.models import AuditEvent
from tests.migration_steps import run_data_migration
from tests.transfers.upload_helpers import (
    bootable_raw,
    create,
    own_version,
    qcow2_image,
    send_whole,
    use_private_folders,
)
from transfers import upload_tasks, uploads
from transfers.models import Upload


@pytest.fixture(autouse=True)
def folders(settings, tmp_path):
    return use_private_folders(settings, tmp_path)


@pytest.fixture
def client(api, member):
    return api(member)


def uploaded(client, project, data: bytes, *, chunk: int = 64 * 1024, **meta: str) -> Upload:
    """An upload of ``data`` with every byte received, waiting for its check (not yet run)."""
    response = create(client, project=project, length=len(data), **meta)
    assert response.status_code == 201, response.content
    send_whole(client, response["Location"], data, chunk=chunk)
    upload = Upload.objects.get(pk=response.json()["id"])
    assert upload.status == Upload.Status.PROCESSING
    return upload


def checked(upload: Upload) -> Upload:
    upload_tasks.process_upload(str(upload.pk))
    upload.refresh_from_db()
    return upload


def assert_refused(upload: Upload, path: str, reason: str) -> None:
    assert upload.status == Upload.Status.FAILED
    assert reason in upload.error, upload.error
    assert upload.result is None
    assert not Path(path).exists()
    assert not ApplianceVersion.objects.filter(appliance__feed__project=upload.project).exists()
    assert not Appliance.objects.filter(feed__project=upload.project).exists()


# Refused files.


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda tmp: os.urandom(256 * 1024), "no boot sector"),
        (lambda tmp: b"%PDF-1.7\n" + b"\x00" * 4096, "no boot sector"),
        (lambda tmp: gzip.compress(bootable_raw()), "gzip-compressed; unpack it"),
        (lambda tmp: b"PK\x03\x04" + b"\x00" * 2048, "a zip archive"),
        (lambda tmp: b"\x00" * 257 + b"ustar\x0000" + b"\x00" * 2048, "a tar archive (an OVA is one)"),
        (lambda tmp: b"\x55\xaa" * 100, "too small to be a disk image"),
    ],
    ids=["random", "document", "gzip", "zip", "tar", "tiny"],
)
def test_a_file_that_is_no_disk_image_is_refused_with_the_reason(client, project, tmp_path, make, reason):
    upload = uploaded(client, project, make(tmp_path))
    path = upload.path
    assert_refused(checked(upload), path, reason)
    assert client.get(f"/api/v1/uploads/{upload.pk}/").json()["error"] == upload.error


def test_a_qcow2_naming_a_backing_file_is_refused(client, project, tmp_path):
    secret = tmp_path / "host-secret.raw"
    secret.write_bytes(bootable_raw())
    upload = uploaded(client, project, qcow2_image(tmp_path / "overlay.qcow2", backing=secret))
    path = upload.path
    assert_refused(checked(upload), path, "names a backing file")


def test_a_broken_qcow2_is_refused_without_naming_the_portals_files(client, project, tmp_path, settings):
    good = qcow2_image(tmp_path / "good.qcow2")
    broken = good[:4] + b"\xff" * 64 + good[68:]  # the magic, then a header no qemu-img can read
    upload = uploaded(client, project, broken, filename="web.qcow2")
    path = upload.path
    refused = checked(upload)
    assert_refused(refused, path, "qemu-img info failed")
    assert str(settings.UPLOAD_DIR) not in refused.error
    assert settings.DEPLOYMENT_NAME + "-" not in refused.error


def test_a_name_taken_while_the_bytes_travelled_is_refused_at_the_end(client, project, tmp_path):
    upload = uploaded(client, project, qcow2_image(tmp_path / "web.qcow2"), appliance="my-web", version="1.0")
    path = upload.path
    taken = own_version(project, appliance="my-web", version="1.0")
    refused = checked(upload)
    assert refused.status == Upload.Status.FAILED
    assert refused.error == "appliance 'my-web' already has a version '1.0' in this project's catalog"
    assert not Path(path).exists()
    assert list(ApplianceVersion.objects.filter(appliance__feed__project=project)) == [taken]


# Accepted files.


def test_a_small_qcow2_becomes_a_version_of_the_projects_own_catalog(client, member, project, tmp_path):
    data = qcow2_image(tmp_path / "web.qcow2")
    upload = uploaded(client, project, data, appliance="my-web", version="1.0", title="My web", filename="web.qcow2")
    path = upload.path
    ready = checked(upload)
    assert (ready.status, ready.error) == (Upload.Status.READY, "")
    assert not Path(path).exists()
    version = ready.result
    assert version.checksum_source == ApplianceVersion.ChecksumSource.UPLOAD
    assert (version.appliance.identifier, version.appliance.title, version.version) == ("my-web", "My web", "1.0")
    assert version.appliance.feed.project == project
    assert version.appliance.feed.format == Feed.Format.LOCAL
    assert version.image.status == CachedImage.Status.READY
    assert Path(version.image.path).is_file()
    # Visible and launchable for the project, like any version of its catalog.
    visible = selectors.appliance_versions_visible_to(member).get(pk=version.pk)
    assert visible.image_state.status == ApplianceVersion.ImageStatus.READY
    shown = client.get(f"/api/v1/uploads/{upload.pk}/").json()
    assert (shown["status"], shown["version_id"], shown["appliance_id"]) == ("ready", version.pk, version.appliance_id)
    assert AuditEvent.objects.filter(action="upload.ready", actor=member, project=project).exists()


def test_a_bootable_raw_disk_is_taken(client, project):
    ready = checked(uploaded(client, project, bootable_raw(2 * 1024 * 1024), appliance="raw-disk", version="1"))
    assert ready.status == Upload.Status.READY, ready.error
    assert ready.result.disk_format == "raw"


def test_a_second_run_of_the_check_changes_nothing(client, project, tmp_path):
    upload = uploaded(client, project, qcow2_image(tmp_path / "web.qcow2"))
    ready = checked(upload)
    version = ready.result
    assert upload_tasks.process_upload(str(upload.pk)) == "ready"
    assert list(ApplianceVersion.objects.filter(appliance__feed__project=project)) == [version]
    assert upload_tasks.process_upload(str(uuid.uuid4())) == "upload no longer exists"


# The sweep.


def test_the_sweep_removes_expired_uploads_and_ends_lost_checks(client, member, project, tmp_path, settings):
    now = timezone.now()
    expired = Upload.objects.get(pk=create(client, project=project, length=10, version="1").json()["id"])
    current = Upload.objects.get(pk=create(client, project=project, length=10, version="2").json()["id"])
    done = uploaded(client, project, qcow2_image(tmp_path / "a.qcow2"), version="3")
    checked(done)
    lost = uploaded(client, project, qcow2_image(tmp_path / "b.qcow2"), version="4")
    Upload.objects.filter(pk__in=[expired.pk, done.pk]).update(expires_at=now - timedelta(seconds=1))
    silent_since = now - timedelta(seconds=max(settings.UPLOAD_KEEP_SECONDS, settings.WORKER_GONE_AFTER_SECONDS) + 1)
    Upload.objects.filter(pk=lost.pk).update(updated_at=silent_since, expires_at=now - timedelta(seconds=1))

    assert uploads.uploads_sweep(now=now) == 3
    assert set(Upload.objects.values_list("pk", flat=True)) == {current.pk, lost.pk}
    assert not Path(expired.path).exists()
    assert Path(current.path).exists()
    lost.refresh_from_db()
    assert lost.status == Upload.Status.FAILED
    assert "interrupted" in lost.error
    assert lost.expires_at > now  # its reason stays to be read a while
    assert not list(settings.UPLOAD_DIR.glob(f"*{lost.pk}*"))
    # The version the finished upload made stays in the catalog; only the upload's record went.
    assert ApplianceVersion.objects.filter(appliance__feed__project=project, version="3").exists()


def test_a_check_still_waiting_in_the_queue_is_not_taken_for_lost(client, project, tmp_path):
    waiting = uploaded(client, project, qcow2_image(tmp_path / "a.qcow2"))
    Upload.objects.filter(pk=waiting.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert uploads.uploads_sweep() == 0
    waiting.refresh_from_db()
    assert waiting.status == Upload.Status.PROCESSING
    assert Path(waiting.path).exists()


def test_the_sweep_removes_old_files_no_upload_owns_and_leaves_other_portals_files(db, settings):
    folder = settings.UPLOAD_DIR
    folder.mkdir(parents=True)
    old = timezone.now() - uploads.ORPHAN_FILE_AGE - timedelta(minutes=1)
    orphan = folder / f"{settings.DEPLOYMENT_NAME}-{uuid.uuid4()}.upload"
    young = folder / f"{settings.DEPLOYMENT_NAME}-{uuid.uuid4()}.upload"
    another_portal = folder / f"other-{uuid.uuid4()}.upload"
    unrelated = folder / "notes.txt"
    for path in (orphan, young, another_portal, unrelated):
        path.write_bytes(b"x")
    for path in (orphan, another_portal, unrelated):
        os.utime(path, (old.timestamp(), old.timestamp()))
    assert uploads.uploads_sweep() == 1
    assert sorted(path.name for path in folder.iterdir()) == sorted(
        path.name for path in (young, another_portal, unrelated)
    )


@pytest.mark.parametrize(
    ("migration", "name", "func"),
    [
        ("0002_sweep_uploads_schedule", "sweep-uploads", "transfers.upload_tasks.sweep_uploads"),
        ("0003_export_sweep", "sweep-exports", "transfers.export_tasks.sweep_exports"),
        ("0004_watch_captures_schedule", "watch-captures", "transfers.capture_tasks.captures_watchdog"),
    ],
)
def test_the_sweeps_are_scheduled_by_their_migrations(db, migration, name, func):
    Schedule.objects.filter(name=name).delete()
    run_data_migration(f"transfers.migrations.{migration}")
    schedule = Schedule.objects.get(name=name)
    assert (schedule.func, schedule.schedule_type, schedule.minutes) == (func, "I", 5)


def test_the_upload_sweep_finds_nothing_to_do_on_an_empty_portal(db):
    assert upload_tasks.sweep_uploads() == 0
