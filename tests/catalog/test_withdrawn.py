"""Versions a feed stops listing are withdrawn (stacks keep them, launches prefer current ones), and
versions a feed gives no checksum for are pinned on their first download."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pytest

from catalog import services, vmcast
from catalog.feed_store import store_feed
from catalog.feeds import ParsedFeed, ParsedItem
from catalog.models import ApplianceVersion, CachedImage, Feed
from catalog.selectors import appliance_version_for_launch
from provisioning.models import Status
from tests.factories import ApplianceVersionFactory, CachedImageFactory, FeedFactory

JANUARY = datetime(2024, 1, 1, tzinfo=UTC)
FEBRUARY = datetime(2024, 2, 1, tzinfo=UTC)


def ours(*versions: str, appliance: str = "demo-web", broken: bool = False) -> bytes:
    """Our VMcast listing ``versions`` of ``appliance`` (each with its own checksum); ``broken`` spoils one."""
    items = [
        vmcast.FeedItem(
            appliance=appliance,
            title="Demo web",
            description="",
            version=version,
            url=f"https://images.example.org/web-{version}.qcow2",
            size_bytes=1024,
            sha256=hashlib.sha256(version.encode()).hexdigest(),
            disk_format="qcow2",
        )
        for version in versions
    ]
    data = vmcast.render_feed(title="Test feed", link="https://example.org", description="", items=items)
    return data.replace(b"<vmc:sha256>", b"<vmc:sha256>not-hex", 1) if broken else data


def plain(*versions: str) -> bytes:
    """An Enomaly-style VMcast: titles and enclosures, no checksum."""
    items = "".join(
        f"<item><title>Tiny web {version}</title><pubDate>Mon, 01 Jan 2024 00:00:00 +0000</pubDate>"
        f'<enclosure url="https://images.example.org/tiny-{version}.qcow2" length="1024" '
        'type="application/x-qemu-disk"/></item>'
        for version in versions
    )
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>Plain</title>{items}</channel></rss>'.encode()


@pytest.fixture
def feed(http_server, project):
    return FeedFactory(project=project, url=f"{http_server.base_url}/feed.xml")


def serve_and_import(http_server, feed: Feed, data: bytes) -> Feed:
    http_server.routes["/feed.xml"] = (200, {}, data)
    services.feed_import(feed=feed)
    feed.refresh_from_db()
    return feed


def withdrawn() -> dict[str, bool]:
    return dict(ApplianceVersion.objects.values_list("version", "withdrawn"))


# Withdrawn.


def test_a_refused_feed_withdraws_nothing(http_server, feed):
    serve_and_import(http_server, feed, ours("1.0", "2.0"))
    refused = serve_and_import(http_server, feed, ours("2.0", broken=True))
    assert refused.last_status == Feed.ImportStatus.ERROR
    assert withdrawn() == {"1.0": False, "2.0": False}


def test_versions_no_longer_listed_are_withdrawn_and_current_again_when_listed(http_server, feed):
    serve_and_import(http_server, feed, ours("1.0", "2.0"))
    assert withdrawn() == {"1.0": False, "2.0": False}
    assert serve_and_import(http_server, feed, ours("2.0")).last_status == Feed.ImportStatus.OK
    assert withdrawn() == {"1.0": True, "2.0": False}
    serve_and_import(http_server, feed, ours("1.0", "3.0"))
    assert withdrawn() == {"1.0": False, "2.0": True, "3.0": False}


def test_withdrawn_versions_still_go_when_the_feed_is_past_its_limit(http_server, feed, settings):
    settings.FEED_MAX_ITEMS = 2
    serve_and_import(http_server, feed, ours("1.0", "2.0"))
    serve_and_import(http_server, feed, ours("3.0", "4.0"))
    assert withdrawn() == {"3.0": False, "4.0": False}


def test_pages_and_api_say_a_version_is_withdrawn(http_server, feed, client, api, member):
    serve_and_import(http_server, feed, ours("1.0", "2.0"))
    serve_and_import(http_server, feed, ours("2.0"))
    appliance = feed.appliances.get()
    client.force_login(member)
    page = client.get(f"/catalog/appliances/{appliance.pk}/").content.decode()
    assert page.count(">withdrawn</span>") == 1
    assert page.count(">verified</span>") == 2
    versions = api(member).get(f"/api/v1/appliances/{appliance.pk}/").json()["versions"]
    assert {(v["version"], v["withdrawn"], v["checksum_source"]) for v in versions} == {
        ("1.0", True, "feed"),
        ("2.0", False, "feed"),
    }


@pytest.fixture
def two_ready_versions(ready_version, project):
    """Versions 1.0 (January) and 2.0 (February) of one appliance of ``project``'s feed, both downloaded."""
    Feed.objects.filter(pk=ready_version.appliance.feed_id).update(project=project)
    ApplianceVersion.objects.filter(pk=ready_version.pk).update(version="1.0", published_at=JANUARY)
    newer = ApplianceVersionFactory(
        appliance=ready_version.appliance,
        version="2.0",
        published_at=FEBRUARY,
        image=ready_version.image,
        delivered=True,
    )
    ready_version.refresh_from_db()
    return ready_version, newer


def listing(*versions: ApplianceVersion) -> ParsedFeed:
    """A feed listing ``versions`` as they are stored (same bytes): what an import of it accepts."""
    return ParsedFeed(
        title="Test feed",
        items=[
            ParsedItem(
                appliance=version.appliance.identifier,
                title=version.appliance.title,
                description="",
                role=version.appliance.role,
                version=version.version,
                url=version.image_url,
                size_bytes=version.size_bytes,
                media_type="",
                sha256=version.image.sha256,
                disk_format=version.image.source_format,
                arch="x86_64",
                min_ram_mib=version.min_ram_mib,
                min_vcpus=version.min_vcpus,
                service_port=version.service_port,
                published=version.published_at,
            )
            for version in versions
        ],
    )


def test_a_launch_takes_a_current_version_over_a_withdrawn_newer_one(
    api, member, project, test_host, two_ready_versions, step
):
    older, newer = two_ready_versions
    appliance = older.appliance
    assert appliance_version_for_launch(user=member, appliance=appliance, version=None) == newer
    store_feed(feed=appliance.feed, parsed=listing(older))  # the publisher withdrew 2.0
    body = {"appliance": appliance.pk, "project": project.pk, "name": "current"}
    response = step(lambda: api(member).post("/api/v1/stacks/", body, format="json"))
    assert response.status_code == 202, response.json()
    instance = newer.instances.model.objects.get(stack_id=response.json()["id"])
    assert instance.appliance_version == older
    # Named, a withdrawn version can still be had.
    assert appliance_version_for_launch(user=member, appliance=appliance, version="2.0") == newer


def test_a_stack_keeps_running_on_a_version_withdrawn_under_it(member, project, test_host, two_ready_versions, step):
    from provisioning.services.launch import stack_launch

    older, newer = two_ready_versions
    stack = step(lambda: stack_launch(user=member, project=project, name="keeps", appliance_version=newer))
    store_feed(feed=newer.appliance.feed, parsed=listing(older))
    newer.refresh_from_db()
    stack.refresh_from_db()
    assert (newer.withdrawn, stack.status) == (True, Status.RUNNING)
    assert stack.instances.get().appliance_version == newer


def test_a_withdrawn_version_a_stack_uses_is_not_trimmed(
    member, project, test_host, two_ready_versions, step, settings
):
    from provisioning.services.launch import stack_launch

    older, newer = two_ready_versions
    step(lambda: stack_launch(user=member, project=project, name="keeps", appliance_version=newer))
    settings.FEED_MAX_ITEMS = 1
    store_feed(feed=newer.appliance.feed, parsed=listing(older))
    assert ApplianceVersion.objects.filter(pk=newer.pk, withdrawn=True).exists()


# Pinned on first download.


def test_a_feed_without_checksums_stores_versions_without_images(http_server, feed, api, member, client):
    imported = serve_and_import(http_server, feed, plain("1.0", "2.0"))
    assert imported.last_status == Feed.ImportStatus.OK, imported.last_error
    versions = ApplianceVersion.objects.filter(appliance__feed=feed)
    assert {(v.version, v.image_id, v.checksum_source) for v in versions} == {
        ("1.0", None, "pinned"),
        ("2.0", None, "pinned"),
    }
    assert not CachedImage.objects.exists()
    appliance = feed.appliances.get()
    shown = api(member).get(f"/api/v1/appliances/{appliance.pk}/").json()["versions"]
    assert {(v["sha256"], v["checksum_source"], v["package"], v["image_status"]) for v in shown} == {
        (None, "pinned", "disk", "missing")
    }
    client.force_login(member)
    assert client.get(f"/catalog/appliances/{appliance.pk}/").content.decode().count(">pinned on first download<") == 2
    assert client.get("/catalog/").status_code == 200


def test_a_pinned_version_keeps_the_image_its_first_download_pinned(http_server, feed):
    serve_and_import(http_server, feed, plain("1.0"))
    pinned = CachedImageFactory()
    ApplianceVersion.objects.update(image=pinned)  # what the first download does
    assert serve_and_import(http_server, feed, plain("1.0")).last_status == Feed.ImportStatus.OK
    version = ApplianceVersion.objects.get()
    assert (version.image_id, version.checksum_source) == (pinned.pk, "pinned")


def test_a_checksum_the_feed_adds_must_name_the_pinned_bytes(http_server, feed):
    serve_and_import(http_server, feed, plain("1.0"))
    ApplianceVersion.objects.update(image=CachedImageFactory(sha256="a" * 64))  # pinned on first download
    refused = serve_and_import(http_server, feed, ours("1.0", appliance="tiny-web"))  # now with other bytes
    assert refused.last_status == Feed.ImportStatus.ERROR
    assert "changed its image (sha256)" in refused.last_error
    version = ApplianceVersion.objects.get()
    assert (version.image.sha256, version.checksum_source) == ("a" * 64, "pinned")


def test_a_checksum_the_feed_adds_names_the_image_of_a_version_not_yet_downloaded(http_server, feed):
    serve_and_import(http_server, feed, plain("1.0"))
    imported = serve_and_import(http_server, feed, ours("1.0", appliance="tiny-web"))
    assert imported.last_status == Feed.ImportStatus.OK, imported.last_error
    version = ApplianceVersion.objects.get()
    assert version.checksum_source == "feed"
    assert version.image.sha256 == hashlib.sha256(b"1.0").hexdigest()


def test_a_verified_version_listed_without_a_checksum_keeps_its_image_and_stays_verified(http_server, feed):
    serve_and_import(http_server, feed, ours("1.0", appliance="tiny-web"))
    verified = ApplianceVersion.objects.get()
    assert serve_and_import(http_server, feed, plain("1.0")).last_status == Feed.ImportStatus.OK
    again = ApplianceVersion.objects.get()
    assert (again.image_id, again.checksum_source) == (verified.image_id, "feed")
