"""The portal's own figures on ``/metrics``, each made by the code that makes it in production."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.monitor import save_task

from notices.lease_warnings import lease_warnings_send
from portal.models import RunEnd
from portal.task_queues import Queue, cluster_name
from provisioning.models import ConsoleTicket, Stack, Status
from provisioning.operation_models import Operation
from provisioning.services import lifecycle
from provisioning.services.launch import stack_launch
from provisioning.services.operations import open_operation, operation_finished
from tests.metrics_exposition.test_exposition import of, scrape, series

pytestmark = pytest.mark.django_db


def test_a_launch_is_counted_with_how_long_it_took(client, member, project, test_host, ready_version, step):
    stack = step(lambda: stack_launch(user=member, project=project, name="fast", appliance_version=ready_version))
    stack.refresh_from_db()
    assert stack.status == Status.RUNNING
    # An unshelve also sets running_at; it is not a launch and must not count twice.
    Stack.objects.filter(pk=stack.pk).update(running_at=timezone.now())

    figures = series(scrape(client))

    assert of(figures, "portal_stack_launch_seconds_gcount") == 1
    took = of(figures, "portal_stack_launch_seconds_gsum")
    assert 0 <= took < 60
    assert of(figures, "portal_stack_launch_seconds_bucket", le="60.0") == 1
    assert of(figures, "portal_stack_launch_seconds_bucket", le="+Inf") == 1


def test_stacks_by_status_leave_deleted_ones_out(client, guest):
    guest("a")
    guest("b")
    guest("c", status=Status.SHELVED)
    guest("d", status=Status.DELETED)

    figures = series(scrape(client))

    assert of(figures, "portal_stacks", status="running") == 2
    assert of(figures, "portal_stacks", status="shelved") == 1
    assert of(figures, "portal_stacks", status="error") == 0
    assert not [labels for name, labels in figures if name == "portal_stacks" and ("status", "deleted") in labels]


def test_operations_by_kind_and_status(client, guest, operator):
    instance = guest("moving")
    done = open_operation(kind=Operation.Kind.MIGRATE_INSTANCE, user=operator, instance=instance)
    operation_finished(done.pk, status=Operation.State.SUCCEEDED, detail="moved")
    open_operation(kind=Operation.Kind.MIGRATE_INSTANCE, user=operator, instance=instance)
    open_operation(kind=Operation.Kind.RESIZE, user=operator, instance=instance)

    figures = series(scrape(client))

    assert of(figures, "portal_operations", kind="migrate_instance", status="succeeded") == 1
    assert of(figures, "portal_operations", kind="migrate_instance", status="pending") == 1
    assert of(figures, "portal_operations", kind="resize", status="pending") == 1
    assert of(figures, "portal_operations", kind="evacuate_host", status="failed") == 0


def test_console_sessions_open_count_only_live_ones(client, guest, member):
    instance = guest("console")
    now = timezone.now()

    def ticket(n: int, **fields) -> None:
        ConsoleTicket.objects.create(
            digest=f"{n:064d}", user=member, instance=instance, kind="vnc", expires_at=now, **fields
        )

    ticket(1, opened_at=now, last_seen_at=now)  # open
    ticket(2, opened_at=now, last_seen_at=now, closed_at=now)  # closed
    ticket(3, opened_at=now - timedelta(hours=1), last_seen_at=now - timedelta(hours=1))  # heartbeat stopped
    ticket(4)  # never opened

    assert of(series(scrape(client)), "portal_console_sessions_open") == 1


def test_lease_actions_count_expiries_renewals_and_warnings(client, guest, member, project):
    project.at_run_end = RunEnd.DELETE
    project.save()
    renewed = guest("renewed").stack
    lifecycle.stack_renew_lease(user=member, stack=renewed, lease_seconds=7200)
    expired = guest("expired").stack
    Stack.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    lifecycle.leases_expire()
    # A member deleting a stack by hand is not an expiry.
    lifecycle.stack_destroy(user=member, stack=guest("by-hand").stack, reason="lease expired")
    warned = guest("warned").stack
    Stack.objects.filter(pk=warned.pk).update(expires_at=timezone.now() + timedelta(minutes=5))
    sent = lease_warnings_send()

    figures = series(scrape(client))

    assert of(figures, "portal_lease_actions_total", action="expired") == 1
    assert of(figures, "portal_lease_actions_total", action="renewed") == 1
    assert of(figures, "portal_lease_actions_total", action="extended") == 0
    assert sent >= 1
    assert of(figures, "portal_lease_actions_total", action="warned") == sent


def test_task_failures_and_queue_depth(client):
    for n in range(2):
        # What a worker hands the monitor after a task raised.
        save_task(
            {
                "id": f"t{n}",
                "name": f"failed-{n}",
                "func": "math.sqrt",
                "args": (-1,),
                "kwargs": {},
                "hook": None,
                "started": timezone.now(),
                "stopped": timezone.now(),
                "success": False,
                "result": "math domain error",
            },
            get_broker(),
        )
    get_broker(cluster_name(Queue.BUILDS)).enqueue("waiting")

    figures = series(scrape(client))

    assert of(figures, "portal_task_failures_total", task="math.sqrt") == 2
    assert of(figures, "portal_task_queue_depth", queue="builds") == 1
    assert of(figures, "portal_task_queue_depth", queue="control") == 0
