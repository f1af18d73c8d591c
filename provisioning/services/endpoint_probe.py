"""Noticing when a running stack's guests answer on their published ports: its endpoints' readiness.

A stack turns "running" once its domains have started, which is seconds before the guests inside
have booted and serve anything. Each published port keeps ``ready_at``, when its guest first
answered there since its instance last started (``provisioning.endpoint_answers`` says what counts
as an answer), and ``probed_at``, when the portal last tried. Pages and the API offer an endpoint as
ready only from ``ready_at`` on.

Two things probe: a watch queued whenever a stack's guests start (``queue_endpoints_watch``), which
tries the stack's ports with growing pauses until all answer, the stack stops, or ``WATCH_SECONDS``
pass; and a sweep every minute (``endpoints_sweep``) for every port still waiting, so a worker that
died mid-watch, or a guest slower than the watch, is still noticed. Whatever stops or restarts a
guest calls ``forget_readiness`` for its instances: the next answer is a new one.

The probe connects only to the address the portal published the port on (``bind_address`` of the
port's host), never to one a tenant named, and only on hosts whose guests really bind their ports.
No database transaction is open while it waits on the network.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

from django.core.cache import caches
from django.db import transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from portal.task_queues import Queue, enqueue
from provisioning.drivers import DriverError
from provisioning.endpoint_answers import guest_answers
from provisioning.endpoints import bind_address, endpoint_host
from provisioning.models import Host, PublishedPort, Stack, Status
from provisioning.progress import announce_stack_change
from provisioning.services.events import stack_event
from provisioning.services.hosts import driver_for

logger = logging.getLogger(__name__)

# Per connection step (connect, then the first byte back). A guest that answers at all answers fast.
PROBE_TIMEOUT_SECONDS = 2.0
# How long a watch keeps trying after the guests start; the minute sweep covers slower ones.
WATCH_SECONDS = 180.0
FIRST_PAUSE_SECONDS = 0.5
LONGEST_PAUSE_SECONDS = 3.0
# The sweep's bound: ports tried per run (the least recently tried first) and connections at once.
SWEEP_LIMIT = 64
PARALLEL_PROBES = 8

# Stack statuses in which running guests are probed: running, and the jobs that start guests (a
# guest can answer before its job has settled the stack); never while it is built or removed.
PROBED_STACK_STATUSES = (Status.RUNNING, Status.STARTING, Status.UNSHELVING, Status.REVERTING)


def ports_awaiting_answer() -> QuerySet[PublishedPort]:
    """Published ports of running guests that have not answered since they last started."""
    return PublishedPort.objects.filter(
        ready_at__isnull=True,
        instance__status=Status.RUNNING,
        instance__stack__status__in=PROBED_STACK_STATUSES,
        host__guests_bind_host_ports=True,
    )


def forget_readiness(*, instance_ids: Iterable[int]) -> int:
    """The instances' guests stopped or started again: their ports must answer anew; how many were cleared.

    Clearing ``probed_at`` too makes a probe that was under way when this ran drop its finding
    (``_mark_ready`` checks the stamp it claimed the port with).
    """
    return PublishedPort.objects.filter(instance_id__in=list(instance_ids)).update(ready_at=None, probed_at=None)


def queue_endpoints_watch(*, stack_id: int) -> None:
    """Once the current transaction commits, watch the stack's ports until its guests answer."""
    transaction.on_commit(
        lambda: enqueue(
            "provisioning.tasks.watch_stack_endpoints",
            stack_id,
            # Tenants' work: a watch may wait minutes for a guest, never in the portal's upkeep queue.
            queue=Queue.BUILDS,
            task_name=f"watch-endpoints-{stack_id}",
        )
    )


def endpoints_watch_after_start(*, stack_id: int) -> int:
    """The queued watch: probe the stack's ports with growing pauses (``endpoints_watch``) if its host
    really binds them; how many became ready."""
    host = Host.objects.filter(published_ports__instance__stack_id=stack_id).distinct().first()
    if host is None:
        return 0
    # Asked of the host itself, not its row: a row registered before its first refresh still holds
    # the default, and a simulated host's ports lead nowhere (a watch there would wait for nothing).
    try:
        with driver_for(host) as driver:
            binds_ports = driver.host_info().capabilities.guests_bind_host_ports
    except DriverError as exc:
        logger.warning("stack %s: endpoint watch skipped, host %s unreachable: %s", stack_id, host.name, exc.message)
        return 0
    if not binds_ports:
        return 0
    return endpoints_watch(stack_id=stack_id)


def endpoints_watch(*, stack_id: int, seconds: float = WATCH_SECONDS) -> int:
    """Probe the stack's waiting ports until all answer, none is waiting any more (the stack stopped,
    or it was deleted), or ``seconds`` pass; how many became ready.

    One watch per stack: a stack restarted again and again queues a watch each time, and those must
    not pile up in the builds queue. A second watch only moves the first one's end (kept in the
    shared cache, as a wall-clock moment all workers agree on) and returns at once.
    """
    cache = caches["shared"]
    key = f"endpoint-watch:{stack_id}"
    lease = seconds + 60  # a watch that died leaves its key for no longer than this
    if not cache.add(key, time.time() + seconds, timeout=lease):
        cache.set(key, time.time() + seconds, timeout=lease)
        return 0
    pause = FIRST_PAUSE_SECONDS
    ready = 0
    try:
        while True:
            waiting = ports_awaiting_answer().filter(instance__stack_id=stack_id)
            if not waiting.exists():
                return ready
            ready += len(_probe(waiting))
            if time.time() + pause >= float(cache.get(key) or 0):
                return ready
            time.sleep(pause)
            pause = min(pause * 2, LONGEST_PAUSE_SECONDS)
    finally:
        cache.delete(key)


def endpoints_sweep(*, limit: int = SWEEP_LIMIT) -> int:
    """Probe once every port still waiting for its guest (at most ``limit``); how many became ready."""
    return len(_probe(ports_awaiting_answer(), limit=limit))


def _probe(ports: QuerySet[PublishedPort], *, limit: int = SWEEP_LIMIT) -> list[PublishedPort]:
    """Try each port once (several at a time), mark the ones that answer, tell their stacks' watchers."""
    candidates = list(
        ports.select_related("host", "instance").order_by(F("probed_at").asc(nulls_first=True), "pk")[:limit]
    )
    claimed = [(port, stamp) for port in candidates if (stamp := _claim(port)) is not None]
    if not claimed:
        return []
    with ThreadPoolExecutor(max_workers=min(PARALLEL_PROBES, len(claimed))) as pool:
        answered = list(pool.map(lambda item: _answered_at(item[0]), claimed))
    ready = [
        port
        for (port, stamp), moment in zip(claimed, answered, strict=True)
        if moment is not None and _mark_ready(port, stamp, moment)
    ]
    for stack_id in sorted({port.instance.stack_id for port in ready}):
        _tell_watchers(stack_id, newly_ready={port.pk for port in ready})
    return ready


def _claim(port: PublishedPort) -> datetime | None:
    """Stamp ``probed_at`` if nobody else did since it was read; the stamp, or None (another probe has it)."""
    stamp = timezone.now()
    taken = PublishedPort.objects.filter(pk=port.pk, ready_at__isnull=True, probed_at=port.probed_at).update(
        probed_at=stamp
    )
    return stamp if taken else None


def _answered_at(port: PublishedPort) -> datetime | None:
    """When the port's guest answered, or None. Runs in a pool thread: network only, no database."""
    answers = guest_answers(
        address=bind_address(port.host),
        port=port.host_port,
        guest_port=port.guest_port,
        host_name=endpoint_host(port.host),
        timeout=PROBE_TIMEOUT_SECONDS,
    )
    return timezone.now() if answers else None


def _mark_ready(port: PublishedPort, stamp: datetime, moment: datetime) -> bool:
    """Record the answer unless the guest stopped or restarted meanwhile (``forget_readiness`` cleared the stamp)."""
    return bool(
        PublishedPort.objects.filter(
            pk=port.pk, probed_at=stamp, ready_at__isnull=True, instance__status=Status.RUNNING
        ).update(ready_at=moment)
    )


def _tell_watchers(stack_id: int, *, newly_ready: set[int]) -> None:
    """Nudge the stack's pages; when its last endpoint just became ready, say so in its progress."""
    ports = list(
        PublishedPort.objects.filter(instance__stack_id=stack_id)
        .exclude(instance__status=Status.DELETED)
        .select_related("instance")
        .order_by("instance_id", "pk")
    )
    if any(port.ready_at is None for port in ports):
        announce_stack_change(stack_id)
        return
    # Two probes may finish the set together: only the one that marked the last answer says so.
    last = max(ports, key=lambda port: (port.ready_at, port.pk))
    if last.pk not in newly_ready:
        return
    stack = Stack.objects.filter(pk=stack_id).first()
    if stack is not None:
        stack_event(stack, answering_message(ports))


def answering_message(ports: list[PublishedPort]) -> str:
    """'web answers on its endpoint', 'web and app answer on their endpoints', ..."""
    names = list(dict.fromkeys(port.instance.name for port in ports))
    if len(names) == 1:
        return f"{names[0]} answers on its endpoint{'s' if len(ports) > 1 else ''}"
    listed = f"{', '.join(names[:-1])} and {names[-1]}"
    return f"{listed} answer on their endpoints"


__all__ = [
    "PROBED_STACK_STATUSES",
    "answering_message",
    "endpoints_sweep",
    "endpoints_watch",
    "endpoints_watch_after_start",
    "forget_readiness",
    "ports_awaiting_answer",
    "queue_endpoints_watch",
]
