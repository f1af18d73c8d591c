"""What a re-import may not undo: a package's sizing and a format read from the bytes' magic."""

from __future__ import annotations

import dataclasses
import hashlib

import pytest

from catalog.feed_store import store_feed
from catalog.feeds import ParsedFeed, ParsedItem
from catalog.models import ApplianceVersion, CachedImage
from tests.factories import FeedFactory

pytestmark = pytest.mark.django_db


def _item(**changes) -> ParsedItem:
    item = ParsedItem(
        appliance="appliance",
        title="Appliance",
        description="",
        role="web",
        version="1",
        url="https://images.example.org/appliance.ova",
        size_bytes=1024,
        media_type="application/x-ova",
        sha256=hashlib.sha256(b"package").hexdigest(),
        disk_format="vmdk",
        arch="x86_64",
        min_ram_mib=128,
        min_vcpus=1,
        service_port=80,
        published=None,
        package="ova",
    )
    return dataclasses.replace(item, **changes)


def test_a_package_is_keyed_by_its_kind_and_a_second_import_accepts_it():
    feed = FeedFactory()
    store_feed(feed=feed, parsed=ParsedFeed(title="t", items=[_item()]))
    version = ApplianceVersion.objects.get(appliance__feed=feed)
    assert version.image.source_format == "ova"
    store_feed(feed=feed, parsed=ParsedFeed(title="t", items=[_item()]))  # no "changed its image (format)"
    assert CachedImage.objects.filter(sha256=_item().sha256).count() == 1


def test_a_re_import_keeps_the_sizing_a_package_gave_and_the_format_the_magic_gave():
    feed = FeedFactory()
    store_feed(
        feed=feed,
        parsed=ParsedFeed(title="t", items=[_item(), _item(appliance="disk", package="disk", disk_format="")]),
    )
    # What the first download learnt: the package's sizing, the disk's format from its header.
    ApplianceVersion.objects.filter(appliance__identifier="appliance").update(min_ram_mib=2048, min_vcpus=2)
    ApplianceVersion.objects.filter(appliance__identifier="disk").update(disk_format="qcow2")
    store_feed(
        feed=feed,
        parsed=ParsedFeed(title="t", items=[_item(), _item(appliance="disk", package="disk", disk_format="")]),
    )
    package = ApplianceVersion.objects.get(appliance__identifier="appliance")
    assert (package.min_ram_mib, package.min_vcpus) == (2048, 2)
    assert ApplianceVersion.objects.get(appliance__identifier="disk").disk_format == "qcow2"
