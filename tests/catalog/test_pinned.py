"""Versions whose feed gives no checksum: the first delivered download pins the bytes, later ones must match."""

from __future__ import annotations

import hashlib
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone

from catalog import services
from catalog.image_cache import image_download
from catalog.image_room import STALE_DOWNLOAD
from catalog.models import ApplianceVersion, CachedImage, ImageDelivery
from catalog.services import CatalogError
from tests.catalog.package_builders import make_disk, xvm2
from tests.factories import ApplianceVersionFactory


@pytest.fixture
def cache(settings, tmp_path):
    settings.IMAGE_CACHE_DIR = tmp_path / "cache"
    return settings.IMAGE_CACHE_DIR


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def pinned(url: str, **fields) -> ApplianceVersion:
    return ApplianceVersionFactory(image=None, checksum_source="pinned", disk_format="", image_url=url, **fields)


def evict(version: ApplianceVersion) -> None:
    """What the cache does to make room: the row forgets the file, the file goes."""
    image = CachedImage.objects.get(pk=ApplianceVersion.objects.get(pk=version.pk).image_id)
    CachedImage.objects.filter(pk=image.pk).update(status=CachedImage.Status.MISSING, path="", size_bytes=0)
    Path(image.path).unlink()


def test_the_first_download_pins_the_bytes_and_their_format(cache, http_server, db):
    disk = make_disk(http_server.root / "app.img", "vdi")
    version = pinned(f"{http_server.base_url}/app.img")
    assert version.image is None
    assert image_download(version=version).status == "delivered"
    version.refresh_from_db()
    assert (version.image.sha256, version.image.source_format) == (sha256_of(disk), "vdi")
    assert version.checksum_source == "pinned"
    assert services.image_ensure_cached(version=version).pk == version.image_id


def test_changed_bytes_after_an_eviction_are_refused(cache, http_server, db):
    first_sha = sha256_of(make_disk(http_server.root / "app.img", "qcow2", size="16M"))
    version = pinned(f"{http_server.base_url}/app.img")
    assert image_download(version=version).status == "delivered"
    evict(version)
    swapped = make_disk(http_server.root / "app.img.new", "qcow2", size="17M")
    swapped.replace(http_server.root / "app.img")
    version.refresh_from_db()
    delivery = image_download(version=version)
    assert delivery.status == "error"
    assert "the image's bytes changed since they were pinned on first download" in delivery.error
    assert f"sha256 {first_sha} then, {sha256_of(http_server.root / 'app.img')} now" in delivery.error
    version.refresh_from_db()
    assert version.image.sha256 == first_sha  # still pinned to the first bytes
    assert version.image_state.status == "error"
    assert [p.name for p in cache.iterdir()] == []


def test_the_same_bytes_after_an_eviction_are_delivered_again(cache, http_server, db):
    make_disk(http_server.root / "app.img")
    version = pinned(f"{http_server.base_url}/app.img")
    image = services.image_ensure_cached(version=version)
    evict(version)
    version.refresh_from_db()
    again = services.image_ensure_cached(version=version)
    assert (again.pk, again.status) == (image.pk, "ready")


def test_a_download_that_read_the_version_before_its_pin_must_still_agree_with_it(cache, http_server, db):
    make_disk(http_server.root / "app.img", size="16M")
    version = pinned(f"{http_server.base_url}/app.img")
    read_before = ApplianceVersion.objects.get(pk=version.pk)  # as a worker that loaded it before the pin
    assert image_download(version=version).status == "delivered"
    evict(version)
    make_disk(http_server.root / "new.img", size="17M").replace(http_server.root / "app.img")
    delivery = image_download(version=read_before)
    assert delivery.status == "error"
    assert "changed since they were pinned on first download" in delivery.error
    version.refresh_from_db()
    assert version.image.status == CachedImage.Status.MISSING  # still the first bytes' row, evicted
    assert [p.name for p in cache.iterdir()] == []


def test_a_changed_url_serving_other_bytes_is_refused(cache, http_server, db):
    make_disk(http_server.root / "a.img", size="16M")
    make_disk(http_server.root / "b.img", size="17M")
    version = pinned(f"{http_server.base_url}/a.img")
    assert image_download(version=version).status == "delivered"
    ApplianceVersion.objects.filter(pk=version.pk).update(image_url=f"{http_server.base_url}/b.img")
    version.refresh_from_db()
    assert version.image_state.status == "missing"  # the new URL has delivered nothing yet
    with pytest.raises(CatalogError, match="changed since they were pinned on first download"):
        services.image_ensure_cached(version=version)


def test_two_versions_pinning_the_same_bytes_share_one_stored_image(cache, http_server, db):
    disk = make_disk(http_server.root / "app.img")
    (http_server.root / "mirror.img").write_bytes(disk.read_bytes())
    mine = pinned(f"{http_server.base_url}/app.img")
    theirs = pinned(f"{http_server.base_url}/mirror.img")
    stored = services.image_ensure_cached(version=mine)
    written = Path(stored.path).stat()
    assert services.image_ensure_cached(version=theirs).pk == stored.pk
    theirs.refresh_from_db()
    assert theirs.image_id == stored.pk
    assert CachedImage.objects.count() == 1
    again = Path(stored.path).stat()
    assert (again.st_ino, again.st_mtime_ns) == (written.st_ino, written.st_mtime_ns)  # not converted twice


def test_two_package_versions_pinning_the_same_package_share_it_and_are_both_sized(cache, http_server, db, tmp_path):
    package = xvm2(http_server.root / "app.xvm2", make_disk(tmp_path / "disk0.qcow2"))
    (http_server.root / "mirror.xvm2").write_bytes(package.read_bytes())
    versions = [pinned(f"{http_server.base_url}/{name}", package="xvm2") for name in ("app.xvm2", "mirror.xvm2")]
    images = [services.image_ensure_cached(version=version) for version in versions]
    assert images[0].pk == images[1].pk
    assert images[0].source_format == "xvm2"
    for version in versions:
        version.refresh_from_db()
        assert (version.min_vcpus, version.min_ram_mib) == (2, 512)


def test_a_version_without_a_checksum_that_is_not_pinned_is_refused(cache, http_server, db):
    make_disk(http_server.root / "app.img")
    version = ApplianceVersionFactory(image=None, checksum_source="feed", image_url=f"{http_server.base_url}/app.img")
    delivery = image_download(version=version)
    assert delivery.status == "error"
    assert "no checksum to check its image against" in delivery.error


class GatedServer:
    """Serves ``first`` to the first request once ``gate`` opens, and ``later`` to every other at once."""

    def __init__(self, first: bytes, later: bytes) -> None:
        self.gate = threading.Event()
        self.requests = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests += 1
                if server.requests == 1:
                    server.gate.wait(timeout=20)
                    body = first
                else:
                    body = later
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}/app.img"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def __enter__(self) -> GatedServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.gate.set()
        self._httpd.shutdown()
        self._httpd.server_close()


@pytest.mark.django_db(transaction=True)
def test_a_download_that_was_taken_over_must_agree_with_the_pin_it_finds(cache, tmp_path):
    first = make_disk(tmp_path / "first.img", size="16M").read_bytes()
    later = make_disk(tmp_path / "later.img", size="17M").read_bytes()
    with GatedServer(first, later) as server:
        version = pinned(server.url)
        outcome: list[ImageDelivery] = []

        def slow_download() -> None:
            try:
                outcome.append(image_download(version=ApplianceVersion.objects.get(pk=version.pk)))
            finally:
                connection.close()

        slow = threading.Thread(target=slow_download)
        slow.start()
        deadline = time.monotonic() + 10
        while server.requests == 0:
            assert time.monotonic() < deadline, "the first download never asked"
            time.sleep(0.02)
        # The first download looks dead (no heartbeat for longer than a download may be silent): taken over.
        ImageDelivery.objects.filter(version=version).update(updated_at=timezone.now() - STALE_DOWNLOAD - timedelta(1))
        taken_over = image_download(version=ApplianceVersion.objects.get(pk=version.pk))
        assert taken_over.status == "delivered"
        server.gate.set()
        slow.join(timeout=30)
    assert not slow.is_alive()
    version.refresh_from_db()
    assert version.image.sha256 == hashlib.sha256(later).hexdigest()  # the first finisher's pin holds
    assert outcome[0].status == "delivered"  # the late download changed nothing: not the pin, not the outcome
    assert ImageDelivery.objects.get(version=version).started_at == taken_over.started_at
    assert sorted(p.name for p in cache.iterdir()) == [Path(version.image.path).name]
