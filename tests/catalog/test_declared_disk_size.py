"""A feed may declare each image's disk size (vmc:virtualsize), so launches can claim it before any download."""

from __future__ import annotations

import pytest

from catalog import services, vmcast
from catalog.feeds import FeedError, parse_vmcast
from catalog.models import ApplianceVersion, Feed
from tests.catalog.publishing import publish
from tests.factories import FeedFactory

GIB = 1024**3


def item(**overrides) -> vmcast.FeedItem:
    values = {
        "appliance": "demo-web",
        "title": "Web",
        "description": "",
        "version": "1.0",
        "url": "http://127.0.0.1:8000/web.qcow2",
        "size_bytes": 1234,
        "sha256": "ab" * 32,
        "disk_format": "qcow2",
    }
    return vmcast.FeedItem(**(values | overrides))


def feed(*items: vmcast.FeedItem) -> bytes:
    return vmcast.render_feed(title="Demo", link="http://127.0.0.1", description="d", items=items)


def test_the_declared_size_is_read_and_stays_optional():
    declared, silent = parse_vmcast(feed(item(virtual_size_bytes=3 * GIB), item(version="2.0"))).items
    assert declared.virtual_size_bytes == 3 * GIB
    assert silent.virtual_size_bytes is None


@pytest.mark.parametrize("value", ["0", "-5", "3G", "1.5", str(2**50 + 1)])
def test_a_declared_size_that_is_no_size_refuses_the_item(value):
    bad = feed(item()).replace(b"<vmc:role>", f"<vmc:virtualsize>{value}</vmc:virtualsize><vmc:role>".encode())
    with pytest.raises(FeedError, match="virtualsize must be a whole number"):
        parse_vmcast(bad)


def test_an_import_stores_it_and_a_later_import_updates_it(http_server, db):
    feed_row = FeedFactory(url=publish(http_server, virtual_size_bytes=2 * GIB))
    services.feed_import(feed=feed_row)
    feed_row.refresh_from_db()
    assert feed_row.last_status == Feed.ImportStatus.OK, feed_row.last_error
    assert ApplianceVersion.objects.get().declared_virtual_bytes == 2 * GIB
    publish(http_server, make_image=False, virtual_size_bytes=None)
    services.feed_import(feed=feed_row)
    assert ApplianceVersion.objects.get().declared_virtual_bytes is None
