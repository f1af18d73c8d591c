"""The guarded fetcher: address checks, redirects, size caps, file roots."""

from __future__ import annotations

import hashlib

import pytest

from catalog.fetch import FetchError, FetchPolicy, fetch_bytes, fetch_to_file
from tests.loopback_http import LoopbackServer

LOOPBACK = FetchPolicy(allowed_private_hosts=frozenset({"127.0.0.1"}), timeout_seconds=5)


@pytest.fixture
def server():
    with LoopbackServer() as httpd:
        yield httpd.base_url, httpd.routes


def test_fetches_bytes_from_an_allowed_loopback_host(server):
    base, routes = server
    routes["/feed.xml"] = (200, {}, b"<rss/>")
    assert fetch_bytes(f"{base}/feed.xml", policy=LOOPBACK, max_bytes=100) == b"<rss/>"


def test_refuses_loopback_unless_allowed(server):
    base, routes = server
    routes["/feed.xml"] = (200, {}, b"<rss/>")
    with pytest.raises(FetchError, match=r"non-public address 127\.0\.0\.1"):
        fetch_bytes(f"{base}/feed.xml", policy=FetchPolicy(timeout_seconds=5), max_bytes=100)


def test_refuses_redirect_to_a_host_that_is_not_allowed(server):
    base, routes = server
    port = base.rsplit(":", 1)[1]
    routes["/r"] = (302, {"Location": f"http://localhost:{port}/feed.xml"}, b"")
    with pytest.raises(FetchError, match="refusing to fetch from 'localhost'"):
        fetch_bytes(f"{base}/r", policy=LOOPBACK, max_bytes=100)


def test_follows_a_checked_redirect_and_stops_at_a_loop(server):
    base, routes = server
    routes["/a"] = (301, {"Location": "/b"}, b"")
    routes["/b"] = (200, {}, b"ok")
    routes["/loop"] = (302, {"Location": "/loop"}, b"")
    assert fetch_bytes(f"{base}/a", policy=LOOPBACK, max_bytes=100) == b"ok"
    with pytest.raises(FetchError, match="more than 3 redirects"):
        fetch_bytes(f"{base}/loop", policy=LOOPBACK, max_bytes=100)


def test_stops_at_the_size_cap(server):
    base, routes = server
    routes["/big"] = (200, {}, b"x" * 5000)
    with pytest.raises(FetchError, match="over the limit"):
        fetch_bytes(f"{base}/big", policy=LOOPBACK, max_bytes=1000)


def test_http_errors_are_reported_with_their_status(server):
    base, _ = server
    with pytest.raises(FetchError, match="HTTP 404"):
        fetch_bytes(f"{base}/nope", policy=LOOPBACK, max_bytes=100)


def test_connection_refused_is_a_fetch_error():
    with pytest.raises(FetchError, match="cannot fetch"):
        fetch_bytes("http://127.0.0.1:1/x", policy=LOOPBACK, max_bytes=100)


def test_unsupported_scheme():
    with pytest.raises(FetchError, match="unsupported URL scheme 'ftp'"):
        fetch_bytes("ftp://example.org/x", policy=LOOPBACK, max_bytes=100)


def test_file_urls_only_inside_the_allowed_roots(tmp_path):
    inside = tmp_path / "feeds" / "feed.xml"
    inside.parent.mkdir()
    inside.write_bytes(b"<rss/>")
    policy = FetchPolicy(file_roots=(inside.parent,))
    assert fetch_bytes(f"file://{inside}", policy=policy, max_bytes=100) == b"<rss/>"
    with pytest.raises(FetchError, match="outside the folders"):
        fetch_bytes("file:///etc/passwd", policy=policy, max_bytes=10_000)
    with pytest.raises(FetchError, match="outside the folders"):
        fetch_bytes(f"file://{inside.parent}/../../etc/passwd", policy=policy, max_bytes=10_000)


def test_fetch_to_file_computes_sha256_and_reports_progress(server, tmp_path):
    base, routes = server
    body = b"image-bytes" * 1000
    routes["/img"] = (200, {}, body)
    seen = []
    result = fetch_to_file(
        f"{base}/img", tmp_path / "img", policy=LOOPBACK, max_bytes=10**6, progress=lambda d, t: seen.append((d, t))
    )
    assert result.sha256 == hashlib.sha256(body).hexdigest()
    assert result.size_bytes == len(body)
    assert seen[-1] == (len(body), len(body))
    assert (tmp_path / "img").read_bytes() == body
