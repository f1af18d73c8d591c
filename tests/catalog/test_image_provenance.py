"""Cached bytes belong to the versions whose own URL delivered them, not to whoever names their sha256.

Project alpha's feed brings an image into the cache. Project beta's feed names the same sha256 with
a URL that does not deliver it: beta's version must not get those bytes, nor learn from its status
or its disk size that anyone cached them.
"""

from __future__ import annotations

import shutil

import pytest

from catalog import services
from catalog.models import ApplianceVersion, CachedImage
from portal import errors
from provisioning.drivers import open_driver
from provisioning.models import Status
from tests.provisioning.image_support import launch, launch_tiers, published_version


@pytest.fixture
def cache(settings, tmp_path):
    settings.IMAGE_CACHE_DIR = tmp_path / "cache"
    return settings.IMAGE_CACHE_DIR


@pytest.fixture
def theirs_and_mine(http_server, project, other_project, cache):
    """alpha's version (image served) and beta's, naming the same sha256 at a URL that answers 404."""
    theirs = published_version(http_server, appliance="demo-db", project=project)
    mine = published_version(
        http_server,
        appliance="demo-db",
        project=other_project,
        make_image=False,
        image_url=f"{http_server.base_url}/elsewhere/demo-db.qcow2",
    )
    assert (mine.image.sha256, mine.image_id) == (theirs.image.sha256, theirs.image_id)  # one row for the bytes
    return theirs, mine


def image_status_seen_by(api, user) -> list[str]:
    response = api(user).get("/api/v1/appliances/")
    assert response.status_code == 200
    return [version["image_status"] for appliance in response.json()["results"] for version in appliance["versions"]]


def test_naming_a_cached_sha256_gets_neither_the_bytes_nor_a_word_about_them(theirs_and_mine, outsider, api):
    theirs, mine = theirs_and_mine
    before = image_status_seen_by(api, outsider)
    services.image_ensure_cached(version=theirs)  # alpha's image is now in the cache
    assert image_status_seen_by(api, outsider) == before == ["missing"]
    fresh = ApplianceVersion.objects.get(pk=mine.pk)
    assert fresh.image_state.status == "missing"
    assert fresh.known_virtual_bytes is None  # its disk size is not learned from alpha's copy either


def test_launching_it_does_not_boot_the_cached_bytes(theirs_and_mine, outsider, other_project, test_host, step):
    theirs, mine = theirs_and_mine
    services.image_ensure_cached(version=theirs)

    def refused() -> None:
        with pytest.raises(errors.WrongState, match="is not known yet"):
            launch(outsider, other_project, mine)

    step(refused)  # a one-click launch has no disk size to claim: alpha's copy does not give it one
    stack = step(lambda: launch_tiers(outsider, other_project, "borrowed", ("demo-db", 1)))
    stack.refresh_from_db()
    assert stack.status == Status.ERROR
    assert "404" in stack.status_reason
    with open_driver("test:///default") as driver:
        assert stack.instances.get().domain_name not in {domain.name for domain in driver.list_domains()}
    assert ApplianceVersion.objects.get(pk=mine.pk).image_state.status == "error"


def test_once_its_own_url_delivers_the_same_bytes_it_may_use_them_stored_once(theirs_and_mine, http_server, cache):
    theirs, mine = theirs_and_mine
    stored = services.image_ensure_cached(version=theirs)
    inode = (cache / stored.path).stat().st_ino
    copy = http_server.root / "elsewhere" / "demo-db.qcow2"
    copy.parent.mkdir()
    shutil.copy(http_server.root / "demo-db.qcow2", copy)
    got = services.image_ensure_cached(version=mine)
    assert got.pk == stored.pk
    assert ApplianceVersion.objects.get(pk=mine.pk).image_state.status == "ready"
    assert CachedImage.objects.filter(sha256=stored.sha256).count() == 1
    assert [path.name for path in cache.iterdir()] == [f"{stored.sha256}-qcow2.qcow2"]
    assert (cache / got.path).stat().st_ino == inode  # verified and dropped, not written again
