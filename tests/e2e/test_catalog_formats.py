"""Every catalog format end to end: the demo web appliance published four ways, imported, downloaded, one booted.

From the demo's own qcow2 image: a plain (Enomaly-style) VMcast of the disk, an Archipel VMcast of an
.xvm2 package (the disk gzipped inside, members named with a leading "/"), our VMcast of an OVA (the
disk as a streamOptimized vmdk, with a SHA-256 manifest), and a simplestreams index. Each is imported
from the loopback server and its image downloaded; every cached image holds exactly the demo disk's
contents (``qemu-img compare``). One VM proves the chain from a package to a page: the OVA's
appliance is launched and its web page read.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest

from catalog import services as catalog_services
from catalog.demo_appliances.appliances import MIN_RAM_MIB
from catalog.models import ApplianceVersion, Feed
from catalog.vmcast import FeedItem, render_feed
from provisioning.models import Status
from provisioning.services import lifecycle
from provisioning.services.launch import stack_launch
from tests.catalog.package_builders import domain_xml, ova, ovf_xml, qemu_img, xvm2
from tests.e2e.records import web_url
from tests.polling import page_text, wait_for

pytestmark = pytest.mark.e2e

PRODUCT = "org.example.demo:web:1.0:amd64"


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def plain_vmcast(base_url: str, image: Path) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
        f"<title>Plain demo VMcast</title><link>{base_url}/</link><description>The demo web tier</description>"
        "<item><title>Demo Web 1.0</title><description>A web page</description>"
        "<pubDate>Tue, 04 Jan 2011 10:00:00 GMT</pubDate>"
        f'<enclosure url="{base_url}/{image.name}" length="{image.stat().st_size}" type="application/x-qemu-disk"/>'
        "</item></channel></rss>"
    ).encode()


def archipel_vmcast(base_url: str, package: Path) -> bytes:
    return (
        "<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel>"
        f"<title>Archipel Appliances</title><link>{base_url}</link>"
        "<uuid>1e5ff9b0-1d2f-11e0-ac64-0800200c9a66</uuid><description>Appliances for Archipel</description>"
        "<item><title>demo-web-xvm2</title>"
        f"<link>{base_url}</link><uuid>9d2c4c0e-7f1b-3b7e-a3f5-1c2d3e4f5a6b</uuid>"
        f"<enclosure url='{base_url}/{package.name}' length='{package.stat().st_size}' "
        "type='application/enomalism2-xvm2'/>"
        "<description><![CDATA[Auto imported vmcast]]></description>"
        "<pubDate>2011-01-04 10:00:00.000000</pubDate></item></channel></rss>"
    ).encode()


def ova_vmcast(base_url: str, package: Path) -> bytes:
    item = FeedItem(
        appliance="demo-web-ova",
        title="Demo web (OVA)",
        description="The demo web tier, as an OVA",
        version="1.0",
        url=f"{base_url}/{package.name}",
        size_bytes=package.stat().st_size,
        sha256=sha256_of(package),
        disk_format="",
        package="ova",
        min_ram_mib=MIN_RAM_MIB,
        service_port=80,
        role="web",
    )
    return render_feed(title="OVA demo", link=base_url, description="", items=[item])


def simplestreams(root: Path, image: Path) -> None:
    """A stream's index and its products file naming ``image`` (a qcow2, as "disk1.img" items are)."""
    streams = root / "streams" / "v1"
    streams.mkdir(parents=True)
    products_path = "streams/v1/org.example.demo:download.json"
    updated = "Wed, 20 Mar 2024 09:34:02 +0000"
    index = {
        "format": "index:1.0",
        "updated": updated,
        "index": {
            "org.example.demo:download": {
                "datatype": "image-downloads",
                "format": "products:1.0",
                "path": products_path,
                "products": [PRODUCT],
                "updated": updated,
            }
        },
    }
    disk = {"ftype": "disk1.img", "path": image.name, "sha256": sha256_of(image), "size": image.stat().st_size}
    products = {
        "content_id": "org.example.demo:download",
        "datatype": "image-downloads",
        "format": "products:1.0",
        "updated": updated,
        "products": {
            PRODUCT: {
                "arch": "amd64",
                "os": "demo",
                "release": "web",
                "release_title": "Demo web",
                "version": "1.0",
                "versions": {"20240320": {"items": {"disk1.img": disk}}},
            }
        },
    }
    (streams / "index.json").write_text(json.dumps(index))
    (root / products_path).write_text(json.dumps(products))


def same_disk(cached: str, original: Path) -> bool:
    compared = subprocess.run(
        ["qemu-img", "compare", "-f", "qcow2", "-F", "qcow2", cached, str(original)], capture_output=True, text=True
    )
    return compared.returncode == 0


def imported(operator, project, url: str, expected_format: str) -> ApplianceVersion:
    feed = catalog_services.feed_subscribe_and_import(user=operator, url=url, project=project)
    assert feed.last_status == Feed.ImportStatus.OK, feed.last_error
    assert feed.format == expected_format
    (version,) = ApplianceVersion.objects.filter(appliance__feed=feed)
    return version


def test_each_format_imports_downloads_the_demo_disk_and_an_ova_boots(
    operator, member, project, inline_demo_catalog, demo_feed, tmp_path, django_capture_on_commit_callbacks
):
    base_url = demo_feed.rsplit("/", 1)[0]
    root = tmp_path / "www"
    image = root / "demo-web.qcow2"
    work = tmp_path / "formats"
    work.mkdir()

    (root / "plain.xml").write_bytes(plain_vmcast(base_url, image))

    description = domain_xml(disk_path="/var/lib/archipel/drives/8a7d/demo-web.qcow2", vcpus=1, memory="131072")
    package = xvm2(root / "demo-web.xvm2", image, description=description, member="/demo-web.qcow2.gz")
    (root / "archipel.xml").write_bytes(archipel_vmcast(base_url, package))

    vmdk = work / "demo-web.vmdk"
    qemu_img("convert", "-f", "qcow2", "-O", "vmdk", "-o", "subformat=streamOptimized", image, vmdk)
    appliance = ova(
        root / "demo-web.ova",
        vmdk,
        descriptor=ovf_xml(href="demo-web.vmdk", vcpus=1, memory=160),
        disk_member="demo-web.vmdk",
    )
    (root / "ova.xml").write_bytes(ova_vmcast(base_url, appliance))

    simplestreams(root, image)

    versions = {
        "plain": imported(operator, project, f"{base_url}/plain.xml", "vmcast"),
        "xvm2": imported(operator, project, f"{base_url}/archipel.xml", "archipel"),
        "ova": imported(operator, project, f"{base_url}/ova.xml", "vmcast"),
        "simplestreams": imported(operator, project, f"{base_url}/streams/v1/index.json", "simplestreams"),
    }
    assert {kind: v.package for kind, v in versions.items()} == {
        "plain": "disk",
        "xvm2": "xvm2",
        "ova": "ova",
        "simplestreams": "disk",
    }
    for kind, version in versions.items():
        cached = catalog_services.image_ensure_cached(version=version)
        assert same_disk(cached.path, image), f"the {kind} image is not the demo disk"
        version.refresh_from_db()
        assert version.image_state.status == "ready", kind
    assert versions["plain"].checksum_source == "pinned"
    assert (versions["plain"].image.sha256, versions["plain"].image.source_format) == (sha256_of(image), "qcow2")
    assert (versions["xvm2"].image.sha256, versions["xvm2"].image.source_format) == (sha256_of(package), "xvm2")
    assert versions["ova"].image.source_format == "ova"
    assert versions["ova"].min_ram_mib == 160  # the OVF's memory raised the feed's minimum

    with django_capture_on_commit_callbacks(execute=True):
        stack = stack_launch(
            user=member, project=project, name="from-ova", appliance_version=versions["ova"], lease_seconds=900
        )
    stack.refresh_from_db()
    assert stack.status == Status.RUNNING, stack.status_reason
    page = wait_for(lambda: page_text(web_url(stack)), timeout=180, interval=1, what="the OVA appliance's page")
    assert "demo-web appliance" in page

    with django_capture_on_commit_callbacks(execute=True):
        lifecycle.stack_destroy(user=member, stack=stack)
