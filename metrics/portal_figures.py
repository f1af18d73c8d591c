"""The portal's own figures for ``/metrics``, read from the database (and the task broker) at each scrape.

Each family costs one query, whatever the number of rows behind it (the queue depths one broker call
per queue), so a scrape stays cheap. What can only grow is a counter (task failures, lease actions:
rows that are never rewritten); what goes up and down is a gauge. Launch times are a gauge
histogram over the launches of the last ``LAUNCH_WINDOW``: a distribution of recent launches, not a
running total, so it is read as it is, without ``rate()``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta

from django.db.models import Count, OuterRef, Q, Subquery
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.models import Failure
from prometheus_client.core import CounterMetricFamily, GaugeHistogramMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from notices.models import LeaseWarning
from portal.models import AuditEvent
from portal.task_queues import Queue, cluster_name
from provisioning.consoles.tickets import STALE_AFTER
from provisioning.models import ConsoleTicket, Stack, StackEvent, Status
from provisioning.operation_models import Operation

logger = logging.getLogger(__name__)

LAUNCH_WINDOW = timedelta(hours=24)
# Upper bounds (seconds) of the launch-time buckets: a cached image boots in seconds, a first
# download of a large image takes many minutes.
LAUNCH_BUCKETS = (5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)
# The line a build writes when a new stack first runs (``provisioning.services.build``); an unshelve
# also sets ``running_at`` but writes another line, so it never counts as a launch.
LAUNCHED_MESSAGE = "running"
# Stacks whose lease the portal ended: the audit rows written by lease expiry (no actor, this reason).
EXPIRY_REASONS = {"stack.destroy": ("lease expired", "storage lease ended"), "stack.shelve": ("run lease ended",)}


class PortalFigures(Collector):
    """Launch times, task queues and failures, console sessions, lease actions, stacks and operations."""

    def collect(self) -> Iterator[Metric]:
        now = timezone.now()
        yield launch_times(now=now)
        yield from queue_depths()
        yield task_failures()
        yield console_sessions(now=now)
        yield lease_actions()
        yield stacks_by_status()
        yield operations_by_kind_and_status()


def launch_times(*, now: datetime) -> Metric:
    since = now - LAUNCH_WINDOW
    first_run = (
        StackEvent.objects.filter(stack=OuterRef("pk"), message=LAUNCHED_MESSAGE).order_by("created_at", "id")
    ).values("created_at")[:1]
    launches = (
        Stack.objects.filter(running_at__gte=since)
        .annotate(ran_at=Subquery(first_run))
        .filter(ran_at__gte=since)
        .values_list("created_at", "ran_at")
    )
    durations = [max(0.0, (ran_at - created_at).total_seconds()) for created_at, ran_at in launches]
    family = GaugeHistogramMetricFamily(
        "portal_stack_launch_seconds",
        f"Time from launch to running of the stacks that first ran in the last {int(LAUNCH_WINDOW.total_seconds())} s",
        labels=[],
    )
    family.add_metric([], _cumulative_buckets(durations), gsum_value=sum(durations))
    return family


def _cumulative_buckets(values: Iterable[float]) -> list[tuple[str, float]]:
    ordered = sorted(values)
    buckets = [(str(bound), float(sum(1 for value in ordered if value <= bound))) for bound in LAUNCH_BUCKETS]
    return [*buckets, ("+Inf", float(len(ordered)))]


def queue_depths() -> Iterator[Metric]:
    """Tasks waiting in each queue; a broker that does not answer leaves the family out (and is logged)."""
    family = GaugeMetricFamily("portal_task_queue_depth", "Tasks waiting in the broker, by queue", labels=["queue"])
    try:
        for queue in Queue:
            family.add_metric([queue.value], float(get_broker(cluster_name(queue)).queue_size() or 0))
    except Exception:  # a scrape must still answer with everything else while the broker is away
        logger.warning("metrics: the task broker did not answer", exc_info=True)
        return
    yield family


def task_failures() -> Metric:
    family = CounterMetricFamily(
        "portal_task_failures", "Background tasks that failed (django-q2 failures kept), by task", labels=["task"]
    )
    for func, count in Failure.objects.order_by().values_list("func").annotate(count=Count("id")).order_by("func"):
        family.add_metric([func], float(count))
    return family


def console_sessions(*, now: datetime) -> Metric:
    # A session whose heartbeat stopped (the proxy died) is not open, as the per-user limit judges it.
    count = ConsoleTicket.objects.filter(
        opened_at__isnull=False, closed_at__isnull=True, last_seen_at__gte=now - STALE_AFTER
    ).count()
    return GaugeMetricFamily("portal_console_sessions_open", "Console sessions open now", value=float(count))


def lease_actions() -> Metric:
    """Expiries (audit rows of the portal's own deletes and shelves for an ended lease), renewals and
    extensions (audit rows), warnings sent (one marker row each)."""
    expired = Q()
    for action, reasons in EXPIRY_REASONS.items():
        expired |= Q(action=action, detail__reason__in=reasons)
    audited = AuditEvent.objects.filter(
        Q(actor__isnull=True, action__in=EXPIRY_REASONS) | Q(action__in=("stack.renew_lease", "stack.extend_lease"))
    ).aggregate(
        expired=Count("id", filter=Q(actor__isnull=True) & expired),
        renewed=Count("id", filter=Q(action="stack.renew_lease")),
        extended=Count("id", filter=Q(action="stack.extend_lease")),
    )
    family = CounterMetricFamily(
        "portal_lease_actions", "Lease expiries, renewals, extensions and warnings sent", labels=["action"]
    )
    for action in ("expired", "renewed", "extended"):
        family.add_metric([action], float(audited[action]))
    family.add_metric(["warned"], float(LeaseWarning.objects.filter(sent=True).count()))
    return family


def stacks_by_status() -> Metric:
    counts = dict(Stack.objects.exclude(status=Status.DELETED).order_by().values_list("status").annotate(n=Count("id")))
    family = GaugeMetricFamily("portal_stacks", "Stacks by status (deleted ones are not counted)", labels=["status"])
    for status in Status:
        if status != Status.DELETED:
            family.add_metric([status.value], float(counts.get(status.value, 0)))
    return family


def operations_by_kind_and_status() -> Metric:
    rows = Operation.objects.order_by().values_list("kind", "status").annotate(n=Count("id"))
    counts = {(kind, status): n for kind, status, n in rows}
    family = GaugeMetricFamily(
        "portal_operations", "Moves, evacuations and resizes by kind and status (rows kept)", labels=["kind", "status"]
    )
    for kind in Operation.Kind:
        for state in Operation.State:
            family.add_metric([kind.value, state.value], float(counts.get((kind.value, state.value), 0)))
    return family
