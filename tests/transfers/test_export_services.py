"""Exports asked for and run on libvirt's test driver: who may, when, how much, and what is left behind."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from portal import errors
from portal.models import Project
from provisioning.drivers import open_driver
from provisioning.models import Stack, Status
from tests.provisioning import conftest as provisioning_fixtures
from transfers import exports
from transfers.disk_copy import file_sha256
from transfers.models import Export, JobStatus

# The running classic stack on libvirt's test driver, as the provisioning tests make it.
demo_catalog = provisioning_fixtures.demo_catalog
classic = provisioning_fixtures.classic
shop = provisioning_fixtures.shop

GIB = 1024**3


@pytest.fixture(autouse=True)
def export_dir(settings, tmp_path) -> Path:
    settings.EXPORT_DIR = tmp_path / "exports"
    return settings.EXPORT_DIR


def _states(stack) -> set[str]:
    with open_driver("test:///default") as driver:
        return {driver.domain_info(name=i.domain_name).state for i in stack.instances.all()}


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


# --- refusals ---------------------------------------------------------------------------------------


def test_another_projects_member_finds_no_instance_and_no_stack(shop, outsider):
    db = shop.instances.get(role="db")
    with pytest.raises(errors.NotFound):
        exports.export_instance(user=outsider, instance=db, fmt="qcow2")
    with pytest.raises(errors.NotFound):
        exports.export_stack(user=outsider, stack=shop)
    assert not Export.objects.exists()


def test_a_viewer_may_not_export(shop, viewer):
    with pytest.raises(errors.PermissionDenied):
        exports.export_instance(user=viewer, instance=shop.instances.get(role="db"), fmt="raw")
    with pytest.raises(errors.PermissionDenied):
        exports.export_stack(user=viewer, stack=shop)
    assert not Export.objects.exists()


@pytest.mark.parametrize("fmt", ["ova", "vmdk", "", "../qcow2", "QCOW2"])
def test_a_disk_is_exported_as_qcow2_or_raw_only(shop, member, fmt):
    with pytest.raises(errors.Invalid) as refused:
        exports.export_instance(user=member, instance=shop.instances.get(role="db"), fmt=fmt)
    assert refused.value.fields == {"format": [refused.value.detail]}
    assert not Export.objects.exists()


def test_a_project_without_export_room_is_refused_in_words(shop, member):
    Project.objects.filter(pk=shop.project_id).update(max_export_gib=0)
    with pytest.raises(errors.QuotaExceeded, match="may keep 0 GiB of exports, 0 GiB are taken"):
        exports.export_stack(user=member, stack=shop)
    assert not Export.objects.exists()


def test_kept_and_reserved_exports_count_against_the_quota(shop, member, settings):
    settings.DOWNLOADS_PER_PROJECT = 5  # the limit of exports under way is another test's
    Project.objects.filter(pk=shop.project_id).update(max_export_gib=1)
    project = Project.objects.get(pk=shop.project_id)
    kept = Export.objects.create(
        project=project,
        source_name="old",
        format="raw",
        status=JobStatus.READY,
        size_bytes=GIB - 10 * 1024**2,
        path="/nowhere/old.raw",
        expires_at=timezone.now() + timedelta(hours=1),
    )
    with pytest.raises(errors.QuotaExceeded, match="1 GiB are taken"):
        exports.export_instance(user=member, instance=shop.instances.get(role="db"), fmt="raw")
    # Expired, it no longer counts; an unfinished one counts what it reserved.
    Export.objects.filter(pk=kept.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    Export.objects.filter(pk=kept.pk).update(status=JobStatus.RUNNING, reserved_bytes=GIB)
    with pytest.raises(errors.QuotaExceeded):
        exports.export_instance(user=member, instance=shop.instances.get(role="db"), fmt="raw")
    Export.objects.filter(pk=kept.pk).update(status=JobStatus.FAILED)
    made = exports.export_instance(user=member, instance=shop.instances.get(role="db"), fmt="raw")
    assert made.reserved_bytes == exports.export_bytes_used(project) > 0


@pytest.mark.parametrize("status", [Status.SHELVING, Status.SNAPSHOTTING, Status.BUILDING, Status.ERROR])
def test_a_stack_that_is_busy_or_unsettled_is_refused(shop, member, status):
    Stack.objects.filter(pk=shop.pk).update(status=status)
    with pytest.raises(errors.WrongState, match=f"the stack is {status}"):
        exports.export_stack(user=member, stack=shop)
    assert not Export.objects.exists()


def test_one_export_of_a_stack_at_a_time(shop, member, settings):
    settings.DOWNLOADS_PER_PROJECT = 5
    exports.export_instance(user=member, instance=shop.instances.get(role="db"), fmt="qcow2")
    with pytest.raises(errors.WrongState, match="an export of this stack is under way"):
        exports.export_stack(user=member, stack=shop)


def test_a_project_has_a_limit_of_exports_under_way(shop, member, settings, step, classic, project):
    from provisioning.services.launch import stack_launch_template

    settings.DOWNLOADS_PER_PROJECT = 1
    other = step(
        lambda: stack_launch_template(user=member, project=project, name="other", template=classic, lease_seconds=600)
    )
    exports.export_stack(user=member, stack=shop)
    with pytest.raises(errors.WrongState, match="1 export\\(s\\) under way, as many as it may"):
        exports.export_stack(user=member, stack=other)


def test_a_deleted_instance_has_no_disk_to_export(shop, member):
    db = shop.instances.get(role="db")
    db.status = Status.DELETED
    db.save(update_fields=["status"])
    with pytest.raises(errors.WrongState, match="deleted"):
        exports.export_instance(user=member, instance=db, fmt="qcow2")


def test_a_copy_that_fails_leaves_no_file_and_the_stack_as_it_was(shop, member, export_dir, step):
    db = shop.instances.get(role="db")
    with open_driver("test:///default") as driver:
        driver.delete_volume(pool=db.host.storage_pool, name=db.volume_name)
    made = step(lambda: exports.export_instance(user=member, instance=db, fmt="qcow2"))
    made.refresh_from_db()
    assert made.status == JobStatus.FAILED
    assert "its disk is missing from its host" in made.error
    assert made.path == ""
    assert _files(export_dir) == []
    assert list(export_dir.rglob("*")) == []  # no folder either
    shop.refresh_from_db()
    assert shop.status == Status.RUNNING
    assert _states(shop) == {"running"}


def test_a_job_for_a_stack_that_became_busy_fails_cleanly(shop, member, export_dir):
    made = exports.export_stack(user=member, stack=shop)
    Stack.objects.filter(pk=shop.pk).update(status=Status.SHELVING)
    assert exports.export_job(export_id=made.pk) == "failed"
    made.refresh_from_db()
    assert made.error == "the stack is shelving: it can be exported when it is running, stopped, shelved"
    assert _files(export_dir) == []
    assert Stack.objects.get(pk=shop.pk).status == Status.SHELVING  # not ours to change


def test_a_job_runs_once(shop, member, step):
    made = step(lambda: exports.export_instance(user=member, instance=shop.instances.get(role="web"), fmt="raw"))
    assert exports.export_job(export_id=made.pk) == "export is not waiting for this job"


# --- what it makes ----------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["qcow2", "raw"])
def test_an_instance_disk_is_exported_whole(shop, member, export_dir, step, fmt, settings):
    web = shop.instances.get(role="web")
    made = step(lambda: exports.export_instance(user=member, instance=web, fmt=fmt))
    made.refresh_from_db()
    assert made.status == JobStatus.READY, made.error
    path = Path(made.path)
    assert path == export_dir / f"{settings.DEPLOYMENT_NAME}-{shop.project_id}" / str(made.pk) / f"{web.name}.{fmt}"
    assert _files(export_dir) == [path]  # the work files are gone
    assert made.size_bytes == path.stat().st_size
    assert made.sha256 == file_sha256(path)
    assert made.bytes_done == made.bytes_total > 0
    assert made.expires_at == made.finished_at + timedelta(seconds=settings.EXPORT_KEEP_SECONDS)
    shop.refresh_from_db()
    assert shop.status == Status.RUNNING  # held while its disks were read, then given back
    assert _states(shop) == {"running"}
    assert shop.events.filter(message__contains="export of").exists()


def test_a_shelved_stack_is_exported_without_touching_its_guests(shop, member, step):
    Stack.objects.filter(pk=shop.pk).update(status=Status.SHELVED)
    made = step(lambda: exports.export_stack(user=member, stack=shop))
    made.refresh_from_db()
    assert made.status == JobStatus.READY, made.error
    assert Stack.objects.get(pk=shop.pk).status == Status.SHELVED
    assert _states(shop) == {"running"}  # the test driver's guests were never paused


def test_deleting_a_finished_export_frees_its_file_and_quota(shop, member, outsider, viewer, export_dir, step):
    made = step(lambda: exports.export_instance(user=member, instance=shop.instances.get(role="web"), fmt="qcow2"))
    made.refresh_from_db()
    with pytest.raises(errors.NotFound):
        exports.export_delete(user=outsider, export=made)
    with pytest.raises(errors.PermissionDenied):
        exports.export_delete(user=viewer, export=made)
    exports.export_delete(user=member, export=made)
    assert not Export.objects.filter(pk=made.pk).exists()
    assert _files(export_dir) == []


def test_an_export_under_way_cannot_be_deleted(shop, member):
    made = exports.export_stack(user=member, stack=shop)
    with pytest.raises(errors.WrongState, match="under way"):
        exports.export_delete(user=member, export=made)


# --- the sweep ----------------------------------------------------------------------------------------


def test_the_sweep_removes_expired_files_and_keeps_the_rest(shop, member, export_dir, step, settings):
    made = step(lambda: exports.export_instance(user=member, instance=shop.instances.get(role="web"), fmt="qcow2"))
    made.refresh_from_db()
    assert exports.sweep_exports() == 0
    assert Path(made.path).is_file()
    Export.objects.filter(pk=made.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert exports.sweep_exports() == 1
    made.refresh_from_db()
    assert made.status == JobStatus.READY
    assert made.path == ""
    assert exports.is_expired(made)
    assert _files(export_dir) == []
    assert exports.export_bytes_used(made.project) == 0


def test_the_sweep_ends_exports_whose_worker_died_and_removes_their_files(shop, member, export_dir, settings):
    made = exports.export_stack(user=member, stack=shop)
    long_ago = timezone.now() - timedelta(seconds=settings.WORKER_GONE_AFTER_SECONDS + 60)
    Export.objects.filter(pk=made.pk).update(status=JobStatus.RUNNING, started_at=long_ago, updated_at=long_ago)
    folder = exports.export_folder(made)
    folder.mkdir(parents=True)
    (folder / "half.vmdk").write_bytes(b"half")
    assert exports.sweep_exports() == 1
    made.refresh_from_db()
    assert made.status == JobStatus.FAILED
    assert "worker went away" in made.error
    assert _files(export_dir) == []


def test_the_sweep_removes_folders_without_an_export_but_not_another_portals(export_dir, settings, db):
    mine = export_dir / f"{settings.DEPLOYMENT_NAME}-999" / "12345"
    theirs = export_dir / "another-portal-999" / "12345"
    for folder in (mine, theirs):
        folder.mkdir(parents=True)
        (folder / "disk.qcow2").write_bytes(b"x")
    exports.sweep_exports()
    assert not mine.parent.exists()
    assert (theirs / "disk.qcow2").is_file()


@pytest.mark.django_db(transaction=True)
def test_parallel_requests_cannot_pass_the_quota_together(
    member, project, test_host, demo_catalog, settings, monkeypatch
):
    """Eight stacks asked for at once against room for three: three exports are queued, five refused."""
    import threading

    from django.db import connection
    from django_q.conf import Conf

    from provisioning.services import templates
    from provisioning.services.launch import stack_launch_template

    Project.objects.filter(pk=project.pk).update(max_stacks=20, max_instances=20, max_vcpus=100, max_disk_gib=1000)
    template = templates.template_create(
        user=member, project=project, name="solo", source="tiers:\n  - name: web\n    appliance: demo-web\n"
    )
    stacks = [
        stack_launch_template(user=member, project=project, name=f"solo-{n}", template=template, lease_seconds=600)
        for n in range(8)
    ]
    monkeypatch.setattr(Conf, "SYNC", False)  # the jobs wait in the broker: only the claims race here
    settings.DOWNLOADS_PER_PROJECT = 100
    reserve = exports.export_bytes_needed(stacks[0].instances.get())
    Project.objects.filter(pk=project.pk).update(max_export_gib=3)
    room = 3 * GIB // reserve
    assert 0 < room < len(stacks), reserve
    outcomes: list[str] = []
    barrier = threading.Barrier(len(stacks))

    def attempt(stack) -> None:
        try:
            barrier.wait()
            exports.export_stack(user=member, stack=stack)
            outcomes.append("queued")
        except errors.QuotaExceeded:
            outcomes.append("quota")
        finally:
            connection.close()

    threads = [threading.Thread(target=attempt, args=(stack,)) for stack in stacks]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes.count("queued") == room == Export.objects.count()
    assert outcomes.count("quota") == len(stacks) - room
    assert exports.export_bytes_used(project) <= Project.objects.get(pk=project.pk).max_export_gib * GIB
