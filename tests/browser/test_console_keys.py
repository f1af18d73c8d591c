"""The consoles' extra-keys bar and feedback in Chromium, at phone and desktop widths.

The screen page talks to a VNC server on loopback that speaks enough RFB for noVNC and records the
keys it gets; the serial page to a console that answers every write with its bytes in hex (the live
server is forked after the fake is put in place, so its console sockets use it). Each check reads
what the VM's side received and what the page said about it.
"""

from __future__ import annotations

import queue
import socket
import socketserver
import struct
import threading
from collections.abc import Iterator

import pytest

from provisioning.consoles import backends, rfb
from provisioning.consoles.backlog import ConsoleBacklog
from tests.browser_pages import inspect_page, new_page, sign_in, wait_for_console
from tests.provisioning.test_console_helpers import FakeSerialConsole, make_running_instance

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "pw123456"
WIDTH, HEIGHT = 720, 400
# 32 bits per pixel, depth 24, little-endian true colour, 8 bits a channel.
PIXEL_FORMAT = struct.pack(">BBBBHHHBBB3x", 32, 24, 0, 1, 255, 255, 255, 16, 8, 0)
CTRL, ALT, DELETE, ESCAPE, TAB, UP = 0xFFE3, 0xFFE9, 0xFFFF, 0xFF1B, 0xFF09, 0xFF52


class RecordingVncServer(socketserver.ThreadingTCPServer):
    """An RFB 3.8 server wanting VNC authentication that records the keys and cut text it is sent."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _RecordingHandler)
        self.keys: queue.Queue[tuple[int, bool]] = queue.Queue()
        self.cut_text: queue.Queue[bytes] = queue.Queue()
        self.clients: list[socket.socket] = []

    def drop_clients(self) -> None:
        for client in self.clients:
            client.shutdown(socket.SHUT_RDWR)
        self.clients.clear()

    def keys_until(self, keysym: int, down: bool, timeout: float = 10) -> list[tuple[int, bool]]:
        """Every key event up to and including ``(keysym, down)``."""
        seen = []
        while (event := self.keys.get(timeout=timeout)) != (keysym, down):
            seen.append(event)
        return [*seen, event]


class _RecordingHandler(socketserver.BaseRequestHandler):
    server: RecordingVncServer

    def read(self, count: int) -> bytes:
        data = b""
        while len(data) < count:
            piece = self.request.recv(count - len(data))
            if not piece:
                raise EOFError
            data += piece
        return data

    def handle(self) -> None:
        try:
            self.serve()
        except (EOFError, OSError):
            return

    def serve(self) -> None:
        conn = self.request
        conn.sendall(rfb.version_message(8))
        self.read(12)
        conn.sendall(bytes([1, rfb.SECURITY_VNC_AUTH]))
        self.read(1)
        challenge = bytes(range(16))
        conn.sendall(challenge)
        if self.read(16) != rfb.vnc_auth_response(PASSWORD, challenge):
            return
        conn.sendall(struct.pack(">I", 0))
        self.read(1)  # ClientInit
        name = b"recording"
        conn.sendall(struct.pack(">HH", WIDTH, HEIGHT) + PIXEL_FORMAT + struct.pack(">I", len(name)) + name)
        self.server.clients.append(conn)
        while True:
            kind = self.read(1)[0]
            if kind == 0:  # SetPixelFormat
                self.read(19)
            elif kind == 2:  # SetEncodings
                (count,) = struct.unpack(">xH", self.read(3))
                self.read(4 * count)
            elif kind == 3:  # FramebufferUpdateRequest: answered by nothing, noVNC waits
                self.read(9)
            elif kind == 4:  # KeyEvent
                down, keysym = struct.unpack(">B2xI", self.read(7))
                self.server.keys.put((keysym, bool(down)))
            elif kind == 5:  # PointerEvent
                self.read(5)
            elif kind == 6:  # ClientCutText
                (length,) = struct.unpack(">3xI", self.read(7))
                self.server.cut_text.put(self.read(length))
            else:
                return


@pytest.fixture
def vnc_server() -> Iterator[RecordingVncServer]:
    server = RecordingVncServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)


class HexEchoConsole(FakeSerialConsole):
    """A serial console whose log ends in a login prompt and that answers each write with its hex."""

    def __init__(self) -> None:
        super().__init__(backlog_data=b"[    0.000000] Linux version 6.1 (demo)\r\ndemo-web login: ")

    def write(self, data: bytes) -> None:
        self.feed(f"<{data.hex()}>".encode())

    def backlog(self, *, pool: str, name: str) -> ConsoleBacklog:
        return ConsoleBacklog(self.backlog_data, True, 100_000, available=True)


@pytest.fixture
def echo_serial(monkeypatch) -> None:
    """Asked for before ``live_portal``, so the forked server opens this console for every serial socket."""
    monkeypatch.setattr(backends, "open_serial", lambda grant: HexEchoConsole())


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


def press(page, name: str) -> None:
    page.locator("#console-keys").get_by_role("button", name=name, exact=True).click()


def notice(page) -> str:
    return page.locator("#console-notice").inner_text()


@pytest.mark.parametrize("width", ["phone", "desktop"])
def test_the_screens_extra_keys_reach_the_vm_and_every_action_says_what_it_did(
    vnc_server, chromium, live_portal, member, project, width
):
    instance = make_running_instance(project, vnc_port=vnc_server.server_address[1], password=PASSWORD)
    page = new_page(chromium, width)
    sign_in(page, live_portal, member)
    page.goto(f"{live_portal}/instances/{instance.pk}/screen/")
    wait_for_console(page, live_portal, instance, timeout_ms=30_000)
    inspect_page(page, f"console-screen-keys-{width}", width)

    press(page, "Esc")
    assert vnc_server.keys_until(ESCAPE, False) == [(ESCAPE, True), (ESCAPE, False)]
    assert notice(page) == "Esc sent"

    ctrl = page.locator("#console-keys [data-modifier=ctrl]")
    press(page, "Ctrl")
    assert ctrl.get_attribute("aria-pressed") == "true"
    assert notice(page) == "Ctrl held for the next key"
    press(page, "Up arrow")
    assert vnc_server.keys_until(CTRL, False) == [(CTRL, True), (UP, True), (UP, False), (CTRL, False)]
    assert ctrl.get_attribute("aria-pressed") == "false"
    assert notice(page) == "Ctrl-Up sent"

    press(page, "Tab")
    assert vnc_server.keys_until(TAB, False) == [(TAB, True), (TAB, False)]
    press(page, "Ctrl-Alt-Del")
    pressed = vnc_server.keys_until(DELETE, False)
    assert {(CTRL, True), (ALT, True), (DELETE, True)} <= set(pressed)
    assert notice(page) == "Ctrl-Alt-Del sent"

    fit = page.get_by_role("button", name="Fit to window")
    fit.click()
    assert fit.get_attribute("aria-pressed") == "false"
    assert notice(page) == "Shown at its real size: scroll to see all of it"
    assert page.evaluate("window.consoleRfb.scaleViewport") is False
    fit.click()
    assert page.evaluate("window.consoleRfb.scaleViewport") is True

    page.locator("#console-clipboard-box summary").click()
    page.locator("#console-clipboard").fill("pasted text")
    page.get_by_role("button", name="Send to the VM").click()
    assert vnc_server.cut_text.get(timeout=10) == b"pasted text"
    assert notice(page) == "11 characters sent to the VM's clipboard"

    # The VM's side goes away: the page says so, keys say they were not sent, Reconnect says it tries.
    vnc_server.drop_clients()
    page.locator("#console-status", has_text="Disconnected").wait_for()  # the proxy closed it cleanly
    press(page, "Esc")
    assert notice(page) == "Not connected: no key was sent"
    page.get_by_role("button", name="Reconnect").click()
    assert page.locator("#console-status").inner_text() in ("Reconnecting…", "Connected")
    page.locator("#console-status", has_text="Connected").wait_for()
    assert page.script_errors == []


@pytest.mark.parametrize("width", ["phone", "desktop"])
def test_the_serial_console_shows_its_backlog_and_its_keys_send_what_a_terminal_would(
    echo_serial, chromium, live_portal, member, project, width
):
    instance = make_running_instance(project)
    page = new_page(chromium, width)
    sign_in(page, live_portal, member)
    page.goto(f"{live_portal}/instances/{instance.pk}/serial/")
    wait_for_console(page, live_portal, instance, timeout_ms=30_000)
    page.wait_for_function(f"() => ({_TERMINAL_TEXT})().includes('demo-web login:')")
    assert "Linux version 6.1 (demo)" in page.evaluate(_TERMINAL_TEXT)
    replayed = len(HexEchoConsole().backlog_data)
    said = f"Its last {replayed} bytes of earlier output shown; live from here. Press Enter for a prompt."
    assert notice(page) == said
    inspect_page(page, f"console-serial-keys-{width}", width)
    # Readable on a phone: no smaller than 13 px.
    assert page.evaluate("window.consoleTerminal.options.fontSize") >= 13

    def received(hex_bytes: str) -> None:
        page.wait_for_function(f"() => ({_TERMINAL_TEXT})().includes('<{hex_bytes}>')")

    press(page, "Esc")
    received("1b")
    assert notice(page) == "Esc sent"
    press(page, "Tab")
    received("09")
    press(page, "Ctrl-C")
    received("03")
    press(page, "Alt")
    press(page, "Left arrow")
    received("1b5b313b3344")  # ESC [ 1 ; 3 D: Alt-Left, as xterm sends it
    assert notice(page) == "Alt-Left sent"
    # Ctrl held on the bar, then a letter from the device's own keyboard.
    press(page, "Ctrl")
    page.keyboard.type("d")
    received("04")
    assert notice(page) == "Ctrl-D sent"
    assert page.locator("#console-keys [data-modifier=ctrl]").get_attribute("aria-pressed") == "false"
    # A serial line has no Ctrl-Alt-Del.
    assert page.locator("#console-keys").get_by_role("button", name="Ctrl-Alt-Del").count() == 0
    assert page.script_errors == []
