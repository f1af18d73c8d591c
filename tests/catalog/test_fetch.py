"""The guarded fetcher: address checks, redirects, size caps, deadlines, file roots, credentials."""

from __future__ import annotations

import hashlib
import multiprocessing
import socket
import threading
import time

import pytest

from catalog.fetch import FetchError, FetchPolicy, fetch_bytes, fetch_to_file
from catalog.fetch_deadline import Deadline, resolve_within
from tests.catalog.hostile_servers import AuthServer, DripServer, basic_auth, http_response
from tests.loopback_http import LoopbackServer

LOOPBACK = FetchPolicy(allowed_private_hosts=frozenset({"127.0.0.1"}), timeout_seconds=5)
LOOPBACK_BOTH = FetchPolicy(allowed_private_hosts=frozenset({"127.0.0.1", "localhost"}), timeout_seconds=5)


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


# A wall-clock deadline on the whole transfer (a slow drip must not hold a worker).
DRIP = FetchPolicy(allowed_private_hosts=frozenset({"127.0.0.1"}), timeout_seconds=5, transfer_seconds=0.5)
SLOW_BODY = http_response(b"x" * 60)
HEAD_BYTES = len(SLOW_BODY) - 60


def _fails_within(seconds: float, call, match: str) -> None:
    started = time.monotonic()
    with pytest.raises(FetchError, match=match):
        call()
    took = time.monotonic() - started
    assert took < seconds, f"gave up after {took:.1f} s, the deadline was 0.5 s"


def test_a_body_dripped_a_byte_at_a_time_stops_at_the_deadline():
    # Each byte arrives well inside the per-read timeout; only the whole-transfer deadline can stop it.
    with DripServer(SLOW_BODY, at_once=HEAD_BYTES) as drip:
        _fails_within(1.5, lambda: fetch_bytes(f"{drip.base_url}/f", policy=DRIP, max_bytes=1000), "longer than 0.5 s")


def test_dripped_headers_stop_at_the_deadline():
    with DripServer(b"HTTP/1.1 200 OK\r\n" + b"X-Slow: " + b"y" * 100) as drip:
        _fails_within(1.5, lambda: fetch_bytes(f"{drip.base_url}/f", policy=DRIP, max_bytes=1000), "longer than 0.5 s")


def test_a_tls_handshake_that_never_ends_stops_at_the_deadline():
    # A TLS record header announcing 16 KiB of handshake, then that record a byte at a time.
    with DripServer(b"\x16\x03\x03\x40\x00" + b"\0" * 100) as drip:
        url = f"https://127.0.0.1:{drip.port}/f"
        _fails_within(1.5, lambda: fetch_bytes(url, policy=DRIP, max_bytes=1000), "longer than 0.5 s")


def test_a_resolver_that_never_answers_stops_at_the_deadline(monkeypatch):
    # getaddrinfo cannot be interrupted: without a bound, a hung resolver holds the worker for good.
    answer = threading.Event()

    def silent_resolver(host, port, *args, **kwargs):
        answer.wait(30)
        return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", ("127.0.0.1", port))]

    monkeypatch.setattr(socket, "getaddrinfo", silent_resolver)
    try:
        url = "http://feeds.example.test/feed.xml"
        _fails_within(1.5, lambda: fetch_bytes(url, policy=DRIP, max_bytes=1000), "cannot resolve host 'feeds.example")
    finally:
        answer.set()


def test_a_lookup_works_in_a_process_forked_after_lookups():
    # Workers are forked: a lookup must not depend on threads that only the parent process has.
    def fresh() -> Deadline:
        return Deadline(5, idle_seconds=5)

    assert resolve_within(fresh(), "127.0.0.1", 80)
    context = multiprocessing.get_context("fork")
    answers = context.Queue()
    child = context.Process(target=lambda: answers.put(len(resolve_within(fresh(), "127.0.0.1", 80))))
    child.start()
    try:
        assert answers.get(timeout=10) > 0
    finally:
        child.join(10)


def test_a_failed_download_leaves_no_partial_file(tmp_path):
    destination = tmp_path / "image.part"
    with DripServer(SLOW_BODY, at_once=HEAD_BYTES + 10) as drip, pytest.raises(FetchError, match="longer than"):
        fetch_to_file(f"{drip.base_url}/img", destination, policy=DRIP, max_bytes=1000)
    assert not destination.exists()


def test_the_deadlines_from_settings_end_before_the_task_is_killed(settings):
    for policy in (FetchPolicy.for_feeds(), FetchPolicy.for_images()):
        assert 0 < policy.transfer_seconds < settings.TASK_TIMEOUT_SECONDS
    assert FetchPolicy.for_feeds().transfer_seconds <= FetchPolicy.for_images().transfer_seconds


# Credentials in URLs: used for the request, never shown.
SECRET = "s3cret-pass"


def test_credentials_in_the_url_are_sent_as_basic_auth():
    with AuthServer(expected=basic_auth("alice", SECRET)) as server:
        server.protected["/feed.xml"] = b"<rss/>"
        url = f"http://alice:{SECRET}@127.0.0.1:{server.port}/feed.xml"
        assert fetch_bytes(url, policy=LOOPBACK_BOTH, max_bytes=100) == b"<rss/>"


def test_credentials_are_not_forwarded_to_another_host_on_redirect():
    with AuthServer(expected=basic_auth("alice", SECRET)) as server:
        server.protected["/here"] = b"same origin"
        server.redirects["/same"] = "/here"
        server.redirects["/away"] = f"http://localhost:{server.port}/there"
        base = f"http://alice:{SECRET}@127.0.0.1:{server.port}"
        assert fetch_bytes(f"{base}/same", policy=LOOPBACK_BOTH, max_bytes=100) == b"same origin"
        with pytest.raises(FetchError, match="HTTP 401"):
            fetch_bytes(f"{base}/away", policy=LOOPBACK_BOTH, max_bytes=100)
    assert server.seen[-1] == ("/there", None)


def test_error_messages_do_not_repeat_the_credentials():
    failures = [
        f"http://alice:{SECRET}@127.0.0.1:1/feed.xml",  # cannot fetch
        f"http://alice:{SECRET}@nonexistent.invalid/feed.xml",  # cannot resolve
        f"gopher://alice:{SECRET}@example.org/",  # unsupported scheme
    ]
    for url in failures:
        with pytest.raises(FetchError) as caught:
            fetch_bytes(url, policy=LOOPBACK_BOTH, max_bytes=100)
        assert SECRET not in str(caught.value)
        assert "alice" not in str(caught.value)
    with AuthServer(expected="nothing") as server:
        with pytest.raises(FetchError, match="HTTP 401") as caught:
            fetch_bytes(f"http://alice:{SECRET}@127.0.0.1:{server.port}/x", policy=LOOPBACK_BOTH, max_bytes=100)
        assert SECRET not in str(caught.value)


@pytest.mark.parametrize("url", ["http://[::1/feed.xml", "http://a..b/feed.xml", f"http://{'a' * 300}/feed.xml"])
def test_malformed_urls_and_host_names_are_fetch_errors_not_crashes(url):
    with pytest.raises(FetchError):
        fetch_bytes(url, policy=LOOPBACK, max_bytes=100)
