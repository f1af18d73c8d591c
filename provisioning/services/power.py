"""Power for a whole stack or one of its instances: start, shut down, power off, reboot.

A stack shuts down in reverse dependency order (the web tier before the database it talks to) and
starts in order; the tiers of one layer go together. A shut-down asks each guest to power off
(ACPI) and cuts the power of any guest still on after ``SHUTDOWN_TIMEOUT_SECONDS``. A stopped stack
keeps its disks, its lease and everything it holds; only its guests are off.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from django.conf import settings

from portal.moments import duration_text
from portal.scoping import User
from provisioning.drivers import DomainInfo, DriverError, HypervisorDriver, PortUnavailable
from provisioning.models import Instance, Stack, Status
from provisioning.services import resize, stack_jobs
from provisioning.services.build import PORT_ATTEMPTS, move_published_ports, port_forwards
from provisioning.services.endpoint_probe import forget_readiness, queue_endpoints_watch
from provisioning.services.events import stack_event
from provisioning.services.hosts import driver_for
from provisioning.services.stack_jobs import StackAction

POLL_SECONDS = 0.5
POWERED = (Status.RUNNING, Status.STOPPED)

START = StackAction("start", Status.STARTING, (Status.STOPPED, Status.RUNNING), "provisioning.tasks.power_stack")
SHUTDOWN = StackAction("shutdown", Status.STOPPING, POWERED, "provisioning.tasks.power_stack")
POWEROFF = StackAction("poweroff", Status.STOPPING, POWERED, "provisioning.tasks.power_stack")
REBOOT = StackAction("reboot", Status.STARTING, POWERED, "provisioning.tasks.power_stack")
ACTIONS = {action.name: action for action in (START, SHUTDOWN, POWEROFF, REBOOT)}


def stack_power(*, user: User, stack: Stack, action: str, instance: Instance | None = None) -> Stack:
    """Accept a power action on the whole stack, or on ``instance`` alone; the job runs in the background."""
    chosen = ACTIONS[action]
    if instance is not None and instance.stack_id != stack.pk:
        raise ValueError("the instance is not one of the stack's")
    return stack_jobs.begin(
        user=user,
        stack=stack,
        action=chosen,
        job_args=(action, instance.pk if instance is not None else None),
        instance=instance.name if instance is not None else None,
    )


def power_job(*, stack_id: int, action: str, instance_id: int | None = None) -> str:
    """The worker's side: act on the domains, then settle the stack by what its instances now are."""
    chosen = ACTIONS[action]
    stack = stack_jobs.claim_job(stack_id, chosen.busy)
    if stack is None:
        return "stack is not waiting for this job"
    layers = stack_jobs.instance_layers(stack)
    if instance_id is not None:
        layers = [[i for layer in layers for i in layer if i.pk == instance_id]]
    try:
        with driver_for(stack_jobs.stack_host(stack)) as driver:
            if action in ("shutdown", "poweroff", "reboot"):
                stop_layers(stack, driver, reversed(layers), force=action == "poweroff")
            if action in ("start", "reboot"):
                start_layers(stack, driver, layers)
    except DriverError as exc:
        stack_jobs.give_back(stack, busy=chosen.busy, action=action, reason=exc.message)
        return "failed"
    settled = _settled_status(stack)
    stack_jobs.settle(stack, busy=chosen.busy, status=settled, message=f"{action}: done; the stack is {settled}")
    return str(settled)


def _settled_status(stack: Stack) -> Status:
    live = stack.instances.exclude(status=Status.DELETED)
    return Status.STOPPED if not live.exclude(status=Status.STOPPED).exists() else Status.RUNNING


def stop_layers(stack: Stack, driver: HypervisorDriver, layers: Iterable[list[Instance]], *, force: bool) -> None:
    """Stop each layer's guests (all of a layer together), layer after layer; mark their instances stopped."""
    actor = stack_jobs.asker(stack)
    for layer in layers:
        running = [i for i in layer if driver.domain_info(name=i.domain_name).state != "shutoff"]
        if not force:
            for instance in running:
                driver.shutdown_domain(name=instance.domain_name)
            still_on = _wait_until_off(driver, running, timeout=settings.SHUTDOWN_TIMEOUT_SECONDS)
        else:
            still_on = running
        for instance in still_on:
            driver.power_off_domain(name=instance.domain_name)
            if not force:
                waited = duration_text(settings.SHUTDOWN_TIMEOUT_SECONDS)
                stack_event(stack, f"{instance.name}: did not shut down within {waited}; powered off", actor=actor)
        Instance.objects.filter(pk__in=[i.pk for i in layer]).update(status=Status.STOPPED)
        forget_readiness(instance_ids=[i.pk for i in layer])
        for instance in layer:
            stack_event(stack, f"{instance.name}: {'powered off' if force else 'shut down'}", actor=actor)


def _wait_until_off(driver: HypervisorDriver, instances: list[Instance], *, timeout: float) -> list[Instance]:
    """Poll until every guest is off or ``timeout`` seconds passed; the ones still on."""
    deadline = time.monotonic() + timeout
    pending = list(instances)
    while pending:
        pending = [i for i in pending if driver.domain_info(name=i.domain_name).state != "shutoff"]
        if not pending or time.monotonic() >= deadline:
            break
        time.sleep(POLL_SECONDS)
    return pending


def start_layers(stack: Stack, driver: HypervisorDriver, layers: Iterable[list[Instance]]) -> None:
    """Start each layer's guests, layer after layer; record their new VNC ports and mark them running."""
    actor = stack_jobs.asker(stack)
    for layer in layers:
        for instance in layer:
            boots = resize.boots_from_definition(driver, instance)
            info = _start_moving_taken_ports(stack, driver, instance)
            forget_readiness(instance_ids=[instance.pk])  # a started guest answers anew
            # autoport may pick another VNC port at every start: the console proxy needs this one. A guest
            # booted from its definition has every size a resize left for its restart.
            arrived = {"restart_needed": False} if boots else {}
            Instance.objects.filter(pk=instance.pk).update(status=Status.RUNNING, vnc_port=info.vnc_port, **arrived)
            stack_event(stack, f"{instance.name}: started", actor=actor)
    queue_endpoints_watch(stack_id=stack.pk)


def _start_moving_taken_ports(stack: Stack, driver: HypervisorDriver, instance: Instance) -> DomainInfo:
    """Start the guest; if a program outside the portal took one of its published ports while it was
    off, publish them on free ports instead (the definition and its managed save) and start again."""
    attempts_left = PORT_ATTEMPTS
    while True:
        try:
            return driver.start_domain(name=instance.domain_name)
        except PortUnavailable:
            attempts_left -= 1
            if not attempts_left or instance.host is None:
                raise
            move_published_ports(instance=instance, host=instance.host, stack=stack)
            driver.set_port_forwards(
                name=instance.domain_name, forwards=port_forwards(host=instance.host, instance=instance)
            )
