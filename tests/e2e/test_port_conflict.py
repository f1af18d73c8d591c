"""A published port taken by another program between reservation and start is moved, not fatal."""

from __future__ import annotations

import socket

import pytest

from provisioning.models import Status
from provisioning.services import hosts, launch, lifecycle
from tests.e2e.conftest import SYSTEM_URI

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e-ports")]


def test_port_grabbed_before_start_is_replaced(
    operator, member, project, ready_version, system_pool, django_capture_on_commit_callbacks
):
    pool, pool_path = system_pool
    hosts.host_register(
        user=operator, name="local", uri=SYSTEM_URI, domain_type="qemu", storage_pool=pool, storage_pool_path=pool_path
    )
    with django_capture_on_commit_callbacks(execute=False) as queued:
        stack = launch.stack_launch(
            user=member, project=project, name="ports", appliance_version=ready_version, lease_seconds=600
        )
    reserved = stack.instances.get().published_ports.get().host_port
    with socket.socket() as squatter:
        # As servers do (QEMU too): an earlier test's connections to this port may still be in
        # TIME_WAIT, which refuses a plain bind although nothing listens there.
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", reserved))
        squatter.listen()
        for callback in queued:  # the build, in this process (tasks run inline in tests)
            callback()
        stack.refresh_from_db()
        assert stack.status == Status.RUNNING, stack.status_reason
        moved = stack.instances.get().published_ports.get().host_port
        assert moved != reserved
        assert stack.events.filter(message__contains=f"port {reserved} on local is taken").exists()
        with socket.create_connection(("127.0.0.1", moved), timeout=5):
            pass  # QEMU listens on the new port
    with django_capture_on_commit_callbacks(execute=True):
        lifecycle.stack_destroy(user=member, stack=stack)
    stack.refresh_from_db()
    assert stack.status == Status.DELETED
