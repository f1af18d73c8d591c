"""Our VMcast namespace: the disk formats and packages it may declare, written and read back."""

from __future__ import annotations

import pytest

from catalog import vmcast
from catalog.feeds import FeedError, parse_feed

URL = "https://images.example.org/feed.xml"
SHA = "cd" * 32


def item(**overrides) -> vmcast.FeedItem:
    values = {
        "appliance": "win-tools",
        "title": "Tools",
        "description": "",
        "version": "1.0",
        "url": "https://images.example.org/tools.vmdk",
        "size_bytes": 4096,
        "sha256": SHA,
        "disk_format": "vmdk",
    }
    return vmcast.FeedItem(**(values | overrides))


def feed(*items: vmcast.FeedItem) -> bytes:
    return vmcast.render_feed(title="Ours", link="https://images.example.org", description="", items=items)


# Hostile input first.


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ((b"<vmc:format>vmdk</vmc:format>", b"<vmc:format>iso</vmc:format>"), r"disk format 'iso' is not one of qcow2"),
        ((b"<vmc:format>vmdk</vmc:format>", b"<vmc:format>../../raw</vmc:format>"), r"disk format '../../raw'"),
        ((b"<vmc:format>vmdk</vmc:format>", b""), r"item 'Tools': missing <vmc:format>"),
        (
            (b"<vmc:format>vmdk</vmc:format>", b"<vmc:package>deb</vmc:package>"),
            r"package 'deb' is not one of disk, ova",
        ),
        ((b"<vmc:sha256>" + SHA.encode(), b"<vmc:sha256>" + b"z" * 64), r"sha256 must be 64 hex digits"),
        ((b"<vmc:sha256>" + SHA.encode() + b"</vmc:sha256>", b""), r"missing <vmc:sha256>"),
        ((b"https://images.example.org/tools.vmdk", b"javascript:alert(1)"), r"enclosure URL 'javascript:alert\(1\)'"),
    ],
)
def test_a_bad_declaration_refuses_the_feed(change, match):
    old, new = change
    data = feed(item()).replace(old, new)
    assert data != feed(item())
    with pytest.raises(FeedError, match=match):
        parse_feed(data, url=URL)


def test_a_package_in_our_namespace_still_needs_its_sha256():
    data = feed(item(package="ova", disk_format="")).replace(b"<vmc:sha256>" + SHA.encode() + b"</vmc:sha256>", b"")
    with pytest.raises(FeedError, match="missing <vmc:sha256>"):
        parse_feed(data, url=URL)


def test_feeds_uuid_and_packages_do_not_turn_ours_into_archipel():
    data = feed(item(package="xvm2", disk_format="")).replace(b"<channel>", b"<channel><uuid>1e5ff9b0</uuid>")
    parsed = parse_feed(data, url=URL)
    assert parsed.format == "vmcast"
    assert parsed.items[0].sha256 == SHA


# What is read.


@pytest.mark.parametrize("disk_format", ["qcow2", "raw", "vmdk", "vdi", "vhdx"])
def test_every_supported_disk_format_is_read(disk_format):
    [parsed] = parse_feed(feed(item(disk_format=disk_format)), url=URL).items
    assert (parsed.disk_format, parsed.package, parsed.checksum_source, parsed.sha256) == (
        disk_format,
        "disk",
        "feed",
        SHA,
    )


def test_a_vmdk_and_an_ova_are_written_and_read_back():
    data = feed(
        item(),
        item(appliance="appliance-ova", url="https://images.example.org/a.ova", disk_format="", package="ova"),
        item(appliance="appliance-xvm2", url="https://images.example.org/a.xvm2", disk_format="", package="xvm2"),
    )
    assert b'type="application/x-vmdk"' in data
    assert b"<vmc:package>ova</vmc:package>" in data
    assert b'type="application/x-ova"' in data
    vmdk, ova, xvm2 = parse_feed(data, url=URL).items
    assert (vmdk.disk_format, vmdk.package, vmdk.media_type) == ("vmdk", "disk", "application/x-vmdk")
    assert (ova.disk_format, ova.package, ova.sha256, ova.checksum_source) == ("", "ova", SHA, "feed")
    assert (xvm2.package, xvm2.media_type) == ("xvm2", "application/enomalism2-xvm2")


def test_a_package_may_still_say_what_disk_it_holds():
    [parsed] = parse_feed(feed(item(package="ova", disk_format="vmdk")), url=URL).items
    assert (parsed.package, parsed.disk_format) == ("ova", "vmdk")


def test_a_disk_image_writes_no_package_element():
    # Feeds written before packages existed read the same, and the demo feed stays byte-identical.
    assert b"package" not in feed(item(disk_format="qcow2"))
    assert parse_feed(feed(item(disk_format="qcow2")), url=URL).items[0].package == "disk"
