"""What counts as a guest answering on a published port: bytes back in the port's protocol, never a
bare accepted connection (QEMU's forward accepts those before the guest listens)."""

from __future__ import annotations

import socket

from provisioning.endpoint_answers import POSTGRES_PORT, guest_answers
from tests.provisioning.endpoint_guests import FakeGuestPort, StaySilent, free_loopback_port


def _answers(port: int, guest_port: int = 80) -> bool:
    return guest_answers(address="127.0.0.1", port=port, guest_port=guest_port, host_name="localhost", timeout=0.5)


def test_nothing_listening_is_not_an_answer():
    assert _answers(free_loopback_port()) is False


def test_a_connection_closed_without_a_word_is_not_an_answer():
    with FakeGuestPort() as guest:
        assert _answers(guest.port) is False
        assert guest.connections == 1


def test_a_connection_held_silent_is_not_an_answer():
    silent = StaySilent()
    with FakeGuestPort(before=silent) as guest:
        try:
            assert _answers(guest.port) is False
        finally:
            silent.close()


def test_any_http_status_is_an_answer():
    with FakeGuestPort() as guest:
        guest.answering = True
        assert _answers(guest.port) is True


def test_postgres_is_asked_in_its_own_words():
    received: list[bytes] = []

    def postgres(conn: socket.socket) -> None:
        received.append(conn.recv(8))
        conn.sendall(b"N")  # no SSL here: PostgreSQL's answer before authentication
        conn.close()

    with FakeGuestPort() as guest:
        guest.answering, guest.after = True, postgres
        assert _answers(guest.port, guest_port=POSTGRES_PORT) is True
    assert received == [bytes([0, 0, 0, 8, 4, 210, 22, 47])]


def test_a_web_server_on_the_postgres_port_answers_too():
    """The demo's database tier serves a page on 5432: it waits for a line, then refuses ours."""

    def line_reader(conn: socket.socket) -> None:
        conn.settimeout(3)
        seen = b""
        while b"\n" not in seen:
            chunk = conn.recv(64)
            if not chunk:
                break
            seen += chunk
        conn.sendall(b"HTTP/1.0 400 Bad Request\r\n\r\n")
        conn.close()

    with FakeGuestPort() as guest:
        guest.answering, guest.after = True, line_reader
        assert _answers(guest.port, guest_port=POSTGRES_PORT) is True


def test_a_tls_port_needs_a_handshake_reply_not_just_a_connection():
    with FakeGuestPort() as guest:
        assert _answers(guest.port, guest_port=443) is False  # closed at our hello
        guest.answering = True  # a server that answers the hello, if not in TLS: something speaks there
        assert _answers(guest.port, guest_port=443) is True
