"""Tearing a stack down: one connection per host, retries while a host does not answer, and a failed
delete that the lease sweep tries again with growing pauses instead of every minute."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from portal.models import AuditEvent, RunEnd
from provisioning import naming
from provisioning.drivers import DomainSpec, HostUnreachable, InvalidRequest, open_driver
from provisioning.models import Instance, Stack, StackNetwork, Status
from provisioning.services import hosts, lifecycle
from provisioning.services.retries import retrying
from tests.factories import HostFactory

UNREACHABLE = "qemu+tcp://127.0.0.1:1/system"


def stack_on(host, project, version, *, instances: int = 1, expired: bool = True) -> Stack:
    """A running stack's rows, its instances on ``host`` (what exists on the host is up to the test)."""
    ends = timezone.now() + (timedelta(seconds=-1) if expired else timedelta(hours=1))
    project.at_run_end = RunEnd.DELETE  # these tests are about deleting: the lease sweep deletes
    project.save(update_fields=["at_run_end"])
    stack = Stack.objects.create(project=project, name="s", expires_at=ends, status=Status.RUNNING)
    for index in range(instances):
        tags = naming.instance_tags(project_id=project.pk, stack_id=stack.pk, instance_id=1000 * stack.pk + index)
        Instance.objects.create(
            stack=stack,
            name=f"web-{index}",
            role="web",
            appliance_version=version,
            host=host,
            vcpus=1,
            memory_mib=64,
            status=Status.RUNNING,
            domain_name=naming.domain_name(instance_id=tags.instance_id, role="web"),
            volume_name=naming.overlay_volume_name(tags),
        )
    return stack


def sweep(capture, *, at) -> int:
    with capture(execute=True):
        return lifecycle.leases_expire(now=at)


# --- a failed delete and the lease sweep -------------------------------------------------------


def test_a_failed_teardown_is_retried_with_growing_pauses_not_every_minute(
    project, version, django_capture_on_commit_callbacks
):
    stack = stack_on(HostFactory(uri=UNREACHABLE), project, version)
    destroys = AuditEvent.objects.filter(action="stack.destroy")
    start = timezone.now()

    assert sweep(django_capture_on_commit_callbacks, at=start) == 1
    assert Stack.objects.get(pk=stack.pk).status == Status.ERROR
    events = stack.events.count()
    # The sweep runs every minute; the failed delete is left alone until its pause is over.
    for minute in (1, 2):
        assert sweep(django_capture_on_commit_callbacks, at=start + timedelta(minutes=minute, seconds=-5)) == 0
    assert (destroys.count(), stack.events.count()) == (1, events)

    first = Stack.objects.get(pk=stack.pk)
    assert first.teardown_failures == 1
    assert abs(first.teardown_retry_at - start - lifecycle.FAILED_TEARDOWN_FIRST_PAUSE) < timedelta(seconds=30)
    failed_again_at = timezone.now()
    assert sweep(django_capture_on_commit_callbacks, at=first.teardown_retry_at) == 1
    second = Stack.objects.get(pk=stack.pk)
    assert (second.status, second.teardown_failures, destroys.count()) == (Status.ERROR, 2, 2)
    pause = second.teardown_retry_at - failed_again_at
    assert abs(pause - 2 * lifecycle.FAILED_TEARDOWN_FIRST_PAUSE) < timedelta(seconds=30)
    assert sweep(django_capture_on_commit_callbacks, at=second.teardown_retry_at - timedelta(seconds=1)) == 0


def test_the_pause_doubles_up_to_its_cap():
    pauses = [lifecycle.failed_teardown_pause(failures) for failures in range(1, 9)]
    first, cap = lifecycle.FAILED_TEARDOWN_FIRST_PAUSE, lifecycle.FAILED_TEARDOWN_MAX_PAUSE
    assert pauses[:3] == [first, 2 * first, 4 * first]
    assert pauses[-1] == cap
    assert pauses == sorted(pauses)
    assert lifecycle.failed_teardown_pause(10**6) == cap


def test_a_person_deleting_again_is_not_held_back_by_the_pause(
    member, project, version, django_capture_on_commit_callbacks
):
    stack = stack_on(HostFactory(uri=UNREACHABLE), project, version)
    sweep(django_capture_on_commit_callbacks, at=timezone.now())
    with django_capture_on_commit_callbacks(execute=True):
        lifecycle.stack_destroy(user=member, stack=Stack.objects.get(pk=stack.pk))
    assert Stack.objects.get(pk=stack.pk).teardown_failures == 2


# --- connections and retries ---------------------------------------------------------------------


@pytest.fixture
def opened(monkeypatch) -> list[str]:
    """The URIs the host services open drivers for, in order."""
    uris: list[str] = []
    real = hosts.open_driver

    def counting(uri: str):
        uris.append(uri)
        return real(uri)

    monkeypatch.setattr(hosts, "open_driver", counting)
    return uris


def test_a_teardown_opens_one_connection_per_host(project, version, test_host, opened):
    stack = stack_on(test_host, project, version, instances=3)
    network = naming.network_name(project_id=project.pk, stack_id=stack.pk)
    with open_driver(test_host.uri) as driver:
        for instance in stack.instances.all():
            tags = naming.instance_tags(project_id=project.pk, stack_id=stack.pk, instance_id=instance.pk)
            driver.define_and_start(
                DomainSpec(
                    name=instance.domain_name,
                    domain_type="qemu",
                    vcpus=1,
                    memory_mib=64,
                    disk_path="/default-pool/x",
                    tags=tags,
                )
            )
        driver.ensure_network(name=network, bridge=naming.bridge_name(network))
    StackNetwork.objects.create(stack=stack, host=test_host, name=network, cidr="10.77.0.0/24")
    Stack.objects.filter(pk=stack.pk).update(status=Status.DELETING)

    assert lifecycle.stack_teardown(stack=stack).status == Status.DELETED
    assert opened == [test_host.uri]
    with open_driver(test_host.uri) as driver:
        assert not {domain.name for domain in driver.list_domains()} & {i.domain_name for i in stack.instances.all()}
        assert network not in driver.list_networks()


class HangingUpHost:
    """A libvirt socket on loopback that hangs up on every connection, counting them."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.connections = 0
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server.bind(str(path))
        self._server.listen(16)
        threading.Thread(target=self._serve, daemon=True).start()

    @property
    def uri(self) -> str:
        return f"qemu+unix:///system?socket={self.path}"

    def _serve(self) -> None:
        while True:
            try:
                client, _address = self._server.accept()
            except OSError:
                return  # closed
            self.connections += 1
            client.close()

    def close(self) -> None:
        self._server.close()


@pytest.fixture
def hanging_up(tmp_path: Path) -> Iterator[HangingUpHost]:
    host = HangingUpHost(tmp_path / "libvirt-sock")
    yield host
    host.close()


def test_a_host_that_does_not_answer_is_tried_again_then_left_for_later(project, version, settings, hanging_up):
    settings.DRIVER_RETRY_DELAYS = (0, 0)
    stack = stack_on(HostFactory(uri=hanging_up.uri), project, version, instances=2)
    Stack.objects.filter(pk=stack.pk).update(status=Status.DELETING)

    failed = lifecycle.stack_teardown(stack=stack)

    assert hanging_up.connections == 3  # the first instance: once, then after each pause; its peer waits no more
    assert failed.status == Status.ERROR
    assert failed.status_reason == (
        "delete failed: web-0: cannot connect to the host: it did not answer; "
        "web-1: cannot connect to the host: it did not answer; delete again to retry"
    )


# --- the retry itself -------------------------------------------------------------------------------


class Flaky:
    """A call that fails with ``errors`` in turn, then answers."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "done"


def test_retrying_pauses_growing_while_the_error_is_retryable():
    slept: list[float] = []
    call = Flaky(HostUnreachable("no answer"), HostUnreachable("no answer"))
    assert retrying(call, what="x", delays=(1, 4), sleep=slept.append) == "done"
    assert (call.calls, slept) == (3, [1, 4])


def test_retrying_gives_up_after_the_last_pause():
    slept: list[float] = []
    call = Flaky(*(HostUnreachable("no answer") for _ in range(5)))
    with pytest.raises(HostUnreachable):
        retrying(call, what="x", delays=(1, 4), sleep=slept.append)
    assert (call.calls, slept) == (3, [1, 4])


def test_retrying_does_not_repeat_what_a_retry_cannot_fix():
    slept: list[float] = []
    call = Flaky(InvalidRequest("refused"), HostUnreachable("no answer", retryable=False))
    with pytest.raises(InvalidRequest):
        retrying(call, what="x", delays=(1, 4), sleep=slept.append)
    with pytest.raises(HostUnreachable):
        retrying(call, what="x", delays=(1, 4), sleep=slept.append)
    assert (call.calls, slept) == (2, [])
