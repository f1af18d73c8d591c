"""The RFB handshakes of the VNC proxy, against scripted peers and against QEMU's own VNC server."""

from __future__ import annotations

import asyncio
import shutil
import socket
import struct
import subprocess
from collections.abc import Iterator

import pytest
from asgiref.sync import async_to_sync

from provisioning.consoles import rfb
from provisioning.consoles.tickets import CLOSE_UNREACHABLE, console_ticket_issue
from tests.provisioning.test_console_helpers import (
    make_running_instance,
    open_console,
    receive_exactly,
    socket_headers,
    vnc_handshake_as_browser,
    vnc_log_in,
    vnc_security_types,
)

QEMU = shutil.which("qemu-system-x86_64")
QEMU_PASSWORD = "s3cr3tpw"


class ScriptedPeer:
    """The other end of a handshake: ``incoming`` is what it sends, ``sent`` collects what we wrote."""

    def __init__(self, incoming: bytes) -> None:
        self._incoming = incoming
        self.sent = b""

    async def read(self, count: int) -> bytes:
        if len(self._incoming) < count:
            raise asyncio.IncompleteReadError(self._incoming, count)
        data, self._incoming = self._incoming[:count], self._incoming[count:]
        return data

    async def write(self, data: bytes) -> None:
        self.sent += data


def run(coroutine):
    return asyncio.run(coroutine)


@pytest.mark.parametrize(
    ("message", "minor"),
    [(b"RFB 003.008\n", 8), (b"RFB 003.007\n", 7), (b"RFB 003.003\n", 3), (b"RFB 003.005\n", 3), (b"RFB 003.889\n", 3)],
)
def test_versions_are_read_as_the_three_that_exist(message, minor):
    assert rfb.parse_version(message) == minor


@pytest.mark.parametrize("message", [b"HTTP/1.1 200\n", b"RFB 004.000\n", b"RFB 003.008", b""])
def test_what_is_not_an_rfb_3_version_is_refused(message):
    with pytest.raises(rfb.RfbError):
        rfb.parse_version(message)


def test_vnc_authentication_uses_des_with_the_bit_mirrored_password():
    # An all-zero key is its own mirror: this is DES's classic test vector (key 0, block 0).
    assert rfb.vnc_auth_response("", bytes(16)).hex() == "8ca64de9c1b123a7" * 2
    # Answers QEMU accepted (see the test against QEMU below); only the first 8 characters count.
    assert rfb.vnc_auth_response("s3cr3tpw", bytes(range(16))).hex() == "e2bf3bcaeab1bf09fac3bf9e9ab33412"
    assert rfb.vnc_auth_response("s3cr3tpw-and-more", bytes(range(16))) == rfb.vnc_auth_response(
        "s3cr3tpw", bytes(range(16))
    )
    with pytest.raises(rfb.RfbError):
        rfb.vnc_auth_response("pw", bytes(8))


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        (b"RFB 003.008\n", b"\x01\x01" + b"\0\0\0\0"),  # type list, then SecurityResult OK
        (b"RFB 003.007\n", b"\x01\x01"),  # type list, no SecurityResult after None
        (b"RFB 003.003\n", b"\0\0\0\x01"),  # the server decides: None
    ],
)
def test_browsers_of_every_version_are_offered_none_only(version, expected):
    choice = b"\x01" if version != b"RFB 003.003\n" else b""
    peer = ScriptedPeer(version + choice)
    run(rfb.offer_no_auth_to_client(peer.read, peer.write))
    assert peer.sent == b"RFB 003.008\n" + expected


def test_a_browser_choosing_anything_but_none_is_refused_with_a_reason():
    peer = ScriptedPeer(b"RFB 003.008\n\x02")
    with pytest.raises(rfb.RfbError):
        run(rfb.offer_no_auth_to_client(peer.read, peer.write))
    assert peer.sent.endswith(b"only the security type None is offered")


def test_the_proxy_answers_the_servers_challenge():
    challenge = bytes(range(16))
    peer = ScriptedPeer(b"RFB 003.008\n" + b"\x02\x01\x02" + challenge + b"\0\0\0\0")
    assert run(rfb.authenticate_to_server(peer.read, peer.write, password="pw")) == 8
    assert peer.sent == b"RFB 003.008\n" + b"\x02" + rfb.vnc_auth_response("pw", challenge)


def test_a_3_3_server_is_spoken_to_in_3_3():
    challenge = bytes(16)
    peer = ScriptedPeer(b"RFB 003.003\n" + b"\0\0\0\x02" + challenge + b"\0\0\0\0")
    assert run(rfb.authenticate_to_server(peer.read, peer.write, password="pw")) == 3
    assert peer.sent == b"RFB 003.003\n" + rfb.vnc_auth_response("pw", challenge)


@pytest.mark.parametrize(
    ("incoming", "password"),
    [
        (b"RFB 003.008\n\x01\x01", "pw"),  # no password asked although the domain has one
        (b"RFB 003.008\n\x01\x02", ""),  # a password asked and the portal has none
        (b"RFB 003.008\n\x01\x10", "pw"),  # only a type the proxy does not speak
        (b"RFB 003.008\n\x00" + struct.pack(">I", 4) + b"busy", "pw"),  # refused outright
        (b"RFB 003.008\n\x01\x02" + bytes(16) + b"\0\0\0\x01" + struct.pack(">I", 2) + b"no", "pw"),  # wrong password
    ],
)
def test_servers_that_refuse_or_do_not_match_are_errors(incoming, password):
    peer = ScriptedPeer(incoming)
    with pytest.raises(rfb.RfbError):
        run(rfb.authenticate_to_server(peer.read, peer.write, password=password))


def test_a_domain_without_a_password_from_before_consoles_is_still_reached():
    peer = ScriptedPeer(b"RFB 003.008\n\x01\x01\0\0\0\0")
    assert run(rfb.authenticate_to_server(peer.read, peer.write, password="")) == 8
    assert peer.sent == b"RFB 003.008\n\x01"


# --- QEMU's VNC server (no guest, no libvirt: a paused machine with nothing in it) ---------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def qemu_vnc(tmp_path) -> Iterator[int]:
    """QEMU's VNC server on a loopback port, asking for ``QEMU_PASSWORD``; stopped by its pid."""
    assert QEMU is not None, "qemu-system-x86_64 is missing: ./scripts/test.sh installs it"
    port = _free_port()
    secret = tmp_path / "vnc-password"
    secret.write_text(QEMU_PASSWORD)
    process = subprocess.Popen(
        [
            QEMU,
            *("-S", "-nodefaults", "-machine", "none", "-display", "none"),
            *("-object", f"secret,id=vncpw,file={secret}"),
            *("-vnc", f"127.0.0.1:{port - 5900},password-secret=vncpw"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None:
                    pytest.fail(f"qemu exited: {process.stderr.read().decode() if process.stderr else ''}")
                subprocess.run(["sleep", "0.05"], check=True)
        yield port
    finally:
        process.terminate()
        process.wait(10)


def test_qemu_offers_only_vnc_authentication_and_refuses_a_wrong_password(qemu_vnc):
    assert run(vnc_security_types(qemu_vnc)) == bytes([rfb.SECURITY_VNC_AUTH])
    with pytest.raises(rfb.RfbError):
        run(vnc_log_in(qemu_vnc, "guessed1"))
    run(vnc_log_in(qemu_vnc, QEMU_PASSWORD))


@pytest.mark.django_db(transaction=True)
def test_through_the_proxy_qemu_sends_a_framebuffer_update(client, member, project, qemu_vnc):
    instance = make_running_instance(project, vnc_port=qemu_vnc, password=QEMU_PASSWORD)
    ticket = console_ticket_issue(user=member, instance=instance, kind="vnc").ticket
    headers = socket_headers(client, member)

    async def scenario():
        socket_, connected, _ = await open_console("vnc", ticket, headers, subprotocols=["binary"])
        assert connected
        await vnc_handshake_as_browser(socket_)
        width, height = struct.unpack(">HH", await receive_exactly(socket_, 4))
        assert (width, height) > (0, 0)
        await receive_exactly(socket_, 16)  # pixel format
        name_length = struct.unpack(">I", await receive_exactly(socket_, 4))[0]
        await receive_exactly(socket_, name_length)
        await socket_.send_to(bytes_data=struct.pack(">BBHHHH", 3, 0, 0, 0, width, height))
        message_type = await receive_exactly(socket_, 1)
        assert message_type == b"\x00"  # FramebufferUpdate
        await socket_.disconnect()

    async_to_sync(scenario)()


@pytest.mark.django_db(transaction=True)
def test_a_wrong_password_in_the_portal_never_reaches_the_browser(client, member, project, qemu_vnc):
    instance = make_running_instance(project, vnc_port=qemu_vnc, password="guessed1")
    ticket = console_ticket_issue(user=member, instance=instance, kind="vnc").ticket
    headers = socket_headers(client, member)

    async def scenario():
        _socket, connected, code = await open_console("vnc", ticket, headers)
        assert (connected, code) == (False, CLOSE_UNREACHABLE)

    async_to_sync(scenario)()
