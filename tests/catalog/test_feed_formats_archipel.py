"""Archipel's VMcasts: <uuid> on channel and items, .xvm2 packages, dates as Python's str(datetime)."""

from __future__ import annotations

from datetime import UTC, datetime
from xml.sax.saxutils import quoteattr

import pytest

from catalog.feeds import FeedError, parse_feed

URL = "http://vmcasts.example.org/rss.xml"


def archipel_item(
    title: str,
    published: str,
    *,
    url: str | None = None,
    size: str = "314572800",
    kind: str = "application/enomalism2-xvm2",
    uuid: str = "9d2c4c0e-7f1b-3b7e-a3f5-1c2d3e4f5a6b",
) -> str:
    # As Archipel's publisher writes them, attributes in single quotes and the description in CDATA.
    url = url or f"http://vmcasts.example.org/appliances/{title}.xvm2"
    return f"""
        <item>
            <title>{title}</title>
            <link>http://vmcasts.example.org</link>
            <uuid>{uuid}</uuid>
            <enclosure url={quoteattr(url)} length='{size}' type='{kind}'/>
            <description>
            <![CDATA[
                Auto imported vmcast
            ]]>
            </description>
            <pubDate>{published}</pubDate>
        </item>"""


def archipel_feed(*items: str) -> bytes:
    return (
        "<?xml version='1.0' encoding='utf-8'?>\n"
        "   <rss version='2.0'>\n"
        "   <channel>\n"
        "        <title>Archipel Appliances</title>\n"
        "        <link>http://vmcasts.example.org</link>\n"
        "        <uuid>1e5ff9b0-1d2f-11e0-ac64-0800200c9a66</uuid>\n"
        "        <description>Appliances for Archipel</description>\n"
        "        <language>en-us</language>\n" + "".join(items) + "    </channel>\n</rss>"
    ).encode()


# Hostile input first.


@pytest.mark.parametrize(
    ("item", "match"),
    [
        (
            archipel_item("debian", "yesterday, more or less"),
            r"item 'debian': <pubDate> 'yesterday, more or less' is not",
        ),
        (archipel_item("debian", ""), r"item 'debian': <pubDate> '' is not a date"),
        (archipel_item("debian", "2011-13-45 99:00:00"), r"is not a date"),
        (archipel_item("debian", "9" * 500), r"is not a date"),
        (archipel_item("debian", "2011-05-09 16:41:27", url="javascript:alert(1)//.xvm2"), r"'javascript:alert\(1\)"),
        (archipel_item("debian", "2011-05-09 16:41:27", url="ftp://x.example.org/a.xvm2"), r"is not http, https"),
        (archipel_item("debian", "2011-05-09 16:41:27", size=""), r"enclosure length must be a whole number"),
        (archipel_item("debian", "2011-05-09 16:41:27", size="-3"), r"enclosure length must be a whole number"),
        (archipel_item("debian", "2011-05-09 16:41:27", size="9" * 40), r"enclosure length must be a whole number"),
        (archipel_item("!!!", "2011-05-09 16:41:27"), r"item '!!!': no <title> with letters or digits"),
    ],
)
def test_a_bad_item_refuses_the_feed_and_is_named(item, match):
    good = archipel_item("centos", "2011-05-09 16:41:27.403727")
    with pytest.raises(FeedError, match=match):
        parse_feed(archipel_feed(good, item), url=URL)


def test_an_item_that_is_no_package_refuses_the_feed():
    disk = archipel_item(
        "debian", "2011-05-09 16:41:27", url="http://vmcasts.example.org/debian.qcow2", kind="application/x-qemu-disk"
    )
    with pytest.raises(FeedError, match=r"enclosure of type 'application/x-qemu-disk' is not an Archipel package"):
        parse_feed(archipel_feed(archipel_item("centos", "2011-05-09 16:41:27"), disk), url=URL)


def test_one_appliance_published_twice_at_the_same_moment_is_refused():
    same = archipel_item("debian", "2011-05-09 16:41:27.403727")
    with pytest.raises(FeedError, match=r"appliance 'debian' version '2011-05-09 16:41:27.403727' appears twice"):
        parse_feed(archipel_feed(same, same), url=URL)


# What is read.


def test_an_archipel_feed_is_read_with_its_dates_as_versions():
    feed = archipel_feed(
        archipel_item("debian-squeeze", "2011-05-09 16:41:27.403727"),
        archipel_item("debian-squeeze", "2011-06-01 08:00:00.000001"),
        archipel_item("Ubuntu Server", "Mon, 09 May 2011 16:41:27 +0200"),
    )
    parsed = parse_feed(feed, url=URL)
    assert (parsed.format, parsed.title) == ("archipel", "Archipel Appliances")
    first, second, ubuntu = parsed.items
    assert (first.appliance, first.version) == ("debian-squeeze", "2011-05-09 16:41:27.403727")
    assert first.published == datetime(2011, 5, 9, 16, 41, 27, 403727, tzinfo=UTC)
    assert (second.appliance, second.version) == ("debian-squeeze", "2011-06-01 08:00:00.000001")
    assert (ubuntu.appliance, ubuntu.title, ubuntu.version) == ("ubuntu-server", "Ubuntu Server", "2011-05-09 14:41:27")
    for item in parsed.items:
        assert (item.package, item.sha256, item.checksum_source, item.disk_format) == ("xvm2", "", "pinned", "")
        assert (item.min_ram_mib, item.min_vcpus, item.service_port, item.role) == (128, 1, None, "")
    assert first.url == "http://vmcasts.example.org/appliances/debian-squeeze.xvm2"
    assert first.size_bytes == 314572800
    assert first.description == "Auto imported vmcast"


def test_a_package_named_by_its_file_name_alone_is_read():
    item = archipel_item("debian", "2011-05-09 16:41:27", kind="application/octet-stream")
    [parsed] = parse_feed(archipel_feed(archipel_item("centos", "2011-05-09 16:41:27"), item), url=URL).items[1:]
    assert parsed.package == "xvm2"
