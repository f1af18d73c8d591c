"""The local port probe sees what QEMU's forward would meet: another program's listener takes a port,
closed connections still in TIME_WAIT on it do not (QEMU binds with SO_REUSEADDR)."""

from __future__ import annotations

import socket

from provisioning.placement import _port_is_free_locally


def test_a_listener_of_another_program_takes_the_port():
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        assert not _port_is_free_locally("127.0.0.1", other.getsockname()[1])


def test_a_port_whose_last_connection_is_in_time_wait_is_free():
    with socket.socket() as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        client = socket.create_connection(("127.0.0.1", port))
        served, _ = server.accept()
        served.close()  # the serving side closes first, so its end of the connection waits
        client.recv(1)
        client.close()
    with socket.socket() as plain:
        try:
            plain.bind(("127.0.0.1", port))
            waited = False
        except OSError:
            waited = True
    assert waited, "the served connection should hold the port in TIME_WAIT for a plain bind"
    assert _port_is_free_locally("127.0.0.1", port)
