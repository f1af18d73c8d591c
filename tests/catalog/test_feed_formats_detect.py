"""Telling the dialects apart from the bytes alone, and refusing what is none of them by name."""

from __future__ import annotations

import json

import pytest

from catalog import vmcast
from catalog.feed_formats.detect import looks_like_json
from catalog.feeds import FeedError, parse_feed, parse_vmcast

URL = "http://feeds.example.org/feed"
ITEM = (
    "<item><title>{title}</title><pubDate>Tue, 04 Jan 2011 10:00:00 GMT</pubDate>{extra}"
    '<enclosure url="{url}" length="5" type="{kind}"/></item>'
)


def rss(*items: str, channel: str = "") -> bytes:
    return f'<rss version="2.0"><channel><title>T</title>{channel}{"".join(items)}</channel></rss>'.encode()


def item(title: str = "App 1.0", *, extra: str = "", url: str = "http://h.example.org/a.qcow2", kind: str = "") -> str:
    return ITEM.format(title=title, extra=extra, url=url, kind=kind)


# Hostile and mixed input first.


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"", r"not an RSS feed"),
        (b"\x00\x01\x02\x03", r"not a well-formed XML feed"),
        (b"QFI\xfb\x00\x00\x00\x03" + b"\x00" * 100, r"not a well-formed XML feed"),  # a qcow2 image, not its feed
        (b"this is { not xml", r"not a well-formed XML feed"),
        (b"<html><body><p>hello</p></body></html>", r"^not an RSS feed: a VMcast is RSS 2.0"),
        (
            b'<feed xmlns="http://www.w3.org/2005/Atom"><title>x</title><entry><title>a</title></entry></feed>',
            r"^not an RSS feed \(it is an Atom feed\)",
        ),
        (rss(), r"^the feed has no items"),
        (
            rss("<item><title>News</title><link>http://example.org/</link></item>"),
            r"does not use the VMcast namespace .* and none of its 1 item has an <enclosure>",
        ),
        (b'<?xml version="1.0"?>\n{"format": "index:1.0"}', r"not a well-formed XML feed"),
        (b'  ["<rss version=\\"2.0\\"/>"]', r"^a JSON list, not an RSS feed"),
        (b'<!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><rss/>', r"RSS|XML"),
    ],
)
def test_what_is_no_feed_of_any_dialect_is_refused_naming_what_was_seen(data, match):
    with pytest.raises(FeedError, match=match):
        parse_feed(data, url=URL)


def test_a_uuid_without_xvm2_packages_is_a_plain_feed():
    parsed = parse_feed(rss(item(extra="<uuid>1234</uuid>")), url=URL)
    assert parsed.format == "vmcast"
    assert parsed.items[0].checksum_source == "pinned"


def test_xvm2_packages_without_a_uuid_are_a_plain_feed_of_packages():
    parsed = parse_feed(rss(item(url="http://h.example.org/a.xvm2", kind="application/enomalism2-xvm2")), url=URL)
    assert parsed.format == "vmcast"
    assert parsed.items[0].package == "xvm2"


def test_archipel_decides_the_whole_feed_and_a_disk_among_its_packages_is_a_problem():
    mixed = rss(
        item("A", url="http://h.example.org/a.xvm2", kind="application/enomalism2-xvm2"),
        item("B 1.0", url="http://h.example.org/b.qcow2", kind="application/x-qemu-disk"),
        channel="<uuid>1e5ff9b0-1d2f-11e0-ac64-0800200c9a66</uuid>",
    )
    with pytest.raises(
        FeedError, match=r"^item 'B 1.0': enclosure of type 'application/x-qemu-disk' is not an Archipel"
    ):
        parse_feed(mixed, url=URL)


def test_our_namespace_decides_the_whole_feed_and_a_plain_item_in_it_is_a_problem():
    ours = vmcast.render_feed(
        title="Mixed",
        link=URL,
        description="",
        items=[
            vmcast.FeedItem(
                appliance="web",
                title="Web",
                description="",
                version="1",
                url="http://h.example.org/w.qcow2",
                size_bytes=5,
                sha256="ab" * 32,
                disk_format="qcow2",
            )
        ],
    )
    mixed = ours.replace(b"</channel>", item("Plain 2.0").encode() + b"</channel>")
    with pytest.raises(FeedError, match=r"^item 'Plain 2.0': missing <vmc:appliance>"):
        parse_feed(mixed, url=URL)


def test_a_stream_served_with_an_xml_prolog_of_blanks_and_a_bom_is_still_json():
    document = {"format": "products:1.0", "products": {}}
    assert looks_like_json(b"\xef\xbb\xbf\r\n  " + json.dumps(document).encode())
    assert not looks_like_json(b"\xef\xbb\xbf<rss/>")
    assert not looks_like_json(b"")


def test_parse_vmcast_reads_every_rss_dialect():
    assert parse_vmcast(rss(item())).items[0].appliance == "app"
