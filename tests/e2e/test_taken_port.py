"""A program outside the portal takes a stack's published port while the stack is off: starting it
again publishes the port elsewhere instead of failing, for a stopped stack (its definition) and for a
shelved one (its definition and the memory saved with it)."""

from __future__ import annotations

import socket

import pytest

from provisioning.endpoints import bind_address
from provisioning.models import Stack, Status
from provisioning.services import lifecycle, power, shelving
from provisioning.services.launch import stack_launch
from tests.e2e.records import web_url
from tests.polling import page_text, wait_for

pytestmark = pytest.mark.e2e


def _taking_its_port(stack: Stack) -> socket.socket:
    """A listener on the address and port the stack's web tier publishes on (as another program would)."""
    (port,) = [p for i in stack.instances.all() for p in i.published_ports.all()]
    taker = socket.socket()
    # As servers do: the page reads before left connections in TIME_WAIT on this port, which
    # refuse a plain bind for a minute although nothing listens there any more.
    taker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    wait_for(
        lambda: _bound(taker, (bind_address(port.host), port.host_port)), timeout=30, interval=0.5, what="the port"
    )
    taker.listen()
    return taker


def _bound(taker: socket.socket, address: tuple[str, int]) -> bool:
    try:
        taker.bind(address)
    except OSError:
        return False
    return True


@pytest.mark.parametrize("set_aside", ["shutdown", "shelve"])
def test_a_port_taken_while_the_stack_was_off_is_moved_when_it_starts(
    set_aside, member, project, inline_demo_catalog, django_capture_on_commit_callbacks
):
    def run(work):
        with django_capture_on_commit_callbacks(execute=True):
            return work()

    web = inline_demo_catalog["demo-web"].versions.newest_first().first()
    stack = run(
        lambda: stack_launch(user=member, project=project, name="taken", appliance_version=web, lease_seconds=900)
    )
    stack.refresh_from_db()
    assert stack.status == Status.RUNNING, stack.status_reason
    wait_for(lambda: page_text(web_url(stack)), timeout=180, interval=1, what="the page before")
    before = web_url(stack)

    if set_aside == "shutdown":
        run(lambda: power.stack_power(user=member, stack=stack, action="poweroff"))
        come_back = lambda: power.stack_power(user=member, stack=stack, action="start")  # noqa: E731
    else:
        run(lambda: shelving.stack_shelve(user=member, stack=stack))
        come_back = lambda: shelving.stack_unshelve(user=member, stack=stack)  # noqa: E731
    with _taking_its_port(stack):
        run(come_back)
        stack.refresh_from_db()
        assert stack.status == Status.RUNNING, stack.status_reason
        after = web_url(stack)
        assert after != before
        assert stack.events.filter(message__contains="is taken by another program").exists()
        page = wait_for(lambda: page_text(after), timeout=180, interval=1, what="the page on the new port")
        assert "demo-web appliance" in page

    run(lambda: lifecycle.stack_destroy(user=member, stack=stack))
