"""The portal consumes its own VMcast over HTTP: another project subscribes to the URL the API gives,
imports the feed and downloads an image, verified against the feed's sha256.

The portal runs under daphne on 127.0.0.1 (``live_portal``); the subscriber is the portal's own
fetcher, with loopback allowed as in every test (``PORTAL_FETCH_ALLOWED_PRIVATE_HOSTS``).
"""

from __future__ import annotations

import subprocess
import urllib.error
import urllib.request

import pytest

from catalog import services as catalog_services
from catalog.image_cache import image_ensure_cached
from catalog.models import ApplianceVersion, Feed
from catalog.own_images import OwnVersion, own_version_add


@pytest.fixture
def published(settings, tmp_path, project):
    settings.IMAGE_CACHE_DIR = tmp_path / "cache"
    source = tmp_path / "db.qcow2"
    subprocess.run(["qemu-img", "create", "-f", "qcow2", str(source), "3M"], check=True, capture_output=True)
    spec = OwnVersion(appliance="shop-db", version="2.1", role="db", service_port=5432, min_ram_mib=192)
    return own_version_add(project=project, spec=spec, source=source)


def test_another_project_subscribes_to_the_vmcast_and_downloads_its_image(
    live_portal, settings, published, project, owner, other_project, outsider, api
):
    settings.PORTAL_BASE_URL = live_portal
    url = api(owner).post(f"/api/v1/projects/{project.pk}/vmcast/rotate/").json()["vmcast_url"]
    assert url.startswith(f"{live_portal}/vmcast/{project.pk}/")

    feed = catalog_services.feed_subscribe_and_import(user=outsider, url=url, project=other_project)

    assert feed.last_status == Feed.ImportStatus.OK, feed.last_error
    (copy,) = ApplianceVersion.objects.filter(appliance__feed=feed).select_related("appliance")
    assert (copy.appliance.identifier, copy.version, copy.appliance.role) == ("shop-db", "2.1", "db")
    assert (copy.service_port, copy.min_ram_mib, copy.disk_format) == (5432, 192, "qcow2")
    assert copy.declared_virtual_bytes == published.image.virtual_size_bytes
    image = image_ensure_cached(version=copy)
    copy.refresh_from_db()
    assert copy.image_state.status == ApplianceVersion.ImageStatus.READY
    assert image.virtual_size_bytes == published.image.virtual_size_bytes

    # Replacing the token ends the subscription's access at once: its next import fails with a 404.
    api(owner).post(f"/api/v1/projects/{project.pk}/vmcast/rotate/")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(url, timeout=10)
    assert refused.value.code == 404
