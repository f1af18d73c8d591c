"""Subscribing, importing and caching images, through the real fetcher and qemu-img."""

from __future__ import annotations

import logging
import re

import pytest

from catalog import services
from catalog.models import Appliance, ApplianceVersion, CachedImage, Feed
from catalog.services import CatalogError
from portal import errors
from portal.models import AuditEvent
from tests.catalog.publishing import publish
from tests.factories import FeedFactory


def test_member_subscribes_and_import_runs_after_commit(
    member, project, http_server, django_capture_on_commit_callbacks
):
    url = publish(http_server)
    with django_capture_on_commit_callbacks(execute=True):
        feed = services.feed_subscribe(user=member, url=url, project=project)
    feed.refresh_from_db()
    assert feed.last_status == Feed.ImportStatus.OK, feed.last_error
    assert feed.title == "Test feed"
    assert feed.last_item_count == 1
    version = ApplianceVersion.objects.get(appliance__feed=feed)
    assert version.image.status == CachedImage.Status.MISSING  # images download on first use


def test_viewer_cannot_subscribe(viewer, project):
    with pytest.raises(errors.PermissionDenied, match="needs the member role in project alpha: ask"):
        services.feed_subscribe(user=viewer, url="https://example.org/f.xml", project=project)
    assert not Feed.objects.exists()


def test_outsider_is_told_the_project_does_not_exist(outsider, project):
    with pytest.raises(errors.NotFound, match="no such project"):
        services.feed_subscribe(user=outsider, url="https://example.org/f.xml", project=project)


def test_only_operators_subscribe_the_shared_catalog(member, operator):
    with pytest.raises(errors.PermissionDenied, match="only operators"):
        services.feed_subscribe(user=member, url="https://example.org/f.xml", project=None)
    assert services.feed_subscribe(user=operator, url="https://example.org/f.xml", project=None).project is None


def test_bad_url_and_duplicate_subscription_are_refused_on_the_url_field(member, project):
    with pytest.raises(errors.Invalid, match="unsupported URL scheme") as bad_scheme:
        services.feed_subscribe(user=member, url="gopher://x/feed", project=project)
    assert list(bad_scheme.value.fields) == ["url"]
    services.feed_subscribe(user=member, url="https://example.org/f.xml", project=project)
    with pytest.raises(errors.Invalid, match="already subscribed") as duplicate:
        services.feed_subscribe(user=member, url="https://example.org/f.xml", project=project)
    assert duplicate.value.fields == {"url": ["this feed is already subscribed"]}
    assert Feed.objects.count() == 1


def test_subscribing_is_audited(member, project):
    feed = services.feed_subscribe(user=member, url="https://example.org/f.xml", project=project)
    event = AuditEvent.objects.get(action="feed.subscribe")
    assert (event.actor, event.project, event.detail) == (member, project, {"url": "https://example.org/f.xml"})
    assert event.target.startswith(f"catalog.feed:{feed.pk} ")


def test_subscribe_and_import_fills_the_catalog_at_once_and_reuses_the_subscription(
    operator, http_server, django_capture_on_commit_callbacks
):
    url = publish(http_server)
    with django_capture_on_commit_callbacks() as queued:
        feed = services.feed_subscribe_and_import(user=operator, url=url, project=None)
        again = services.feed_subscribe_and_import(user=operator, url=url, project=None)
    assert queued == []  # imported here, not by a worker
    assert (feed.last_status, again.pk) == (Feed.ImportStatus.OK, feed.pk)
    assert Appliance.objects.get(feed=feed).identifier == "demo-web"
    assert AuditEvent.objects.filter(action="feed.subscribe").count() == 1


def test_subscribe_and_import_keeps_the_subscription_rules(member):
    with pytest.raises(errors.PermissionDenied, match="only operators"):
        services.feed_subscribe_and_import(user=member, url="https://example.org/f.xml", project=None)
    assert not Feed.objects.exists()


def test_member_unsubscribes_their_projects_feed_with_its_appliances(member, project):
    from tests.factories import ApplianceVersionFactory

    version = ApplianceVersionFactory(appliance__feed__project=project, appliance__feed__url="https://example.org/f")
    services.feed_unsubscribe(user=member, feed=version.appliance.feed)
    assert not Feed.objects.exists()
    assert not ApplianceVersion.objects.exists()
    event = AuditEvent.objects.get(action="feed.unsubscribe")
    assert (event.actor, event.detail) == (member, {"url": "https://example.org/f"})


def test_unsubscribing_needs_the_same_rights_as_subscribing(viewer, member, project):
    mine = FeedFactory(project=project)
    shared = FeedFactory(project=None)
    with pytest.raises(errors.PermissionDenied, match="needs the member role"):
        services.feed_unsubscribe(user=viewer, feed=mine)
    with pytest.raises(errors.PermissionDenied, match="only operators"):
        services.feed_unsubscribe(user=member, feed=shared)
    assert Feed.objects.count() == 2
    assert not AuditEvent.objects.exists()


def test_a_feed_whose_versions_stacks_use_cannot_be_removed(operator, member, project, test_host, ready_version):
    from provisioning.services.launch import stack_launch

    stack_launch(user=member, project=project, name="uses-it", appliance_version=ready_version)
    feed = ready_version.appliance.feed
    named = re.escape("while stacks use its appliances: 'uses-it' (project 'alpha')")  # a shared feed's: with project
    with pytest.raises(errors.WrongState, match=named):
        services.feed_unsubscribe(user=operator, feed=feed)
    assert Feed.objects.filter(pk=feed.pk).exists()
    assert not AuditEvent.objects.filter(action="feed.unsubscribe").exists()


def test_feed_that_is_not_xml_records_the_error_and_keeps_the_catalog(http_server, db):
    url = publish(http_server)
    feed = FeedFactory(url=url)
    services.feed_import(feed=feed)
    assert Appliance.objects.count() == 1
    (http_server.root / "feed.xml").write_bytes(b"<<< definitely not xml")
    services.feed_import(feed=feed)
    feed.refresh_from_db()
    assert feed.last_status == Feed.ImportStatus.ERROR
    assert "not a well-formed XML feed" in feed.last_error
    assert Appliance.objects.count() == 1
    assert ApplianceVersion.objects.count() == 1


def test_item_without_enclosure_imports_nothing(http_server, db):
    url = publish(http_server)
    feed_xml = http_server.root / "feed.xml"
    feed_xml.write_bytes(feed_xml.read_bytes().replace(b"<enclosure", b"<nothing"))
    feed = FeedFactory(url=url)
    services.feed_import(feed=feed)
    feed.refresh_from_db()
    assert feed.last_status == Feed.ImportStatus.ERROR
    assert "no <enclosure>" in feed.last_error
    assert not Appliance.objects.exists()


def test_a_version_may_not_change_its_bytes(http_server, db):
    url = publish(http_server)
    feed = FeedFactory(url=url)
    services.feed_import(feed=feed)
    publish(http_server, size="32M")  # same version, different image
    services.feed_import(feed=feed)
    feed.refresh_from_db()
    assert feed.last_status == Feed.ImportStatus.ERROR
    assert "changed its image (sha256)" in feed.last_error


def test_unreachable_feed_is_an_error_not_a_crash(db):
    feed = FeedFactory(url="http://127.0.0.1:1/feed.xml")
    services.feed_import(feed=feed)
    feed.refresh_from_db()
    assert feed.last_status == Feed.ImportStatus.ERROR
    assert "cannot fetch" in feed.last_error


def test_image_is_downloaded_verified_and_converted_once(http_server, db, settings, tmp_path):
    settings.IMAGE_CACHE_DIR = tmp_path / "cache"
    feed = FeedFactory(url=publish(http_server))
    services.feed_import(feed=feed)
    version = ApplianceVersion.objects.get()
    progress = []
    image = services.image_ensure_cached(version=version, progress=lambda d, t: progress.append((d, t)))
    assert image.status == CachedImage.Status.READY
    assert image.virtual_size_bytes == 16 * 1024 * 1024
    assert image.path.endswith(f"{image.sha256}-qcow2.qcow2")
    assert progress
    assert progress[-1][0] == version.size_bytes
    (http_server.root / "web.qcow2").unlink()  # a second call must not download again
    assert services.image_ensure_cached(version=version).path == image.path


def test_sha256_mismatch_is_refused_and_leaves_no_file(http_server, db, settings, tmp_path):
    settings.IMAGE_CACHE_DIR = tmp_path / "cache"
    feed = FeedFactory(url=publish(http_server, corrupt_sha=True))
    services.feed_import(feed=feed)
    version = ApplianceVersion.objects.get()
    with pytest.raises(CatalogError, match="sha256 mismatch"):
        services.image_ensure_cached(version=version)
    state = ApplianceVersion.objects.get(pk=version.pk).image_state
    assert state.status == "error"
    assert "sha256 mismatch" in state.error
    assert list((tmp_path / "cache").iterdir()) == []


def test_hourly_refresh_reimports_every_feed(http_server, db, django_capture_on_commit_callbacks):
    from catalog.tasks import refresh_feeds

    feed = FeedFactory(url=publish(http_server))
    services.feed_import(feed=feed)
    publish(http_server, name="web2.qcow2", version="2.0")  # the publisher adds a version
    with django_capture_on_commit_callbacks(execute=True):
        assert refresh_feeds() == 1
    feed.refresh_from_db()
    assert feed.last_status == Feed.ImportStatus.OK
    assert sorted(ApplianceVersion.objects.values_list("version", flat=True)) == ["1.0", "2.0"]


def test_a_feed_whose_body_names_a_local_file_does_not_import_that_file(http_server, db, tmp_path):
    # feedparser, given bytes, first tries them as a path: a server answering with the name of a
    # local file (outside PORTAL_FETCH_FILE_ROOTS) or of /dev/zero must not make the worker read it.
    publish(http_server)
    local = tmp_path / "not-served" / "feed.xml"
    local.parent.mkdir()
    local.write_bytes((http_server.root / "feed.xml").read_bytes())
    http_server.routes["/path.xml"] = (200, {}, str(local).encode())
    feed = FeedFactory(url=f"{http_server.base_url}/path.xml")
    services.feed_import(feed=feed)
    feed.refresh_from_db()
    assert feed.last_status == Feed.ImportStatus.ERROR
    assert not Appliance.objects.exists()


SECRET = "s3cret-pass"


def test_credentials_in_a_feed_url_are_kept_for_fetching_but_never_audited(member, project):
    url = f"https://alice:{SECRET}@feeds.example.org/f.xml?token=t0ps3cret"
    feed = services.feed_subscribe(user=member, url=url, project=project)
    assert Feed.objects.get().url == url  # the fetcher needs them
    services.feed_unsubscribe(user=member, feed=feed)
    trail = " ".join(f"{event.detail} {event.target}" for event in AuditEvent.objects.all())
    assert SECRET not in trail
    assert "t0ps3cret" not in trail
    assert AuditEvent.objects.get(action="feed.subscribe").detail == {
        "url": "https://***@feeds.example.org/f.xml?token=***"
    }


def test_a_failed_import_neither_stores_nor_logs_the_credentials(db, caplog):
    feed = FeedFactory(url=f"http://alice:{SECRET}@127.0.0.1:1/feed.xml")
    with caplog.at_level(logging.DEBUG):
        services.feed_import(feed=feed)
    feed.refresh_from_db()
    assert feed.last_status == Feed.ImportStatus.ERROR
    assert "cannot fetch http://***@127.0.0.1:1/feed.xml" in feed.last_error
    assert SECRET not in feed.last_error
    assert caplog.records
    assert SECRET not in caplog.text


def test_item_problems_name_enclosures_without_their_credentials(http_server, db):
    url = publish(http_server, image_url=f"ftp://alice:{SECRET}@example.org/web.qcow2")
    feed = FeedFactory(url=url)
    services.feed_import(feed=feed)
    feed.refresh_from_db()
    assert "enclosure URL 'ftp://***@example.org/web.qcow2' is not http" in feed.last_error
    assert SECRET not in feed.last_error


def test_a_failed_image_download_does_not_repeat_the_credentials(http_server, db, settings, tmp_path):
    settings.IMAGE_CACHE_DIR = tmp_path / "cache"
    feed = FeedFactory(url=publish(http_server, image_url=f"http://alice:{SECRET}@127.0.0.1:1/web.qcow2"))
    services.feed_import(feed=feed)
    version = ApplianceVersion.objects.get()
    with pytest.raises(CatalogError) as caught:
        services.image_ensure_cached(version=version)
    error = ApplianceVersion.objects.get(pk=version.pk).image_state.error
    assert "http://***@127.0.0.1:1/web.qcow2" in error
    assert SECRET not in error
    assert SECRET not in str(caught.value)


def test_a_malformed_url_is_refused_on_the_url_field(member, project):
    with pytest.raises(errors.Invalid, match="malformed") as caught:
        services.feed_subscribe(user=member, url="http://[::1/feed.xml", project=project)
    assert list(caught.value.fields) == ["url"]
