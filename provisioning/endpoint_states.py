"""What a reader is told about each published endpoint: where it is, and whether its guest answers yet.

Reads only rows already loaded for the caller (the stack pages and the API load a stack through
``provisioning.selectors``, scoped to the caller's projects, with its instances and ports), so a
page or a list asks the database nothing more. An endpoint is ready from the moment its guest first
answered there (``PublishedPort.ready_at``, kept by ``services.endpoint_probe``) while its instance
and its stack run; before that, a running stack's endpoint is "starting".
"""

from __future__ import annotations

from datetime import datetime
from typing import TypedDict

from provisioning.models import Instance, PublishedPort, Stack, Status


class EndpointState(TypedDict):
    role: str
    instance: str
    guest_port: int
    url: str
    ready: bool
    ready_at: datetime | None  # when its guest first answered since it last started; None until ready
    # Whether the portal waits for an answer there: its instance runs, on a host whose guests really
    # bind their ports (a simulated host's lead nowhere). Pages say "starting" only then.
    probed: bool


def _state(*, stack: Stack, instance: Instance, port: PublishedPort) -> EndpointState:
    running = stack.status == Status.RUNNING and instance.status == Status.RUNNING
    ready = running and port.ready_at is not None
    return {
        "role": instance.role,
        "instance": instance.name,
        "guest_port": port.guest_port,
        "url": port.url,
        "ready": ready,
        "ready_at": port.ready_at if ready else None,
        "probed": running and port.host.guests_bind_host_ports,
    }


def stack_endpoint_states(stack: Stack) -> list[EndpointState]:
    """One entry per published port of the stack, tier by tier."""
    return [
        _state(stack=stack, instance=instance, port=port)
        for instance in stack.instances.all()
        for port in instance.published_ports.all()
    ]


def instance_endpoint_states(instance: Instance) -> list[EndpointState]:
    """One entry per published port of the instance."""
    return [_state(stack=instance.stack, instance=instance, port=port) for port in instance.published_ports.all()]


__all__ = ["EndpointState", "instance_endpoint_states", "stack_endpoint_states"]
