"""Capturing a stack on libvirt's test driver: who may, what is refused, and the whole round.

On the test driver a guest's disk is its appliance's cached image at the disk's size (nothing is
ever written), which is enough to follow the capture from the request to a template that launches
the captured versions. Real disks with records on them are in tests/e2e/test_publish_round_trip.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings as django_settings

from catalog.models import Appliance, ApplianceVersion, CachedImage, Feed
from catalog.own_images import OwnVersion, own_catalog, own_version_add
from portal.models import AuditEvent
from provisioning.drivers import open_driver
from provisioning.models import Stack, StackTemplate, Status
from provisioning.services import power, shelving, templates
from provisioning.services.launch import stack_launch_template
from provisioning.templates import TemplateDocument
from tests.provisioning import conftest as provisioning_fixtures
from transfers import capture
from transfers.models import Capture, JobStatus

# The running classic stack on libvirt's test driver, as the provisioning tests make it.
demo_catalog = provisioning_fixtures.demo_catalog
classic = provisioning_fixtures.classic
shop = provisioning_fixtures.shop


@pytest.fixture(autouse=True)
def own_folders(settings, tmp_path):
    """The image cache and the captures' work folder of this test only: what is left there is checked."""
    settings.IMAGE_CACHE_DIR = tmp_path / "cache"
    settings.CAPTURE_DIR = tmp_path / "captures"


def _post(api, user, stack: Stack, **body):
    return api(user).post(f"/api/v1/stacks/{stack.pk}/capture/", body, format="json")


def _states(stack: Stack) -> dict[str, str]:
    with open_driver("test:///default") as driver:
        return {i.role: driver.domain_info(name=i.domain_name).state for i in stack.instances.all()}


def _own_versions(project) -> list[ApplianceVersion]:
    return list(
        ApplianceVersion.objects.filter(appliance__feed__project=project, appliance__feed__format=Feed.Format.LOCAL)
    )


def _cache_files() -> list[Path]:
    folder = Path(django_settings.IMAGE_CACHE_DIR)
    return sorted(folder.iterdir()) if folder.exists() else []


def _nothing_made(project) -> None:
    assert _own_versions(project) == []
    assert not Appliance.objects.filter(feed__project=project).exists()
    assert not StackTemplate.objects.filter(project=project).exists()
    assert _cache_files() == []
    captures = Path(django_settings.CAPTURE_DIR)
    assert not captures.exists() or list(captures.iterdir()) == []


# --- attackers and refusals first ---------------------------------------------------------------


def test_another_tenant_cannot_capture_a_stack_or_see_its_captures(api, shop, outsider, member, step):
    answer = _post(api, outsider, shop, appliance_prefix="stolen", version="1")
    assert answer.status_code == 404
    assert answer.json()["code"] == "not_found"
    assert not Capture.objects.exists()

    made = step(lambda: _post(api, member, shop, appliance_prefix="shop", version="1"))
    capture_id = made.json()["id"]
    assert api(outsider).get(f"/api/v1/captures/{capture_id}/").status_code == 404
    assert api(outsider).get("/api/v1/captures/").json()["results"] == []
    assert api(None).get(f"/api/v1/captures/{capture_id}/").status_code in (401, 403)


def test_a_viewer_may_not_capture(api, shop, viewer):
    answer = _post(api, viewer, shop, appliance_prefix="shop", version="1")
    assert answer.status_code == 403
    assert answer.json()["code"] == "permission_denied"
    shop.refresh_from_db()
    assert shop.status == Status.RUNNING
    assert not Capture.objects.exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"appliance_prefix": "Shop", "version": "1"}, "appliance_prefix"),  # feeds read identifiers lowercased
        ({"appliance_prefix": "../etc", "version": "1"}, "appliance_prefix"),
        ({"appliance_prefix": "shop-", "version": "1"}, "appliance_prefix"),
        ({"appliance_prefix": "a" * 61, "version": "1"}, "appliance_prefix"),
        ({"appliance_prefix": "shop", "version": "1 0"}, "version"),
        ({"appliance_prefix": "shop", "version": "1/../2"}, "version"),
        ({"appliance_prefix": "shop", "version": "v" * 51}, "version"),
        ({"appliance_prefix": "shop", "version": 1}, "version"),  # a number in JSON is no version text
        ({"appliance_prefix": "shop"}, "version"),
        ({"appliance_prefix": "shop", "version": "1", "template": 3}, "template"),
    ],
)
def test_bad_names_are_refused_by_field(api, shop, member, body, field):
    answer = api(member).post(f"/api/v1/stacks/{shop.pk}/capture/", body, format="json")
    assert answer.status_code == 400, answer.json()
    assert field in answer.json()["fields"]
    assert not Capture.objects.exists()


def test_a_busy_or_broken_stack_is_refused(api, shop, member):
    power.stack_power(user=member, stack=shop, action="shutdown")  # its job not run: the stack stays busy
    answer = _post(api, member, shop, appliance_prefix="shop", version="1")
    assert answer.status_code == 409
    assert "stopping: wait until that is done" in answer.json()["detail"]
    Stack.objects.filter(pk=shop.pk).update(status=Status.ERROR)
    answer = _post(api, member, shop, appliance_prefix="shop", version="1")
    assert answer.status_code == 409
    assert "cannot capture a stack that is error" in answer.json()["detail"]
    assert not Capture.objects.exists()


def test_a_version_the_catalog_holds_already_is_refused(api, shop, member, project, tmp_path):
    disk = tmp_path / "disk.qcow2"
    ready_image = Path(shop.instances.first().appliance_version.image.path)
    disk.write_bytes(ready_image.read_bytes())
    own_version_add(project=project, spec=OwnVersion(appliance="shop-app", version="1"), source=disk)

    answer = _post(api, member, shop, appliance_prefix="shop", version="1")

    assert answer.status_code == 400
    assert answer.json()["fields"]["version"] == [
        "'shop-app' already has a version '1' in this project's catalog: choose another version"
    ]
    assert _post(api, member, shop, appliance_prefix="shop", version="2").status_code == 202


def test_a_template_name_taken_and_a_capture_under_way_are_refused(api, shop, member, project):
    templates.template_create(
        user=member, project=project, name="shop-1-0", source=provisioning_fixtures.CLASSIC.read_text()
    )
    answer = _post(api, member, shop, appliance_prefix="shop", version="1.0")
    assert answer.status_code == 400
    assert "already has a template called 'shop-1-0'" in answer.json()["detail"]

    assert _post(api, member, shop, appliance_prefix="shop", version="2").status_code == 202  # its job not run
    Stack.objects.filter(pk=shop.pk).update(status=Status.RUNNING)  # as if the copy were done, the rest not
    answer = _post(api, member, shop, appliance_prefix="shop", version="2")
    assert answer.status_code == 400
    assert "another capture under way is making 'shop-app' version '2'" in answer.json()["detail"]


def test_a_full_template_list_is_refused_before_anything_is_copied(api, shop, member, settings):
    settings.TEMPLATES_PER_PROJECT = 0
    answer = _post(api, member, shop, appliance_prefix="shop", version="1")
    assert answer.status_code == 403
    assert answer.json()["code"] == "quota_exceeded"


# --- the round ----------------------------------------------------------------------------------


def test_a_capture_makes_versions_and_a_template_that_launches_the_stack_again(
    api, shop, member, project, test_host, step
):
    answer = step(lambda: _post(api, member, shop, appliance_prefix="shop", version="1.0"))

    assert answer.status_code == 202
    body = api(member).get(f"/api/v1/captures/{answer.json()['id']}/").json()
    assert body["status"] == "ready", body["error"]
    assert body["error"] == ""
    assert body["progress"]["percent"] == 100
    assert body["progress"]["bytes_done"] == body["progress"]["bytes_total"] > 0
    assert body["appliances"] == ["shop-db", "shop-app", "shop-web"]
    shop.refresh_from_db()
    assert shop.status == Status.RUNNING
    assert set(_states(shop).values()) == {"running"}  # paused for the copy, resumed since
    assert "capture: the disks of 3 tiers copied" in [e.message for e in shop.events.all()]
    assert AuditEvent.objects.filter(action="stack.capture", actor=member).exists()

    versions = {v.appliance.identifier: v for v in _own_versions(project)}
    assert sorted(versions) == ["shop-app", "shop-db", "shop-web"]
    for tier, port in (("db", 5432), ("app", 8080), ("web", 80)):
        version = versions[f"shop-{tier}"]
        instance = shop.instances.get(role=tier)
        assert version.version == "1.0"
        assert version.appliance.role == tier
        assert (version.min_vcpus, version.min_ram_mib) == (instance.vcpus, instance.memory_mib)
        assert version.service_port == port
        assert version.checksum_source == ApplianceVersion.ChecksumSource.UPLOAD
        assert "stack 'shop'" in version.appliance.description
        assert version.image_state.status == ApplianceVersion.ImageStatus.READY
        assert version.image.virtual_size_bytes >= 64 * 1024**2

    template = StackTemplate.objects.get(pk=body["template"])
    assert (template.project, template.name, body["template_name"]) == (project, "shop-1-0", "shop-1-0")
    original = TemplateDocument.from_json(shop.document)
    captured = TemplateDocument.from_json(template.document)
    for before, after in zip(original.tiers, captured.tiers, strict=True):
        assert (after.appliance, after.version) == (f"shop-{before.name}", "1.0")
        assert (after.name, after.depends_on, after.publish, after.settings, after.count) == (
            before.name,
            before.depends_on,
            before.publish,
            before.settings,
            before.count,
        )
    assert "Captured from stack 'shop'" in template.source
    assert list(Path(django_settings.CAPTURE_DIR).iterdir()) == []  # the copies went into the image cache

    again = step(
        lambda: stack_launch_template(user=member, project=project, name="shop2", template=template, lease_seconds=600)
    )
    again.refresh_from_db()
    assert again.status == Status.RUNNING, again.status_reason
    assert {i.role: i.appliance_version.appliance.identifier for i in again.instances.all()} == {
        "db": "shop-db",
        "app": "shop-app",
        "web": "shop-web",
    }


def test_a_shelved_stack_is_captured_and_stays_shelved(api, shop, member, project, step):
    step(lambda: shelving.stack_shelve(user=member, stack=shop))
    shop.refresh_from_db()
    assert shop.status == Status.SHELVED

    answer = step(lambda: _post(api, member, shop, appliance_prefix="kept", version="7"))

    assert Capture.objects.get(pk=answer.json()["id"]).status == JobStatus.READY
    shop.refresh_from_db()
    assert shop.status == Status.SHELVED
    assert sorted(v.appliance.identifier for v in _own_versions(project)) == ["kept-app", "kept-db", "kept-web"]


def test_a_disk_that_cannot_be_copied_fails_the_capture_and_gives_the_stack_back(api, shop, member, project, step):
    web = shop.instances.get(role="web")
    with open_driver("test:///default") as driver:
        driver.delete_volume(pool=web.host.storage_pool, name=web.volume_name)

    answer = step(lambda: _post(api, member, shop, appliance_prefix="shop", version="1"))

    made = Capture.objects.get(pk=answer.json()["id"])
    assert made.status == JobStatus.FAILED
    assert made.error == f"the disks could not be copied: {web.name}: its disk is missing from its host"
    assert made.template is None
    shop.refresh_from_db()
    assert shop.status == Status.RUNNING
    assert set(_states(shop).values()) == {"running"}
    assert any("capture failed" in e.message and e.is_error for e in shop.events.all())
    _nothing_made(project)


def test_a_name_taken_while_the_disks_were_copied_undoes_everything(api, shop, member, project, step, tmp_path):
    # The request found the names free; an upload takes one before the job adds its versions.
    answer = _post(api, member, shop, appliance_prefix="shop", version="1")
    capture_id = answer.json()["id"]
    disk = tmp_path / "upload.qcow2"
    disk.write_bytes(Path(shop.instances.first().appliance_version.image.path).read_bytes())
    taken = own_version_add(project=project, spec=OwnVersion(appliance="shop-web", version="1"), source=disk)
    files_before = _cache_files()

    step(lambda: capture.capture_job(stack_id=shop.pk, capture_id=capture_id))

    made = Capture.objects.get(pk=capture_id)
    assert made.status == JobStatus.FAILED
    assert made.error == "tier 'web': appliance 'shop-web' already has a version '1' in this project's catalog"
    assert _own_versions(project) == [taken]  # the upload's version stays; the capture's db and app are gone
    assert sorted(a.identifier for a in Appliance.objects.filter(feed=own_catalog(project))) == ["shop-web"]
    assert not StackTemplate.objects.filter(project=project).exists()
    assert _cache_files() == files_before
    assert (
        not CachedImage.objects.filter(versions__isnull=True)
        .exclude(pk=taken.image_id)
        .exclude(pk=shop.instances.first().appliance_version.image_id)
        .exists()
    )
    shop.refresh_from_db()
    assert shop.status == Status.RUNNING


def test_a_template_refused_at_the_end_removes_the_versions_and_their_files(api, shop, member, project, step):
    answer = _post(api, member, shop, appliance_prefix="shop", version="1")
    capture_id = answer.json()["id"]
    templates.template_create(
        user=member, project=project, name="shop-1", source=provisioning_fixtures.CLASSIC.read_text()
    )

    step(lambda: capture.capture_job(stack_id=shop.pk, capture_id=capture_id))

    made = Capture.objects.get(pk=capture_id)
    assert made.status == JobStatus.FAILED
    assert made.error.startswith("the template could not be made: project 'alpha' already has a template called")
    assert _own_versions(project) == []
    assert not Appliance.objects.filter(feed__project=project).exists()
    assert _cache_files() == []
    assert list(StackTemplate.objects.filter(project=project).values_list("name", flat=True)) == ["shop-1"]


def test_a_job_run_twice_or_for_a_stack_no_longer_waiting_does_nothing(api, shop, member, project, step):
    answer = _post(api, member, shop, appliance_prefix="shop", version="1")
    capture_id = answer.json()["id"]
    Stack.objects.filter(pk=shop.pk).update(status=Status.RUNNING)  # someone (the watchdog) settled it meanwhile

    assert capture.capture_job(stack_id=shop.pk, capture_id=capture_id) == "failed"
    assert capture.capture_job(stack_id=shop.pk, capture_id=capture_id) == "capture is not waiting for this job"
    assert Capture.objects.get(pk=capture_id).error == "the stack changed before its capture began; ask again"
    _nothing_made(project)


def test_a_capture_whose_worker_died_is_ended_and_what_it_made_removed(api, shop, member, project, step, tmp_path):
    from datetime import timedelta

    from django.utils import timezone

    answer = _post(api, member, shop, appliance_prefix="shop", version="1")
    capture_id = answer.json()["id"]
    started = timezone.now()
    Capture.objects.filter(pk=capture_id).update(status=JobStatus.RUNNING, started_at=started, updated_at=started)
    disk = tmp_path / "half.qcow2"
    disk.write_bytes(Path(shop.instances.first().appliance_version.image.path).read_bytes())
    own_version_add(project=project, spec=OwnVersion(appliance="shop-db", version="1"), source=disk)

    assert capture.captures_watchdog(now=started + timedelta(seconds=60)) == 0  # still within a task's time
    later = started + timedelta(seconds=django_settings.WORKER_GONE_AFTER_SECONDS + 1)
    assert capture.captures_watchdog(now=later) == 1

    made = Capture.objects.get(pk=capture_id)
    assert made.status == JobStatus.FAILED
    assert made.error == "the worker making this capture stopped; nothing it made was kept"
    assert _own_versions(project) == []
    assert _cache_files() == []


# --- the web panel ------------------------------------------------------------------------------


def test_the_panel_refuses_outsiders_and_offers_the_form_to_members_only(client, shop, outsider, viewer, member):
    client.force_login(outsider)
    assert client.get(f"/stacks/{shop.pk}/capture/").status_code == 404
    assert client.post(f"/stacks/{shop.pk}/capture/", {"appliance_prefix": "x", "version": "1"}).status_code == 404

    client.force_login(viewer)
    page = client.get(f"/stacks/{shop.pk}/capture/", headers={"HX-Request": "true"})
    assert page.status_code == 200
    assert 'id="capture-submit"' not in page.content.decode()
    assert client.post(f"/stacks/{shop.pk}/capture/", {"appliance_prefix": "x", "version": "1"}).status_code == 403
    assert not Capture.objects.exists()

    client.force_login(member)
    page = client.get(f"/stacks/{shop.pk}/capture/").content.decode()
    assert 'id="capture-submit"' in page
    assert 'value="shop"' in page  # the stack's name offered as the prefix


def test_the_panel_captures_and_shows_the_template_made(client, shop, member, step):
    client.force_login(member)
    bad = client.post(
        f"/stacks/{shop.pk}/capture/", {"appliance_prefix": "Bad Prefix", "version": "1"}, headers={"HX-Request": "1"}
    )
    assert bad.status_code == 200  # htmx swaps only successful answers: the errors show on the form
    assert "The prefix must be 1-60 lowercase letters" in bad.content.decode()

    answer = step(
        lambda: client.post(
            f"/stacks/{shop.pk}/capture/", {"appliance_prefix": "shop", "version": "1"}, headers={"HX-Request": "1"}
        )
    )

    assert answer.status_code == 200
    text = answer.content.decode()
    assert "Capturing shop as version 1" in text
    panel = client.get(f"/stacks/{shop.pk}/capture/", headers={"HX-Request": "1"}).content.decode()
    assert "shop-1</a> launches it" in panel
    assert 'hx-trigger="every 2s"' not in panel  # nothing under way: the list does not poll

    plain = client.post(f"/stacks/{shop.pk}/capture/", {"appliance_prefix": "shop", "version": "2"})
    assert plain.status_code == 302
    assert plain["Location"] == f"/stacks/{shop.pk}/"


def test_the_panels_example_names_the_stacks_own_first_tier(client, shop, member):
    client.force_login(member)
    tiers = shop.document["tiers"]
    assert tiers[0]["name"] == "db"
    # The same tiers in another order: the example follows the stack's first, whatever it is called.
    Stack.objects.filter(pk=shop.pk).update(document={**shop.document, "tiers": [*tiers[1:], tiers[0]]})
    first = tiers[1]["name"]
    panel = client.get(f"/stacks/{shop.pk}/capture/", headers={"HX-Request": "1"}).content.decode()
    assert f"tier {first} as shop-{first}." in panel
    assert "tier db" not in panel.lower()
    assert "shop-db" not in panel


def test_what_a_stack_was_launched_from_meanwhile_is_withdrawn_not_removed(api, shop, member, project, step, tmp_path):
    from datetime import timedelta

    from django.utils import timezone

    from provisioning.services.launch import stack_launch

    answer = _post(api, member, shop, appliance_prefix="shop", version="1")
    capture_id = answer.json()["id"]
    started = timezone.now()
    Capture.objects.filter(pk=capture_id).update(status=JobStatus.RUNNING, started_at=started, updated_at=started)
    disk = tmp_path / "made.qcow2"
    disk.write_bytes(Path(shop.instances.first().appliance_version.image.path).read_bytes())
    made = own_version_add(project=project, spec=OwnVersion(appliance="shop-db", version="1", role="db"), source=disk)
    Stack.objects.filter(pk=shop.pk).update(status=Status.RUNNING)
    early = step(lambda: stack_launch(user=member, project=project, name="early", appliance_version=made))
    early.refresh_from_db()
    assert early.status == Status.RUNNING, early.status_reason

    later = started + timedelta(seconds=django_settings.WORKER_GONE_AFTER_SECONDS + 1)
    assert capture.captures_watchdog(now=later) == 1

    made.refresh_from_db()
    assert made.withdrawn
    assert made.image.status == CachedImage.Status.READY
    assert Path(made.image.path).is_file()
    assert Capture.objects.get(pk=capture_id).error.endswith(
        "kept, withdrawn, as stacks were launched from them meanwhile: shop-db 1"
    )


def test_the_stack_page_snippet_loads_the_panel_and_offers_a_link_without_scripts(shop):
    from django.template.loader import render_to_string

    html = render_to_string("transfers/_stack_capture.html", {"stack": shop})
    assert f'hx-get="/stacks/{shop.pk}/capture/"' in html
    assert f'href="/stacks/{shop.pk}/capture/"' in html
    shop.status = Status.DELETED
    assert render_to_string("transfers/_stack_capture.html", {"stack": shop}).strip() == ""
