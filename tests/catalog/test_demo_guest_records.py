"""The demo tiers' records and HTTP server, run with this machine's ``sh`` against plain files.

Each tier is a folder: its ``/etc/appliance.env`` (as the build writes it, plus the paths a test
needs), a web root, a config drive's ``portal.env``; the db's boot disk is a plain file. A request
is fed to ``lib/demo/handle-request`` on stdin, as ``nc -ll -e`` does in the guest, and the answer
read from stdout. Between tiers, a stand-in ``nc`` runs the handler of the tier whose address it
is given, so a POST to web really passes through app to the db's disk. Booting the real images is
for ``test_demo_records_boot``.
"""

from __future__ import annotations

import shlex
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from catalog.demo_appliances.appliances import DEMO_APP, DEMO_DB, DEMO_WEB, DemoAppliance
from catalog.demo_appliances.guest import ROOTFS, render_appliance_env
from catalog.demo_appliances.records import RECORD_LOG_HEADER_BYTES, RECORD_MAX_BYTES

HANDLER = ROOTFS / "lib" / "demo" / "handle-request"
ADDRESSES = {"db": "10.240.0.10", "app": "10.240.0.11", "web": "10.240.0.12"}
# The log starts after a stand-in for the FAT filesystem, which no append may touch.
FILESYSTEM_BYTES = 4096
FILESYSTEM_FILL = b"\xaa"
DISK_BYTES = FILESYSTEM_BYTES + 2 * 1024 * 1024

# "nc ADDRESS PORT" (a tier asking the one below it) runs the handler of the tier at ADDRESS, as
# that tier's server would; "nc -w 2 ADDRESS PORT -e true" (a port check) succeeds for any tier.
NC_STUB = """#!/bin/sh
[ "$1" = -w ] && shift 2
[ -f "$TIERS/$1/appliance.env" ] || exit 1
[ "$3" = -e ] && exit 0
APPLIANCE_ENV="$TIERS/$1/appliance.env" exec sh "$HANDLER"
"""


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode()


@dataclass
class Stack:
    """Tiers in folders under ``root``, reachable from each other by their stack addresses."""

    root: Path
    settings: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def disk(self) -> Path:
        return self.root / "db-disk.img"

    def tier_dir(self, role: str) -> Path:
        return self.root / "tiers" / ADDRESSES[role]

    def add(self, appliance: DemoAppliance, *, portal: bool = True, **overrides: str) -> None:
        folder = self.tier_dir(appliance.role)
        (folder / "www").mkdir(parents=True)
        (folder / "cidata").mkdir()
        (folder / "tmp").mkdir()
        (folder / "www" / "status.txt").write_text(f"{appliance.role} shop-{appliance.role}: up\n")
        values = {
            "WWW": str(folder / "www"),
            "CIDATA_DIR": str(folder / "cidata"),
            "TMPDIR": str(folder / "tmp"),
            "RECORD_DEVICE": str(self.disk),
            "RECORD_LOG_OFFSET": str(FILESYSTEM_BYTES),
            "RECORD_LOCK": str(self.root / "record-log.lock"),
            **overrides,
        }
        settings = render_appliance_env(appliance, "1.0.0+test", ("virtio",))
        settings += "".join(f"{name}={shlex.quote(value)}\n" for name, value in values.items())
        (folder / "appliance.env").write_text(settings)
        if portal:
            peers = "".join(f"PORTAL_PEER_{role.upper()}={address}\n" for role, address in ADDRESSES.items())
            (folder / "cidata" / "portal.env").write_text(f"PORTAL_INSTANCE=shop-{appliance.role}\n{peers}")

    def configure(self, role: str, **values: str) -> None:
        """Settings that override the tier's (appended to its appliance.env, so they win)."""
        settings = self.tier_dir(role) / "appliance.env"
        settings.write_text(
            settings.read_text() + "".join(f"{name}={shlex.quote(value)}\n" for name, value in values.items())
        )

    def request(self, role: str, raw: bytes) -> Response:
        """What the tier's server answers to ``raw``, a whole request."""
        result = subprocess.run(
            ["sh", str(HANDLER)],
            input=raw,
            env={
                "PATH": f"{self.root / 'bin'}:/usr/bin:/bin",
                "TIERS": str(self.root / "tiers"),
                "HANDLER": str(HANDLER),
                "APPLIANCE_ENV": str(self.tier_dir(role) / "appliance.env"),
                "DEMO_LIB": str(ROOTFS / "lib" / "demo"),
                # The guest runs each handler under busybox timeout; here the test is the time limit.
                "REQUEST_TIME_LIMITED": "yes",
            },
            capture_output=True,
            check=True,
            timeout=60,
        )
        assert result.stderr == b"", result.stderr
        return parse_response(result.stdout)

    def post(self, role: str, body: bytes, content_type: str = "text/plain") -> Response:
        head = f"POST /records HTTP/1.1\r\nHost: shop\r\nContent-Type: {content_type}\r\n"
        return self.request(role, f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body)

    def get(self, role: str, path: str, method: str = "GET") -> Response:
        return self.request(role, f"{method} {path} HTTP/1.1\r\nHost: shop\r\nAccept: */*\r\n\r\n".encode())

    def records(self, role: str = "db") -> list[str]:
        response = self.get(role, "/records")
        assert response.status == 200, response.text
        return response.text.splitlines()

    def log_bytes(self) -> bytes:
        """The header sector and the text after it, as written to the disk."""
        return self.disk.read_bytes()[FILESYSTEM_BYTES:]


def parse_response(raw: bytes) -> Response:
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode().split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    assert status_line.startswith("HTTP/1.0 "), raw
    return Response(int(status_line.split()[1]), headers, body)


@pytest.fixture
def stack(tmp_path: Path) -> Stack:
    stubs = tmp_path / "bin"
    stubs.mkdir()
    (stubs / "nc").write_text(NC_STUB)
    (stubs / "nc").chmod(0o755)
    made = Stack(tmp_path)
    made.disk.write_bytes(FILESYSTEM_FILL * FILESYSTEM_BYTES + bytes(DISK_BYTES - FILESYSTEM_BYTES))
    for appliance in (DEMO_DB, DEMO_APP, DEMO_WEB):
        made.add(appliance)
    return made


def filesystem_untouched(stack: Stack) -> bool:
    return stack.disk.read_bytes()[:FILESYSTEM_BYTES] == FILESYSTEM_FILL * FILESYSTEM_BYTES


# Bad input first: what a client may send that must never become a record.
@pytest.mark.parametrize(
    ("body", "status", "reason"),
    [
        (b"", 400, "the record is empty"),
        (b"\n", 400, "the record is empty"),
        (b"\r\n", 400, "the record is empty"),
        (b"first\nsecond", 400, "a record is one line"),
        (b"first\nsecond\n", 400, "a record is one line"),
        (b"first\r\nsecond\r\n", 400, "a record is one line"),
        (b"bell\x07", 400, "no control characters but tab"),
        (b"escape \x1b[31mred", 400, "no control characters but tab"),
        (b"nul\x00byte", 400, "no control characters but tab"),
        (b"carriage\rreturn", 400, "no control characters but tab"),
        (b"delete\x7f", 400, "no control characters but tab"),
        (b"x" * (RECORD_MAX_BYTES + 1), 413, f"a record is at most {RECORD_MAX_BYTES} bytes"),
        (b"x" * RECORD_MAX_BYTES + b"\n\n", 413, f"a record is at most {RECORD_MAX_BYTES} bytes"),
    ],
)
def test_a_body_that_is_not_one_record_is_refused(stack: Stack, body: bytes, status: int, reason: str) -> None:
    response = stack.post("db", body)
    assert (response.status, reason in response.text) == (status, True), response.text
    assert stack.records() == []
    assert stack.log_bytes() == bytes(len(stack.log_bytes()))
    assert filesystem_untouched(stack)


def test_a_body_longer_than_any_record_is_refused_unread(stack: Stack) -> None:
    # No body follows: a server that tried to read it would wait, and then say it was short.
    response = stack.request(
        "db", b"POST /records HTTP/1.1\r\nContent-Type: text/plain\r\nContent-Length: 99999999999999999999\r\n\r\n"
    )
    assert response.status == 413
    huge = stack.request("db", b"POST /records HTTP/1.1\r\nContent-Type: text/plain\r\nContent-Length: 1000000\r\n\r\n")
    assert huge.status == 413


@pytest.mark.parametrize(
    ("head", "status", "reason"),
    [
        ("Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 3\r\n", 415, "text/plain"),
        ("Content-Length: 3\r\n", 415, "text/plain"),
        ("Content-Type: text/plain\r\n", 411, "Content-Length"),
        ("Content-Type: text/plain\r\nContent-Length: -3\r\n", 411, "Content-Length"),
        ("Content-Type: text/plain\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n", 411, "chunked"),
        ("Content-Type: text/plain\r\nContent-Length: 30\r\n", 400, "shorter than its Content-Length"),
    ],
)
def test_a_post_must_say_what_it_sends_and_send_it_all(stack: Stack, head: str, status: int, reason: str) -> None:
    response = stack.request("db", f"POST /records HTTP/1.1\r\n{head}\r\nabc".encode())
    assert response.status == status, response.text
    assert reason in response.text
    assert stack.records() == []


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b"GET\r\n\r\n", 400),
        (b"get / HTTP/1.1\r\n\r\n", 400),
        (b"GET http://elsewhere/ HTTP/1.1\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: shop\r\n", 400),  # the connection closed inside the headers
        (b"GET / HTTP/1.1\r\n" + b"X-Filler: yes\r\n" * 65 + b"\r\n", 431),
        (b"GET /etc/appliance.env HTTP/1.1\r\n\r\n", 404),
        (b"GET /../../etc/passwd HTTP/1.1\r\n\r\n", 404),
        (b"DELETE /records HTTP/1.1\r\n\r\n", 405),
        (b"POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 405),
    ],
)
def test_malformed_or_unknown_requests_get_an_error(stack: Stack, raw: bytes, status: int) -> None:
    response = stack.request("db", raw)
    assert response.status == status, response.text
    assert response.headers["content-type"].startswith("text/plain")


def test_a_405_says_what_is_allowed(stack: Stack) -> None:
    assert stack.get("db", "/records", method="PUT").headers["allow"] == "GET, HEAD, POST"
    assert stack.get("db", "/", method="POST").headers["allow"] == "GET, HEAD"


def test_a_connection_closed_without_a_request_gets_no_answer(stack: Stack) -> None:
    # What each tier's port check looks like from the server's side.
    result = subprocess.run(
        ["sh", str(HANDLER)],
        input=b"",
        env={
            "PATH": "/usr/bin:/bin",
            "APPLIANCE_ENV": str(stack.tier_dir("db") / "appliance.env"),
            "DEMO_LIB": str(ROOTFS / "lib" / "demo"),
            "REQUEST_TIME_LIMITED": "yes",
        },
        capture_output=True,
        check=True,
    )
    assert result.stdout == b""
    assert list((stack.tier_dir("db") / "tmp").iterdir()) == []


def test_records_are_kept_in_order_on_the_disk_after_the_filesystem(stack: Stack) -> None:
    for body in (b"order 1001: 3 teapots\n", b"order 1002: a\ttab", b"caf\xc3\xa9 \xe2\x98\x95\r\n"):
        response = stack.post("db", body)
        assert response.status == 201, response.text
    assert stack.records() == ["order 1001: 3 teapots", "order 1002: a\ttab", "café ☕"]
    log = stack.log_bytes()
    text = "order 1001: 3 teapots\norder 1002: a\ttab\ncafé ☕\n".encode()
    assert log[:RECORD_LOG_HEADER_BYTES] == b"DEMO-RECORD-LOG 1\nlength %010d\n" % len(text) + bytes(
        RECORD_LOG_HEADER_BYTES - 36
    )
    assert log[RECORD_LOG_HEADER_BYTES:].rstrip(b"\0") == text
    assert filesystem_untouched(stack)


def test_a_record_of_exactly_the_cap_is_kept(stack: Stack) -> None:
    assert stack.post("db", b"x" * RECORD_MAX_BYTES + b"\r\n").status == 201
    assert stack.records() == ["x" * RECORD_MAX_BYTES]


def test_html_in_a_record_is_kept_as_text_and_escaped_on_every_page(stack: Stack) -> None:
    hostile = b"<script>alert('x')</script> & <img src=x onerror=alert(1)>"
    assert stack.post("web", hostile).status == 201
    assert stack.records() == [hostile.decode()]
    escaped = "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &lt;img src=x onerror=alert(1)&gt;"
    for role in ("web", "app", "db"):
        page = stack.get(role, "/")
        assert page.headers["content-type"] == "text/html; charset=utf-8"
        assert f"<li>{escaped}</li>" in page.text
        assert "<script>" not in page.text
        plain = stack.get(role, "/records")
        assert plain.headers["content-type"] == "text/plain; charset=utf-8"
        assert plain.headers["x-content-type-options"] == "nosniff"


def test_a_post_to_web_lands_on_the_db_and_every_page_lists_it_at_once(stack: Stack) -> None:
    first = stack.post("web", b"first, through web\n")
    assert (first.status, first.text) == (201, "record saved\n")
    assert stack.post("app", b"second, through app").status == 201
    assert stack.post("db", b"third, straight to db").status == 201
    expected = ["first, through web", "second, through app", "third, straight to db"]
    for role in ("web", "app", "db"):
        assert stack.records(role) == expected
        page = stack.get(role, "/").text
        assert '<pre id="status">' in page
        items = [line for line in page.splitlines() if line.startswith("<li>")]
        assert items == [f"<li>{record}</li>" for record in expected]


def test_the_page_keeps_the_status_chain_and_its_marker(stack: Stack) -> None:
    (stack.tier_dir("web") / "www" / "status.txt").write_text("web shop-web | app shop-app | db shop-db: hi\n")
    page = stack.get("web", "/").text
    assert "<h1>demo-web appliance</h1>" in page
    assert '<pre id="status">web shop-web | app shop-app | db shop-db: hi</pre>' in page
    assert '<p id="records">No records yet.</p>' in page
    assert stack.get("web", "/status.txt").text == "web shop-web | app shop-app | db shop-db: hi\n"


def test_head_answers_without_a_body(stack: Stack) -> None:
    assert stack.post("db", b"one").status == 201
    for path in ("/", "/records", "/status.txt"):
        response = stack.get("web", path, method="HEAD")
        assert response.status == 200
        assert response.body == b""
        assert int(response.headers["content-length"]) > 0


def test_a_refusal_from_the_db_reaches_the_client_through_every_tier(stack: Stack) -> None:
    stack.configure("db", RECORD_LOG_MAX_BYTES="20")
    assert stack.post("web", b"0123456789").status == 201
    full = stack.post("web", b"0123456789")
    assert full.status == 507
    assert "the record log is full" in full.text
    assert stack.records() == ["0123456789"]


def test_a_tier_whose_upstream_is_gone_says_so(stack: Stack) -> None:
    (stack.tier_dir("db") / "appliance.env").unlink()
    response = stack.post("web", b"lost?")
    assert response.status == 502
    assert "the db tier at 10.240.0.10:5432 did not answer" in response.text
    page = stack.get("web", "/")
    assert page.status == 200
    assert "No records to show: the app tier answered 502" in page.text


def test_a_standalone_tier_has_nowhere_to_send_records(tmp_path: Path) -> None:
    alone = Stack(tmp_path)
    alone.add(DEMO_WEB, portal=False)
    response = alone.post("web", b"hello")
    assert (response.status, response.text) == (503, "no app tier in this stack\n")


def test_a_disk_without_a_record_log_refuses_writes(tmp_path: Path) -> None:
    alone = Stack(tmp_path)
    alone.add(DEMO_DB, portal=False, RECORD_LOG_OFFSET="", KERNEL_CMDLINE_FILE=str(tmp_path / "cmdline"))
    (tmp_path / "cmdline").write_text("console=ttyS0 quiet\n")
    response = alone.post("db", b"hello")
    assert (response.status, response.text) == (503, "this disk has no record log\n")


def test_the_log_offset_comes_from_the_kernel_command_line(stack: Stack) -> None:
    cmdline = stack.root / "cmdline"
    cmdline.write_text(f"console=ttyS0 quiet loglevel=3 panic=10 demo.record_log={FILESYSTEM_BYTES}\n")
    stack.configure("db", RECORD_LOG_OFFSET="", KERNEL_CMDLINE_FILE=str(cmdline))
    assert stack.post("db", b"from the command line").status == 201
    assert stack.log_bytes()[RECORD_LOG_HEADER_BYTES:].startswith(b"from the command line\n")


@pytest.mark.parametrize(
    "damaged",
    [
        b"DEMO-RECORD-LOG 1\nlength 9999999999\n",
        b"DEMO-RECORD-LOG 1\nlength 99999999999999999999999999\n",
        b"DEMO-RECORD-LOG 1\nlength 12x\n",
        b"DEMO-RECORD-LOG 1\nlength -1\n",
        b"DEMO-RECORD-LOG 1\nsomething else\n",
        b"DEMO-RECORD-LOG 1\n",
    ],
)
def test_a_damaged_header_is_never_written_over(stack: Stack, damaged: bytes) -> None:
    with stack.disk.open("r+b") as disk:
        disk.seek(FILESYSTEM_BYTES)
        disk.write(damaged)
    before = stack.disk.read_bytes()
    response = stack.post("db", b"hello")
    assert (response.status, response.text) == (503, "the record log's header is damaged\n")
    assert stack.get("db", "/records").status == 503
    assert stack.disk.read_bytes() == before


def test_an_append_waits_for_the_lock_and_gives_up_without_writing(stack: Stack) -> None:
    stack.configure("db", RECORD_LOCK_TRIES="2")
    (stack.root / "record-log.lock").mkdir()
    response = stack.post("db", b"hello")
    assert (response.status, response.text) == (503, "the record log is busy: try again\n")
    assert stack.records() == []
    (stack.root / "record-log.lock").rmdir()
    assert stack.post("db", b"hello").status == 201


def test_concurrent_posts_all_land_whole(stack: Stack) -> None:
    bodies = [f"record {index} ".encode() + b"x" * 200 for index in range(8)]
    processes = [
        subprocess.Popen(
            ["sh", str(HANDLER)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env={
                "PATH": f"{stack.root / 'bin'}:/usr/bin:/bin",
                "TIERS": str(stack.root / "tiers"),
                "HANDLER": str(HANDLER),
                "APPLIANCE_ENV": str(stack.tier_dir("web") / "appliance.env"),
                "DEMO_LIB": str(ROOTFS / "lib" / "demo"),
                "REQUEST_TIME_LIMITED": "yes",
            },
        )
        for _ in bodies
    ]
    for process, body in zip(processes, bodies, strict=True):
        head = f"POST /records HTTP/1.1\r\nContent-Type: text/plain\r\nContent-Length: {len(body)}\r\n\r\n"
        out, _ = process.communicate(head.encode() + body, timeout=120)
        assert parse_response(out).status == 201
    assert sorted(stack.records()) == sorted(body.decode() for body in bodies)
    assert not (stack.root / "record-log.lock").exists()
