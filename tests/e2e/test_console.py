"""Consoles of a real VM: its serial output through libvirt, its screen through the VNC proxy.

The browser's side is played by WebsocketCommunicator against the real ASGI application; the VM
is the demo-web appliance under qemu:///system, built inline by the test process. A console opened
long after the boot still shows it (the host keeps the serial output in the pool), then the login.
"""

from __future__ import annotations

import json
import re
import shutil
import struct
import subprocess
import time
import xml.etree.ElementTree as ET

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from django.db import connections

from portal.models import AuditEvent
from provisioning.consoles import rfb
from provisioning.consoles.backlog import console_log_volume_name
from provisioning.consoles.tickets import CLOSE_ENDED, console_ticket_issue
from provisioning.drivers import open_driver
from provisioning.endpoints import bind_address
from provisioning.models import PublishedPort, Status
from provisioning.services import lifecycle
from provisioning.services.launch import stack_launch
from tests.browser_pages import new_page, wait_for_console
from tests.e2e.conftest import SYSTEM_URI
from tests.polling import page_text, wait_for
from tests.provisioning.test_console_helpers import (
    open_console,
    receive_backlog,
    receive_exactly,
    socket_headers,
    vnc_handshake_as_browser,
    vnc_log_in,
    vnc_security_types,
)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

READY_MARKER = b"DEMO-APPLIANCE-READY"
LOGIN_PROMPT = re.compile(rb"login: $")
# The root shell's prompt ("name:/# "), maybe followed by its question for the cursor's position.
SHELL_PROMPT = re.compile(rb"# (\x1b\[6n)?$")
# A line the kernel itself printed (its timestamp in brackets), not init.
KERNEL_LINE = re.compile(rb"\[\s*\d+\.\d+\] (Linux version|Freeing unused kernel|Run /init)")


def _live_graphics(domain: str) -> ET.Element:
    xml = subprocess.run(
        ["virsh", "-c", SYSTEM_URI, "dumpxml", domain], capture_output=True, text=True, check=True
    ).stdout
    graphics = ET.fromstring(xml).find("devices/graphics[@type='vnc']")  # noqa: S314 - libvirt's own XML
    assert graphics is not None
    return graphics


def test_serial_and_vnc_consoles_of_a_real_vm(client, member, project, inline_demo_catalog):
    version = inline_demo_catalog["demo-web"].versions.newest_first().first()
    # Tasks run inline: this returns once the domain has started, while the guest begins to boot.
    stack = stack_launch(user=member, project=project, name="consoled", appliance_version=version, lease_seconds=900)
    stack.refresh_from_db()
    assert stack.status == Status.RUNNING, stack.status_reason
    instance = stack.instances.get()
    assert instance.vnc_port
    assert len(instance.vnc_password) == 8
    headers = socket_headers(client, member)
    serial_ticket = console_ticket_issue(user=member, instance=instance, kind="serial").ticket

    async def serial_console() -> bytes:
        socket_, connected, code = await open_console("serial", serial_ticket, headers)
        assert connected, code
        # The guest has begun to boot: what it wrote before the socket opened comes first.
        _note, seen = await receive_backlog(socket_)
        try:
            seen = await _until(socket_, seen, re.compile(re.escape(READY_MARKER)), timeout=120)
            await socket_.send_to(text_data="typed\r")  # the guest's tty echoes it
            seen = await _until(socket_, seen, re.compile(re.escape(READY_MARKER) + rb".*typed", re.DOTALL), timeout=30)
        finally:
            # The close writes its audit row after libvirt lets go of the console: give it time.
            await socket_.disconnect(timeout=30)
        return seen

    output = async_to_sync(serial_console)()
    assert b"demo-web port 80" in output

    # The VNC server: only on loopback, only with the password, which the non-secure XML never shows.
    graphics = _live_graphics(instance.domain_name)
    assert graphics.get("listen") == "127.0.0.1"
    assert graphics.get("passwd") is None
    assert async_to_sync(vnc_security_types)(instance.vnc_port) == bytes([rfb.SECURITY_VNC_AUTH])
    with pytest.raises(rfb.RfbError):
        async_to_sync(vnc_log_in)(instance.vnc_port, "")  # no password: VNC auth is all it offers
    with pytest.raises(rfb.RfbError):
        async_to_sync(vnc_log_in)(instance.vnc_port, "guessed!")

    vnc_ticket = console_ticket_issue(user=member, instance=instance, kind="vnc").ticket

    async def vnc_console() -> tuple[int, int]:
        socket_, connected, code = await open_console("vnc", vnc_ticket, headers, subprotocols=["binary"])
        assert connected, code
        await vnc_handshake_as_browser(socket_)  # security type None on the browser's side
        width, height = struct.unpack(">HH", await receive_exactly(socket_, 4))
        await receive_exactly(socket_, 16)  # pixel format
        (name_length,) = struct.unpack(">I", await receive_exactly(socket_, 4))
        assert instance.domain_name.encode() in await receive_exactly(socket_, name_length)
        await socket_.send_to(bytes_data=struct.pack(">BBHHHH", 3, 0, 0, 0, width, height))
        assert await receive_exactly(socket_, 2, timeout=30) == b"\x00\x00"  # FramebufferUpdate, padding
        (rectangles,) = struct.unpack(">H", await receive_exactly(socket_, 2))
        assert rectangles >= 1
        # Deleting the stack closes the open console.
        await database_sync_to_async(lifecycle.stack_destroy)(user=member, stack=stack)
        while (message := await socket_.receive_output(timeout=60))["type"] != "websocket.close":
            pass
        assert message["code"] == CLOSE_ENDED
        await socket_.disconnect(timeout=30)
        return width, height

    width, height = async_to_sync(vnc_console)()
    assert width > 0
    assert height > 0
    closed = AuditEvent.objects.filter(action="console.close")
    wait_for(lambda: closed.count() == 2, timeout=30, what="both console sessions in the audit log")
    sessions = closed.order_by("pk")
    assert [event.detail["kind"] for event in sessions] == ["serial", "vnc"]
    assert all(event.detail["client_address"] == "127.0.0.1" for event in sessions)
    assert sessions[0].detail["bytes_from_vm"] > 0


async def _until(socket_, seen: bytes, wanted: re.Pattern[bytes], timeout: float = 60) -> bytes:
    """What the VM sends, added to ``seen``, until ``wanted`` matches it (the portal's notes are skipped).

    Waits with ``receive_nothing``: a ``receive_from`` that times out cancels the application.
    """
    deadline = time.monotonic() + timeout
    while not wanted.search(seen):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{wanted.pattern!r} not seen; the last output: {seen[-400:]!r}")
        if await socket_.receive_nothing(timeout=0.5):
            continue
        message = await socket_.receive_from(timeout=5)
        if isinstance(message, bytes):
            seen += message
    return seen


async def _prompted(socket_, seen: bytes, prompt: re.Pattern[bytes]) -> bytes:
    """``seen`` and what follows until the last thing shown is ``prompt``: as a person would, press
    Enter for a fresh one when a late kernel line was printed after it."""
    for _ in range(5):
        try:
            return await _until(socket_, seen, prompt, timeout=10)
        except TimeoutError:
            await socket_.send_to(text_data="\r")
    return await _until(socket_, seen, prompt, timeout=10)


def test_a_console_opened_after_the_boot_shows_it_and_offers_a_root_shell(client, member, project, inline_demo_catalog):
    version = inline_demo_catalog["demo-web"].versions.newest_first().first()
    stack = stack_launch(user=member, project=project, name="backlog", appliance_version=version, lease_seconds=900)
    stack.refresh_from_db()
    assert stack.status == Status.RUNNING, stack.status_reason
    instance = stack.instances.get()
    port = PublishedPort.objects.get(instance=instance)
    # Nobody watches the console while the guest boots and serves its page.
    wait_for(lambda: page_text(f"http://{bind_address(instance.host)}:{port.host_port}/"), timeout=180, what="the page")
    headers = socket_headers(client, member)
    ticket = console_ticket_issue(user=member, instance=instance, kind="serial").ticket

    async def serial_console() -> tuple[dict, bytes, bytes]:
        socket_, connected, code = await open_console("serial", ticket, headers)
        assert connected, code
        try:
            note, backlog = await receive_backlog(socket_, timeout=30)
            seen = await _prompted(socket_, backlog, LOGIN_PROMPT)
            await socket_.send_to(text_data="root\r")
            seen = await _prompted(socket_, seen, SHELL_PROMPT)
            await socket_.send_to(text_data="echo $((6*7))-$(hostname)\r")
            seen = await _until(socket_, seen, re.compile(rb"\r\n42-\S+\r\n"))
            await socket_.send_to(text_data="exit\r")
            seen = await _prompted(socket_, seen, LOGIN_PROMPT)
        finally:
            await socket_.disconnect(timeout=30)
        return note, backlog, seen

    note, backlog, seen = async_to_sync(serial_console)()
    # The backlog holds the boot: the kernel's lines, init's, the ready line, then the login prompt.
    assert note["available"], note
    assert note["bytes"] == len(backlog) > 0
    assert KERNEL_LINE.search(backlog), backlog[:2000]
    assert READY_MARKER + b" demo-web port 80" in backlog
    assert seen.count(READY_MARKER) == 1  # the replay and the live output do not repeat each other
    assert b"Log in as root" in seen
    assert f"42-{instance.name}".encode() in seen  # the guest's hostname is its instance's name

    # The same log, as text, through the API; and it goes with the stack.
    log = client.get(f"/api/v1/instances/{instance.pk}/console-log/")
    assert log.status_code == 200
    body = json.loads(log.content)
    assert body["available"]
    assert f"{READY_MARKER.decode()} demo-web port 80" in body["text"]
    assert "\x1b" not in body["text"]
    pool = instance.host.storage_pool
    lifecycle.stack_destroy(user=member, stack=stack)
    with open_driver(SYSTEM_URI) as driver:
        left = [volume.name for volume in driver.list_volumes(pool=pool)]
    assert console_log_volume_name(instance) not in left
    assert not [name for name in left if name.endswith("-console.log") or "-console.log." in name]


# --- in a real browser: Debian's Chromium driven by Playwright, the portal served by daphne ------

CHROMIUM = shutil.which("chromium")
_CANVAS_PIXELS = """() => {
  const canvas = document.querySelector("#console-screen canvas");
  const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  const colours = new Set();
  let lit = 0;
  for (let i = 0; i < data.length; i += 4) {
    if (data[i] + data[i + 1] + data[i + 2] > 96) lit++;
    if (colours.size < 64) colours.add((data[i] << 16) | (data[i + 1] << 8) | data[i + 2]);
  }
  return {width: canvas.width, height: canvas.height, lit, colours: colours.size};
}"""
_TERMINAL_TEXT = """() => {
  const buffer = window.consoleTerminal.buffer.active;
  const lines = [];
  for (let i = 0; i < buffer.length; i++) {
    const line = buffer.getLine(i);
    // A line the terminal wrapped at its width continues the one before it.
    if (line.isWrapped && lines.length) lines[lines.length - 1] += line.translateToString(true);
    else lines.push(line.translateToString(true));
  }
  return lines.join("\\n");
}"""


def test_consoles_in_chromium(member, project, inline_demo_catalog, live_portal, tmp_path, monkeypatch):
    assert CHROMIUM is not None, "Debian's chromium is missing: ./scripts/test.sh installs it"
    from playwright import sync_api

    # Playwright's sync API runs an event loop in this thread; the ORM calls below are plain sync code.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "1")
    version = inline_demo_catalog["demo-web"].versions.newest_first().first()
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = new_page(browser, "desktop")
            page.goto(f"{live_portal}/login/")
            page.fill("input[name=username]", member.username)
            page.fill("input[name=password]", "pw")
            page.click("button[type=submit]")
            page.wait_for_url(f"{live_portal}/")  # signed in: the dashboard

            stack = stack_launch(
                user=member, project=project, name="browsed", appliance_version=version, lease_seconds=900
            )
            instance = stack.instances.get()
            assert instance.status == Status.RUNNING, stack.status_reason

            # Serial first: the guest is booting now, its log and ready line arrive while we watch.
            page.goto(f"{live_portal}/instances/{instance.pk}/serial/")
            wait_for_console(page, live_portal, instance, timeout_ms=35_000)
            # The serial stream may split a line across messages: wait for the whole ready line.
            ready_line = f"{READY_MARKER.decode()} demo-web port 80"
            page.wait_for_function(f"() => ({_TERMINAL_TEXT})().includes('{ready_line}')", timeout=120_000)
            page.screenshot(path=str(tmp_path / "serial.png"))

            page.goto(f"{live_portal}/instances/{instance.pk}/screen/")
            wait_for_console(page, live_portal, instance, timeout_ms=35_000)
            page.wait_for_function(
                f"() => {{ const p = ({_CANVAS_PIXELS})(); return p.lit > 100 && p.colours > 1; }}", timeout=60_000
            )
            pixels = page.evaluate(_CANVAS_PIXELS)
            shot = page.locator("#console-screen canvas").screenshot(path=str(tmp_path / "screen.png"))
            assert pixels["width"] > 0
            assert pixels["height"] > 0
            assert pixels["colours"] > 1, pixels  # drawn, not one flat colour
            assert len(shot) > 1000
            assert "Connected" in page.text_content("#console-status")
            lifecycle.stack_destroy(user=member, stack=stack)
        finally:
            browser.close()
            # Inside Playwright's event loop Django's connections are per context, not per thread:
            # the one opened here would outlive the test and keep the test database from being dropped.
            connections.close_all()
