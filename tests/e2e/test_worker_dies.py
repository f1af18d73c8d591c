"""A worker killed in the middle of a build leaves nothing stuck and nothing unclaimed.

The worker (a real django-q2 cluster) is killed by its process group, once just after the stack
network is made and once after the first tier started; then the watchdog and the reconciler run.
Each instance ends running or failed, and the host holds nothing that no row claims.
"""

from __future__ import annotations

import os
import signal
from datetime import timedelta

import pytest
from django.utils import timezone

from provisioning.drivers import open_driver
from provisioning.models import Host, Stack, Status
from provisioning.services import lifecycle, templates
from provisioning.services.launch import stack_launch_template
from provisioning.services.reconcile import find_leftovers, reconcile_host
from provisioning.services.watchdog import stacks_watchdog
from tests.e2e.conftest import SYSTEM_URI
from tests.polling import wait_for

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize(
    "kill_when",
    [
        pytest.param("network ", id="after-the-network"),
        pytest.param("-db started on", id="after-the-first-tier"),
    ],
)
def test_killing_the_worker_mid_build_ends_cleanly(kill_when, operator, member, project, demo_catalog, worker):
    (classic,) = [t for t in templates.install_shipped_templates(user=operator) if t.name == "classic-three-tier"]
    stack = stack_launch_template(user=member, project=project, name="doomed", template=classic, lease_seconds=900)
    wait_for(
        lambda: stack.events.filter(message__contains=kill_when).exists(),
        timeout=180,
        interval=0.05,
        what=f"the build to reach '{kill_when}'",
    )
    os.killpg(worker.pid, signal.SIGKILL)  # the whole cluster we started, by its process group
    worker.wait(timeout=10)

    # Later, the watchdog finds the build stalled (its clock moved past the task timeout).
    stacks_watchdog(now=timezone.now() + timedelta(hours=2))
    stack.refresh_from_db()
    assert stack.status in (Status.RUNNING, Status.ERROR), stack.status
    assert {i.status for i in stack.instances.all()} <= {Status.RUNNING, Status.ERROR}

    host = Host.objects.get()
    reconcile_host(host=host)
    with open_driver(SYSTEM_URI) as driver:
        assert find_leftovers(driver=driver, host=host) == []
        if stack.status == Status.ERROR:
            ours = {i.domain_name for i in stack.instances.all()}
            assert not ours & {d.name for d in driver.list_domains()}
            assert stack.network.name not in driver.list_networks()

    # Settled either way: the stack can be deleted and leaves nothing.
    lifecycle.stack_destroy(user=member, stack=stack)
    lifecycle.stack_teardown(stack=Stack.objects.get(pk=stack.pk))
    assert Stack.objects.get(pk=stack.pk).status == Status.DELETED
    with open_driver(SYSTEM_URI) as driver:
        assert not {i.domain_name for i in stack.instances.all()} & {d.name for d in driver.list_domains()}
        assert stack.network.name not in driver.list_networks()
