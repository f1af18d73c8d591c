"""The shared image cache under hostile feeds: slow servers, bombs, a full disk, poisoned keys."""

from __future__ import annotations

import os
import threading
import time

import pytest
from django.db import connection

from catalog import services
from catalog.images import inspect_image
from catalog.models import ApplianceVersion, CachedImage, Feed, ImageDelivery
from catalog.services import CatalogError
from tests.catalog.hostile_servers import DripServer, http_response
from tests.catalog.publishing import compressed_bomb, publish
from tests.factories import ApplianceVersionFactory, FeedFactory, ProjectFactory

MIB = 1024**2
GIB = 1024**3


@pytest.fixture
def cache(settings, tmp_path):
    settings.IMAGE_CACHE_DIR = tmp_path / "cache"
    return settings.IMAGE_CACHE_DIR


def import_feed(url: str, *, project=None) -> Feed:
    feed = FeedFactory(url=url, project=project)
    services.feed_import(feed=feed)
    feed.refresh_from_db()
    assert feed.last_status == Feed.ImportStatus.OK, feed.last_error
    return feed


def version_of(feed: Feed) -> ApplianceVersion:
    return ApplianceVersion.objects.select_related("image").get(appliance__feed=feed)


# Slow drip -------------------------------------------------------------------------------------


def test_a_dripping_image_server_is_cut_off_and_leaves_nothing(cache, settings, db):
    settings.FETCH_IMAGE_DEADLINE_SECONDS = 0.5
    body = b"x" * 60
    response = http_response(body)
    with DripServer(response, at_once=len(response) - len(body)) as drip:
        version = ApplianceVersionFactory(image_url=f"{drip.base_url}/web.qcow2")
        started = time.monotonic()
        with pytest.raises(CatalogError, match=r"longer than 0\.5 s"):
            services.image_ensure_cached(version=version)
        assert time.monotonic() - started < 1.5
    assert [p.name for p in cache.iterdir()] == []


def test_partial_files_of_dead_downloads_are_swept(cache, settings, http_server, db):
    cache.mkdir()
    dead = cache / f".{'ab' * 32}-qcow2.4242.download"
    dead.write_bytes(b"left by a worker that was killed")
    old = time.time() - settings.TASK_TIMEOUT_SECONDS - 60
    os.utime(dead, (old, old))
    alive = cache / f".{'cd' * 32}-qcow2.4343.download"
    alive.write_bytes(b"another worker is still writing this")
    services.image_ensure_cached(version=version_of(import_feed(publish(http_server))))
    assert not dead.exists()
    assert alive.exists()


# Decompression bomb and the cache's size ---------------------------------------------------------


def test_a_decompression_bomb_is_refused_before_conversion(cache, settings, http_server, db):
    settings.IMAGE_MAX_CONVERTED_BYTES = 16 * MIB
    bomb = compressed_bomb(http_server.root)
    bomb.rename(http_server.root / "web.qcow2")
    version = version_of(import_feed(publish(http_server, make_image=False)))
    with pytest.raises(CatalogError, match="once converted, over the limit of 16777216"):
        services.image_ensure_cached(version=version)
    assert [p.name for p in cache.iterdir()] == []
    assert ApplianceVersion.objects.get(pk=version.pk).image_state.status == "error"


@pytest.fixture
def three_images(cache, settings, http_server, db):
    """Three shared appliances whose converted images fit the cache two at a time."""
    versions = []
    for index, size in enumerate(("16M", "17M", "18M")):
        url = publish(http_server, name=f"a{index}.qcow2", size=size, appliance=f"a{index}", feed_name=f"f{index}.xml")
        versions.append(version_of(import_feed(url)))
    # Room is made for what qemu-img measures (a little more than the converted file), then the file counts.
    measured = inspect_image(
        http_server.root / "a2.qcow2", declared_format="qcow2", max_virtual_bytes=GIB, max_converted_bytes=GIB
    ).converted_bytes
    first = services.image_ensure_cached(version=versions[0])
    settings.IMAGE_CACHE_MAX_BYTES = 2 * first.size_bytes + measured - 1
    return versions


def _in_use(version: ApplianceVersion, project, member_user) -> None:
    from provisioning.services.launch import stack_launch

    stack_launch(user=member_user, project=project, name=f"uses-{version.pk}", appliance_version=version)


def _state(version: ApplianceVersion) -> str:
    version.image.refresh_from_db()
    return version.image.status


def test_the_least_recently_used_image_makes_room(three_images, settings):
    a, b, c = three_images
    b_path = services.image_ensure_cached(version=b).path
    services.image_ensure_cached(version=a)  # a is used again: b is now the least recently used
    services.image_ensure_cached(version=c)
    assert [_state(v) for v in (a, b, c)] == ["ready", "missing", "ready"]
    assert not os.path.exists(b_path)
    total = sum(CachedImage.objects.filter(status="ready").values_list("size_bytes", flat=True))
    assert total <= settings.IMAGE_CACHE_MAX_BYTES
    assert services.image_ensure_cached(version=b).status == "ready"  # downloaded again when needed


def test_an_image_a_live_instance_uses_is_never_evicted(three_images, member, project, test_host):
    a, b, c = three_images
    services.image_ensure_cached(version=b)
    services.image_ensure_cached(version=a)
    _in_use(b, project, member)  # b is the least recently used, but an instance uses it
    services.image_ensure_cached(version=c)
    assert [_state(v) for v in (a, b, c)] == ["missing", "ready", "ready"]


def test_a_cache_full_of_images_in_use_refuses_a_new_one(three_images, cache, member, project, test_host):
    a, b, c = three_images
    services.image_ensure_cached(version=b)
    _in_use(a, project, member)
    _in_use(b, project, member)
    with pytest.raises(CatalogError, match="the image cache is full"):
        services.image_ensure_cached(version=c)
    assert [_state(v) for v in (a, b)] == ["ready", "ready"]
    assert sorted(p.name for p in cache.iterdir()) == sorted(os.path.basename(v.image.path) for v in (a, b))


# One project's feed must not change what another project's launch uses ----------------------------


def test_a_private_feed_declaring_a_shared_image_as_raw_cannot_break_it(cache, http_server, db):
    shared_url = publish(http_server, feed_name="shared.xml")
    hostile_url = publish(http_server, feed_name="hostile.xml", disk_format="raw", make_image=False)
    hostile = version_of(import_feed(hostile_url, project=ProjectFactory()))  # imported first
    shared = version_of(import_feed(shared_url))
    assert hostile.image.sha256 == shared.image.sha256
    assert hostile.image_id != shared.image_id
    image = services.image_ensure_cached(version=shared)
    assert (image.status, image.source_format) == ("ready", "qcow2")
    with pytest.raises(CatalogError, match="says the image is raw, but its header says qcow2"):
        services.image_ensure_cached(version=hostile)
    shared.image.refresh_from_db()
    assert (shared.image.status, shared.image.path) == ("ready", image.path)


def test_a_version_may_not_change_its_format(cache, http_server, db):
    url = publish(http_server)
    feed = import_feed(url)
    publish(http_server, disk_format="raw", make_image=False)
    services.feed_import(feed=feed)
    feed.refresh_from_db()
    assert feed.last_status == Feed.ImportStatus.ERROR
    assert "changed its image" in feed.last_error


@pytest.mark.django_db(transaction=True)
def test_a_strangers_slow_download_of_the_same_image_does_not_hold_up_mine(cache, settings, http_server, monkeypatch):
    settings.FETCH_IMAGE_DEADLINE_SECONDS = 2
    mine = version_of(import_feed(publish(http_server, feed_name="shared.xml")))
    image = http_server.root / "web.qcow2"
    body = image.read_bytes()
    response = http_response(body)
    with DripServer(response, at_once=len(response) - len(body)) as drip:
        theirs = version_of(
            import_feed(
                publish(http_server, feed_name="theirs.xml", make_image=False, image_url=f"{drip.base_url}/x"),
                project=ProjectFactory(),
            )
        )
        assert theirs.image_id == mine.image_id  # same bytes, same format: one cached image
        failures = []

        def their_launch() -> None:
            try:
                services.image_ensure_cached(version=theirs)
            except CatalogError as exc:
                failures.append(str(exc))
            finally:
                connection.close()

        stranger = threading.Thread(target=their_launch)
        stranger.start()
        deadline = time.monotonic() + 2
        while not ImageDelivery.objects.filter(version=theirs, status="downloading").exists():
            assert time.monotonic() < deadline, "the stranger never started"
            time.sleep(0.02)
        started = time.monotonic()
        real_sleep = time.sleep

        def impatient(seconds: float) -> None:
            if threading.current_thread() is threading.main_thread() and time.monotonic() - started > 1.5:
                raise AssertionError("my launch is waiting for someone else's download")
            real_sleep(seconds)

        monkeypatch.setattr(time, "sleep", impatient)
        got = services.image_ensure_cached(version=mine)
        took = time.monotonic() - started
        stranger.join(timeout=10)
    assert took < 1.5, f"waited {took:.1f} s for someone else's download"
    assert got.status == "ready"
    assert len(failures) == 1
    assert "longer than 2 s" in failures[0]
    got.refresh_from_db()
    assert got.status == "ready"  # their failure came after and did not mark it broken


def test_a_cached_file_names_content_and_format(cache, http_server, db):
    image = services.image_ensure_cached(version=version_of(import_feed(publish(http_server))))
    assert image.path.endswith(f"/{image.sha256}-qcow2.qcow2")


# Scratch folders -----------------------------------------------------------------------------------


def test_scratch_folders_of_dead_downloads_are_swept(cache, settings, http_server, db):
    dead = cache / ".scratch" / "0123456789abcdef"
    dead.mkdir(parents=True)
    (dead / "download").write_bytes(b"left by a worker that was killed")
    old = time.time() - settings.TASK_TIMEOUT_SECONDS - 60
    os.utime(dead, (old, old))
    alive = cache / ".scratch" / "fedcba9876543210"
    alive.mkdir()
    (alive / "download").write_bytes(b"another worker is still writing this")
    services.image_ensure_cached(version=version_of(import_feed(publish(http_server))))
    assert not dead.exists()
    assert (alive / "download").exists()


def test_a_download_stopped_by_an_unexpected_error_leaves_no_scratch(cache, http_server, db):
    from catalog.image_cache import image_download

    version = version_of(import_feed(publish(http_server, size="64M")))

    def crash(done: int, total: int) -> None:
        raise RuntimeError("the worker is going away")

    with pytest.raises(RuntimeError, match="going away"):
        image_download(version=version, progress=crash)
    assert list(cache.rglob("*")) == []
