"""Plain (Enomaly-style) VMcasts: RSS items with only an enclosure; appliance and version read from the title."""

from __future__ import annotations

from datetime import UTC, datetime
from xml.sax.saxutils import escape, quoteattr

import pytest

from catalog.feed_formats.plain import split_title
from catalog.feeds import IDENTIFIER_RE, FeedError, parse_feed

URL = "http://vmcasts.example.org/vmcast.xml"


def plain_item(
    title: str | None,
    *,
    url: str = "http://vmcasts.example.org/images/appliance.qcow2",
    length: str | None = "734003200",
    kind: str = "application/x-qemu-disk",
    published: str | None = "Tue, 04 Jan 2011 10:00:00 GMT",
) -> str:
    parts = ["<item>"]
    if title is not None:
        parts.append(f"<title>{escape(title)}</title>")
    parts.append("<description>An ECP appliance</description>")
    if published is not None:
        parts.append(f"<pubDate>{escape(published)}</pubDate>")
    length_attribute = f" length={quoteattr(length)}" if length is not None else ""
    parts.append(f"<enclosure url={quoteattr(url)}{length_attribute} type={quoteattr(kind)}/>")
    parts.append("</item>")
    return "".join(parts)


def plain_feed(*items: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0"><channel>'
        "<title>Enomaly ECP VMcast</title><link>http://vmcasts.example.org/</link>"
        "<description>Virtual appliances</description>" + "".join(items) + "</channel></rss>"
    ).encode()


# Hostile input first.


@pytest.mark.parametrize(
    ("item", "match"),
    [
        (
            plain_item("Evil 1.0", url="javascript:alert(document.domain)"),
            r"item 'Evil 1.0': enclosure URL 'javascript:",
        ),
        (plain_item("Evil 1.0", url="data:text/html,<script>x</script>"), r"enclosure URL 'data:text/html.*not http"),
        (plain_item("Evil 1.0", url="gopher://example.org/x.qcow2"), r"enclosure URL 'gopher://.*' is not http"),
        (
            plain_item("Evil 1.0", url="http://" + "a" * 2000 + ".org/x"),
            r"enclosure URL is longer than 1000 characters",
        ),
        (plain_item("Evil 1.0", url="http:///x.qcow2"), r"has no host: enclosure URL"),
        (plain_item("Evil 1.0", length=None), r"item 'Evil 1.0': enclosure length must be a whole number"),
        (plain_item("Evil 1.0", length="0"), r"enclosure length must be a whole number from 1"),
        (plain_item("Evil 1.0", length="1e9"), r"enclosure length must be a whole number"),
        (plain_item("Evil 1.0", length="٣٤٥"), r"enclosure length must be a whole number"),  # digits, not ASCII
        (plain_item("Evil 1.0", length="9" * 100_000), r"enclosure length must be a whole number"),
        (plain_item(None), r"item 'item 2': no <title>"),
        (plain_item("   "), r"no <title>"),
        (plain_item("★★★ 1.0"), r"title '★★★ 1.0' has no letters or digits besides a version"),
        (plain_item("2024"), r"title '2024' has no letters or digits besides a version"),
        (
            plain_item("No Number", published=None),
            r"item 'No Number': no version number in its title, and no <pubDate>",
        ),
        (
            plain_item("No Number", published="soon"),
            r"no <pubDate> to tell versions apart \(a date was expected, not 'soon'\)",
        ),
    ],
)
def test_a_bad_item_refuses_the_whole_feed_and_is_named(item, match):
    good = plain_item("CentOS 5.5 LAMP 1.2")
    with pytest.raises(FeedError, match=match):
        parse_feed(plain_feed(good, item), url=URL)


def test_the_same_version_listed_twice_is_refused():
    with pytest.raises(FeedError, match=r"appliance 'centos-5.5-lamp' version '1.2' appears twice"):
        parse_feed(plain_feed(plain_item("CentOS 5.5 LAMP 1.2"), plain_item("centos 5.5 lamp v1.2")), url=URL)


def test_two_enclosures_in_one_item_are_refused():
    item = plain_item("Two 1.0").replace(
        "</item>", '<enclosure url="http://a.example.org/b" length="1" type="x"/></item>'
    )
    with pytest.raises(FeedError, match="more than one <enclosure>"):
        parse_feed(plain_feed(item), url=URL)


def test_a_megabyte_title_is_quoted_short_and_cut():
    with pytest.raises(FeedError) as caught:
        parse_feed(plain_feed(plain_item("x" * 1_000_000 + " 1.0", url="ftp://x.example.org/")), url=URL)
    assert len(str(caught.value)) < 300
    [item] = parse_feed(plain_feed(plain_item("x" * 1_000_000 + " 1.0")), url=URL).items
    assert len(item.title) <= 200
    assert IDENTIFIER_RE.match(item.appliance)


def test_a_title_made_to_slow_the_version_search_is_still_read():
    [item] = parse_feed(plain_feed(plain_item("1." * 50_000 + "x " + "9" * 30)), url=URL).items
    assert IDENTIFIER_RE.match(item.appliance)


def test_credentials_in_an_enclosure_url_never_reach_the_message():
    with pytest.raises(FeedError) as caught:
        parse_feed(plain_feed(plain_item("App 1.0", url="ftp://alice:hunter2@files.example.org/a.qcow2")), url=URL)
    assert "hunter2" not in str(caught.value)
    assert "ftp://***@files.example.org" in str(caught.value)


# What is read.


@pytest.mark.parametrize(
    ("title", "name", "version"),
    [
        ("CentOS 5.5 LAMP 1.2", "CentOS 5.5 LAMP", "1.2"),
        ("CentOS 5.5 LAMP v1.3", "CentOS 5.5 LAMP", "1.3"),
        ("debian-6.0.1-amd64", "debian amd64", "6.0.1"),
        ("Fedora 14 x86_64", "Fedora x86_64", "14"),
        ("Joomla appliance (2.5.4)", "Joomla appliance", "2.5.4"),
        ("Windows-free Zone", "Windows-free Zone", ""),
        ("x86_64 base", "x86_64 base", ""),
    ],
)
def test_the_version_is_the_titles_last_free_standing_number(title, name, version):
    assert split_title(title) == (name, version)


def test_a_plain_feed_groups_versions_by_title_and_pins_checksums():
    feed = plain_feed(
        plain_item("CentOS 5.5 LAMP 1.2", url="http://vmcasts.example.org/lamp-1.2.qcow2"),
        plain_item("CentOS 5.5 LAMP 1.3", url="http://vmcasts.example.org/lamp-1.3.qcow2"),
        plain_item("Débian Base", url="http://vmcasts.example.org/debian.img", kind="application/octet-stream"),
    )
    parsed = parse_feed(feed, url=URL)
    assert (parsed.format, parsed.title) == ("vmcast", "Enomaly ECP VMcast")
    old, new, debian = parsed.items
    assert (old.appliance, old.version, old.title) == ("centos-5.5-lamp", "1.2", "CentOS 5.5 LAMP")
    assert (new.appliance, new.version) == ("centos-5.5-lamp", "1.3")
    assert (debian.appliance, debian.version, debian.title) == ("debian-base", "2011-01-04 10:00:00", "Débian Base")
    assert debian.published == datetime(2011, 1, 4, 10, tzinfo=UTC)
    for item in parsed.items:
        assert (item.sha256, item.checksum_source, item.arch) == ("", "pinned", "x86_64")
        assert (item.min_ram_mib, item.min_vcpus, item.service_port) == (128, 1, None)
    assert (old.disk_format, old.package, old.size_bytes) == ("qcow2", "disk", 734003200)
    assert debian.disk_format == ""  # an .img of octet-stream: the bytes decide


@pytest.mark.parametrize(
    ("url", "kind", "disk_format", "package"),
    [
        ("http://h.example.org/a.qcow2", "application/octet-stream", "qcow2", "disk"),
        ("http://h.example.org/a", "application/x-qemu-disk", "qcow2", "disk"),
        ("http://h.example.org/a.vmdk", "", "vmdk", "disk"),
        ("http://h.example.org/a", "application/x-vmdk", "vmdk", "disk"),
        ("http://h.example.org/a.VDI", "application/octet-stream", "vdi", "disk"),
        ("http://h.example.org/a.vhdx?sig=1", "application/octet-stream", "vhdx", "disk"),
        ("http://h.example.org/a.vmdk", "application/x-qemu-disk", "", "disk"),  # they disagree
        ("http://h.example.org/a.img", "application/octet-stream", "", "disk"),
        ("http://h.example.org/a.raw", "application/octet-stream", "", "disk"),  # raw is never guessed
        ("http://h.example.org/a.qcow2.gz", "application/gzip", "", "disk"),
        ("http://h.example.org/a.ova", "application/octet-stream", "", "ova"),
        ("http://h.example.org/a", "application/x-ova", "", "ova"),
        ("http://h.example.org/a", "application/ovf; charset=binary", "", "ova"),
        ("http://h.example.org/a.xvm2", "", "", "xvm2"),
    ],
)
def test_the_disk_format_and_package_come_from_the_enclosure_only_when_unambiguous(url, kind, disk_format, package):
    [item] = parse_feed(plain_feed(plain_item("Appliance 1.0", url=url, kind=kind)), url=URL).items
    assert (item.disk_format, item.package) == (disk_format, package)
