"""A real demo-web stack's endpoint is offered as ready only once its guest serves the page.

The stack turns "running" as soon as its domain started; the guest then boots for seconds while
QEMU already accepts connections on the published port. The worker's watch marks the port ready
when the guest answers. Read the page over and over from the moment the stack runs: no read that
started after ``ready_at`` may fail, and ``ready_at`` must follow the first successful read closely.
"""

from __future__ import annotations

import time
import urllib.request
from dataclasses import dataclass
from datetime import datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from provisioning.models import PublishedPort, Stack, StackEvent, Status
from provisioning.services import lifecycle, power
from provisioning.services.launch import stack_launch
from tests.polling import wait_for

pytestmark = pytest.mark.e2e

# The watch pauses at most 3 s between tries and a try waits at most 2 s per step.
PROMPT_SECONDS = 8.0


@dataclass(frozen=True)
class Read:
    started: datetime
    ok: bool


def _read(url: str) -> Read:
    started = timezone.now()
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            ok = "demo-web appliance" in response.read().decode()
    except OSError:
        ok = False
    return Read(started=started, ok=ok)


def _port(stack: Stack) -> PublishedPort:
    return PublishedPort.objects.get(instance__stack=stack)


def test_the_endpoint_is_ready_only_once_the_guest_serves_its_page(client, member, project, demo_catalog):
    version = demo_catalog["demo-web"].versions.newest_first().first()
    stack = stack_launch(user=member, project=project, name="ready", appliance_version=version, lease_seconds=900)

    def running() -> Stack | None:
        stack.refresh_from_db()
        assert stack.status not in (Status.ERROR, Status.DELETED), stack.status_reason
        return stack if stack.status == Status.RUNNING else None

    wait_for(running, timeout=300, interval=0.2, what="the stack running")
    client.force_login(member)
    status_url = reverse("stack-status", args=[stack.pk])
    first_page = client.get(status_url).content.decode()
    if _port(stack).ready_at is None:  # read after the page: the page was written before it was ready
        assert 'data-endpoint-state="starting"' in first_page

    url = _port(stack).url
    reads: list[Read] = []
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        reads.append(_read(url))
        ready_at = _port(stack).ready_at
        if ready_at is not None and any(r.ok for r in reads) and reads[-1].started > ready_at:
            break
        time.sleep(0.2)
    port = _port(stack)
    assert port.ready_at is not None, "the guest served its page but the endpoint never became ready"
    first_ok = next(r for r in reads if r.ok)
    failed_after_ready = [r for r in reads if not r.ok and r.started >= port.ready_at]
    assert failed_after_ready == [], "the endpoint was offered as ready while its page did not answer"
    running_at = stack.running_at
    assert running_at is not None
    # Closely: within the watch's longest pause and a try's wait, stretched by as much as this
    # machine's load stretched the boot itself (no absolute timing on a shared machine).
    boot = (first_ok.started - running_at).total_seconds()
    assert (port.ready_at - first_ok.started).total_seconds() < PROMPT_SECONDS + boot
    failed_before = [r for r in reads if not r.ok]
    print(
        f"\nendpoint readiness: running -> ready {(port.ready_at - running_at).total_seconds():.1f} s; "
        f"running -> first page read {(first_ok.started - running_at).total_seconds():.1f} s; "
        f"reads that failed before: {len(failed_before)} of {len(reads)}"
    )
    events = list(StackEvent.objects.filter(stack=stack).order_by("pk").values_list("message", flat=True))
    answered = [m for m in events if m.endswith("answers on its endpoint")]
    assert len(answered) == 1
    assert events.index(answered[0]) > events.index("running")
    assert 'data-endpoint-state="ready">ready since <time' in client.get(status_url).content.decode()

    # Powered off, the endpoint is no longer ready; the job runs in the worker.
    power.stack_power(user=member, stack=stack, action="poweroff")
    wait_for(lambda: Stack.objects.filter(pk=stack.pk, status=Status.STOPPED).exists(), timeout=120, what="stopped")
    assert _port(stack).ready_at is None

    lifecycle.stack_destroy(user=member, stack=stack)
    wait_for(lambda: Stack.objects.filter(pk=stack.pk, status=Status.DELETED).exists(), timeout=120, what="deleted")
