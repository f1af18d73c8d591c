"""Parsing VMcasts: good feeds become items, bad ones a clear error naming each problem."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from catalog import vmcast
from catalog.feeds import FeedError, parse_vmcast

SHA = "ab" * 32


def item(**overrides) -> vmcast.FeedItem:
    values = {
        "appliance": "demo-web",
        "title": "Web",
        "description": "A web server",
        "version": "1.0",
        "url": "http://127.0.0.1:8000/web.qcow2",
        "size_bytes": 1234,
        "sha256": SHA,
        "disk_format": "qcow2",
        "service_port": 8081,
        "role": "proxy",
        "min_ram_mib": 192,
        "min_vcpus": 3,
        "published": datetime(2024, 3, 9, 12, 30, tzinfo=UTC),
    }
    values.update(overrides)
    return vmcast.FeedItem(**values)


def feed(*items: vmcast.FeedItem) -> bytes:
    return vmcast.render_feed(title="Demo", link="http://127.0.0.1", description="d", items=items)


def test_reads_every_field_of_an_item():
    parsed = parse_vmcast(feed(item(), item(appliance="demo-db", version="2.0", service_port=5432, role="db")))
    assert parsed.title == "Demo"
    web, db = parsed.items
    assert (web.appliance, web.version, web.sha256, web.disk_format, web.size_bytes) == (
        "demo-web",
        "1.0",
        SHA,
        "qcow2",
        1234,
    )
    assert (web.min_ram_mib, web.min_vcpus, web.service_port, web.role) == (192, 3, 8081, "proxy")
    assert (web.title, web.description, web.media_type) == ("Web", "A web server", "application/x-qemu-disk")
    assert web.published == datetime(2024, 3, 9, 12, 30, tzinfo=UTC)
    assert web.url == "http://127.0.0.1:8000/web.qcow2"
    assert db.service_port == 5432


def test_accepts_any_prefix_for_our_namespace():
    data = feed(item()).replace(b"vmc:", b"cast:").replace(b"xmlns:vmc=", b"xmlns:cast=")
    assert parse_vmcast(data).items[0].sha256 == SHA


def test_not_xml_is_refused():
    with pytest.raises(FeedError, match="not a well-formed XML feed"):
        parse_vmcast(b"this is { not xml")


def test_html_page_is_not_a_feed():
    with pytest.raises(FeedError, match="not an RSS feed"):
        parse_vmcast(b"<html><body><p>hello</p></body></html>")


def test_item_without_enclosure_is_named():
    data = feed(item(title="Broken one")).replace(b"<enclosure", b"<notenclosure")
    with pytest.raises(FeedError, match="item 'Broken one': no <enclosure>"):
        parse_vmcast(data)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"sha256": "xyz"}, "sha256 must be 64 hex digits"),
        ({"disk_format": "iso"}, "disk format 'iso'"),
        ({"arch": "s390x"}, "architecture 's390x'"),
        ({"appliance": "Bad Name!"}, "appliance identifier"),
        ({"url": "ftp://example.org/x"}, "not http, https or file"),
    ],
)
def test_bad_item_fields_are_refused(overrides, message):
    with pytest.raises(FeedError, match=message):
        parse_vmcast(feed(item(**overrides)))


def test_every_problem_is_listed_and_nothing_partial_returned():
    good = item(appliance="ok")
    bad1 = item(appliance="b1", title="B1", sha256="short")
    bad2 = item(appliance="b2", title="B2", disk_format="iso")
    with pytest.raises(FeedError, match=r"^item 'B1': sha256 must be 64 hex digits; item 'B2': disk format 'iso'"):
        parse_vmcast(feed(good, bad1, bad2))


def test_duplicate_versions_are_refused():
    with pytest.raises(FeedError, match="appears twice"):
        parse_vmcast(feed(item(), item()))


def test_feed_without_items_is_refused():
    with pytest.raises(FeedError, match="no items"):
        parse_vmcast(feed())


def test_bytes_that_name_a_local_file_are_read_as_the_feed_text_not_opened(tmp_path):
    local = tmp_path / "local-feed.xml"
    local.write_bytes(feed(item()))
    with pytest.raises(FeedError):
        parse_vmcast(str(local).encode())


def test_problems_name_enclosure_urls_without_credentials():
    with pytest.raises(FeedError, match=r"enclosure URL 'ftp://\*\*\*@example.org/x' is not http") as caught:
        parse_vmcast(feed(item(url="ftp://alice:s3cret@example.org/x")))
    assert "s3cret" not in str(caught.value)


@pytest.mark.parametrize("role", ["Web Server", "web/server", "<b>web</b>", "1web", "a-very-long-tier-name", "wéb"])
def test_a_role_that_is_no_tier_name_refuses_its_item(role):
    with pytest.raises(FeedError, match=r"item 'Web': role '.*' is not a tier name: 1-15 lowercase letters"):
        parse_vmcast(feed(item(role=role)))


def test_a_role_in_capitals_is_read_in_lowercase():
    assert parse_vmcast(feed(item(role="Web"))).items[0].role == "web"


def test_an_item_without_a_role_has_none():
    data = feed(item()).replace(b"<vmc:role>proxy</vmc:role>", b"")
    assert parse_vmcast(data).items[0].role == ""


def test_what_a_problem_quotes_from_the_feed_is_cut_short():
    with pytest.raises(FeedError) as caught:
        parse_vmcast(feed(item(title="T" * 10_000, disk_format="x" * 10_000)))
    assert len(str(caught.value)) < 300


def test_an_enclosure_url_with_an_at_sign_after_its_host_is_refused_without_its_password():
    with pytest.raises(FeedError, match="has an at sign after its host name") as caught:
        parse_vmcast(feed(item(url="https://alice:pa/ss@images.example.org/web.qcow2")))
    assert "pa/ss" not in str(caught.value)
    assert "https://***@images.example.org/web.qcow2" in str(caught.value)


def test_a_feed_over_the_item_limit_is_refused_before_its_items_are_read():
    items = [item(appliance=f"a{number}", sha256="no") for number in range(3)]
    with pytest.raises(FeedError, match=r"^the feed has 3 items, more than the 2 the portal reads"):
        parse_vmcast(feed(*items), max_items=2)


def test_a_long_description_is_cut_not_refused():
    [parsed] = parse_vmcast(feed(item(description="word " * 10_000))).items
    assert len(parsed.description) == 4000
    assert parsed.description.endswith("…")
