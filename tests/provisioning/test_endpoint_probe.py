"""A running stack's endpoints are ready only once its guest answers there, and again only after it
answers anew when it stops or restarts. A loopback listener stands in for the guest behind QEMU's
forward: it accepts and closes (the guest not listening yet) until it starts answering."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from provisioning.models import Host, PublishedPort, Stack, StackEvent, Status
from provisioning.services import endpoint_probe, launch, power, shelving
from provisioning.services.endpoint_probe import endpoints_sweep, endpoints_watch, forget_readiness
from tests.migration_steps import run_data_migration
from tests.polling import wait_for
from tests.provisioning.endpoint_guests import FakeGuestPort, StaySilent


@pytest.fixture
def running(member, project, test_host, ready_version, step) -> Stack:
    stack = step(
        lambda: launch.stack_launch(
            user=member, project=project, name="live", appliance_version=ready_version, lease_seconds=600
        )
    )
    stack.refresh_from_db()
    assert stack.status == Status.RUNNING
    return stack


@pytest.fixture
def guest(running):
    """The running stack's one published port, served by a fake guest on loopback."""
    with FakeGuestPort() as fake:
        PublishedPort.objects.filter(instance__stack=running).update(host_port=fake.port)
        yield fake


def _port(stack: Stack) -> PublishedPort:
    return PublishedPort.objects.get(instance__stack=stack)


def _answer_events(stack: Stack) -> list[str]:
    return list(
        StackEvent.objects.filter(stack=stack, message__contains="answers on").values_list("message", flat=True)
    )


def _endpoint_json(api, user, stack: Stack) -> dict:
    response = api(user).get(f"/api/v1/stacks/{stack.pk}/")
    assert response.status_code == 200
    body = response.json()
    (endpoint,) = body["endpoints"]
    (instance,) = body["instances"]
    assert instance["endpoints"] == [endpoint]  # the instance's own view of the same port
    return endpoint


def test_a_port_whose_guest_does_not_answer_stays_not_ready(running, guest, api, member):
    assert endpoints_sweep() == 0
    port = _port(running)
    assert guest.connections == 1  # QEMU accepted the connection, but nothing behind it spoke
    assert port.ready_at is None
    assert port.probed_at is not None
    endpoint = _endpoint_json(api, member, running)
    assert (endpoint["ready"], endpoint["ready_at"]) == (False, None)
    assert _answer_events(running) == []


def test_a_port_that_starts_answering_later_becomes_ready_once(running, guest, api, member):
    assert endpoints_sweep() == 0
    guest.answering = True
    before = timezone.now()
    assert endpoints_sweep() == 1
    port = _port(running)
    assert port.ready_at is not None
    assert port.ready_at >= before
    endpoint = _endpoint_json(api, member, running)
    assert endpoint["ready"] is True
    assert endpoint["ready_at"].replace("Z", "+00:00") == port.ready_at.isoformat()
    assert _answer_events(running) == [f"{running.instances.get().name} answers on its endpoint"]
    seen = guest.connections
    assert endpoints_sweep() == 0  # a ready port is not tried again
    assert guest.connections == seen
    assert len(_answer_events(running)) == 1


def test_the_watch_tries_again_with_pauses_until_the_guest_answers(running, guest):
    started = threading.Event()
    flipped: list = []

    def boot_later():
        started.wait(5)
        time.sleep(1.2)
        flipped.append(timezone.now())
        guest.answering = True

    threading.Thread(target=boot_later, daemon=True).start()
    started.set()
    began = time.monotonic()
    assert endpoints_watch(stack_id=running.pk, seconds=20) == 1
    assert time.monotonic() - began < 20  # it ended when the guest answered, not at its bound
    assert guest.connections >= 2
    assert _port(running).ready_at >= flipped[0]


def test_the_watch_gives_up_at_its_bound(running, guest):
    began = time.monotonic()
    assert endpoints_watch(stack_id=running.pk, seconds=1.5) == 0
    # It gave up: far sooner than a watch's own bound (a loop that never ends would not return).
    assert time.monotonic() - began < endpoint_probe.WATCH_SECONDS / 6
    assert guest.connections >= 2
    assert _port(running).ready_at is None


def test_a_guest_that_stays_silent_is_not_ready(running, guest):
    silent = StaySilent()
    guest.before = silent  # QEMU holds the connection while the guest has no network yet
    try:
        assert endpoints_sweep() == 0
    finally:
        silent.close()
    assert _port(running).ready_at is None


def test_stopping_forgets_readiness_and_a_start_must_answer_anew(running, guest, member, step):
    guest.answering = True
    assert endpoints_sweep() == 1
    step(lambda: power.stack_power(user=member, stack=running, action="poweroff"))
    running.refresh_from_db()
    assert running.status == Status.STOPPED
    port = _port(running)
    assert (port.ready_at, port.probed_at) == (None, None)
    seen = guest.connections
    assert endpoints_sweep() == 0  # a stopped guest is not probed
    assert guest.connections == seen
    # Started again on a simulated host: its watch ends at once (its ports lead nowhere), the sweep probes.
    restarted = timezone.now()
    step(lambda: power.stack_power(user=member, stack=running, action="start"))
    running.refresh_from_db()
    assert running.status == Status.RUNNING
    assert _port(running).ready_at is None
    assert endpoints_sweep() == 1
    assert _port(running).ready_at >= restarted


def test_a_reboot_forgets_readiness(running, guest, member, step):
    guest.answering = True
    assert endpoints_sweep() == 1
    step(lambda: power.stack_power(user=member, stack=running, action="reboot"))
    assert _port(running).ready_at is None


def test_shelving_forgets_readiness(running, guest, member, step):
    guest.answering = True
    assert endpoints_sweep() == 1
    step(lambda: shelving.stack_shelve(user=member, stack=running))
    running.refresh_from_db()
    assert running.status == Status.SHELVED
    assert _port(running).ready_at is None
    assert endpoints_sweep() == 0


@pytest.mark.django_db(transaction=True)
def test_a_stop_during_a_probe_wins_over_its_answer(running, guest):
    """The guest answers, but its instance restarted while the probe waited: that answer is stale."""
    instance = running.instances.get()

    def restarted_meanwhile():
        forget_readiness(instance_ids=[instance.pk])
        connection.close()  # this thread's own connection

    guest.answering = True
    guest.on_connect = restarted_meanwhile
    assert endpoints_sweep() == 0
    assert _port(running).ready_at is None
    guest.on_connect = None
    assert endpoints_sweep() == 1


def test_the_probe_goes_only_to_the_address_the_portal_published(settings, running, guest):
    settings.ENDPOINT_HOST = "127.0.0.2"  # an address: the ports are bound there, so probed there
    assert endpoints_sweep() == 0
    assert guest.connections == 0  # the listener on 127.0.0.1 was never asked
    with FakeGuestPort("127.0.0.2") as elsewhere:
        elsewhere.answering = True
        PublishedPort.objects.filter(instance__stack=running).update(host_port=elsewhere.port)
        assert endpoints_sweep() == 1
        assert elsewhere.connections == 1


def test_a_host_whose_guests_bind_no_ports_is_never_probed(running, guest, test_host):
    Host.objects.filter(pk=test_host.pk).update(guests_bind_host_ports=False)
    guest.answering = True
    assert endpoints_sweep() == 0
    assert guest.connections == 0
    assert _port(running).probed_at is None


def test_the_watch_after_a_start_ends_at_once_on_a_simulated_host(running, guest):
    # test:/// says its guests bind nothing, whatever the row (never refreshed here) holds.
    guest.answering = True
    assert endpoint_probe.endpoints_watch_after_start(stack_id=running.pk) == 0
    assert guest.connections == 0


def test_the_stack_page_says_starting_then_ready_since(client, member, running, guest):
    client.force_login(member)
    url = reverse("stack-detail", args=[running.pk])
    page = client.get(url).content.decode()
    assert 'data-endpoint-state="starting">starting… not answering yet</span>' in page
    assert 'aria-describedby="endpoint-state-1"' in page
    guest.answering = True
    assert endpoints_sweep() == 1
    ready_at = _port(running).ready_at
    part = client.get(reverse("stack-status", args=[running.pk])).content.decode()
    assert f'data-endpoint-state="ready">ready since <time datetime="{ready_at.isoformat()}">' in part
    assert "not answering yet" not in part


def test_a_ready_endpoint_of_a_stopped_stack_is_not_offered_as_ready(api, member, running, guest):
    guest.answering = True
    assert endpoints_sweep() == 1
    Stack.objects.filter(pk=running.pk).update(status=Status.STOPPING)  # a job owns it: not running
    endpoint = _endpoint_json(api, member, running)
    assert (endpoint["ready"], endpoint["ready_at"]) == (False, None)


def test_another_projects_stack_and_its_readiness_stay_hidden(client, api, outsider, running, guest):
    guest.answering = True
    assert endpoints_sweep() == 1
    assert api(outsider).get(f"/api/v1/stacks/{running.pk}/").status_code == 404
    listed = api(outsider).get("/api/v1/stacks/").json()["results"]
    assert running.pk not in [stack["id"] for stack in listed]
    client.force_login(outsider)
    assert client.get(reverse("stack-status", args=[running.pk])).status_code == 404


def test_the_schema_documents_readiness(api, member):
    schema = api(member).get("/api/v1/schema/", {"format": "json"}).json()["components"]["schemas"]
    endpoint = schema["Endpoint"]["properties"]
    assert endpoint["ready"]["type"] == "boolean"
    assert endpoint["ready_at"] == {**endpoint["ready_at"], "type": "string", "format": "date-time", "nullable": True}
    for owner in ("Stack", "Instance"):
        field = schema[owner]["properties"]["endpoints"]
        assert field["items"] == {"$ref": "#/components/schemas/Endpoint"}, owner


def test_the_sweep_runs_every_minute(db):
    from django_q.models import Schedule

    from provisioning import tasks

    Schedule.objects.filter(name="probe-endpoints").delete()
    run_data_migration("provisioning.migrations.0021_probe_endpoints_schedule")
    schedule = Schedule.objects.get(name="probe-endpoints")
    assert (schedule.func, schedule.schedule_type, schedule.minutes) == (
        "provisioning.tasks.probe_endpoints",
        Schedule.MINUTES,
        1,
    )
    assert tasks.probe_endpoints() == 0


@pytest.mark.django_db(transaction=True)
def test_a_second_watch_moves_the_first_ones_end_instead_of_piling_up(running, guest):
    results: list[int] = []

    def first_watch():
        try:
            results.append(endpoints_watch(stack_id=running.pk, seconds=1.0))
        finally:
            connection.close()  # this thread's own connection

    first = threading.Thread(target=first_watch)
    first.start()
    wait_for(lambda: guest.connections >= 1, timeout=10, what="the first watch under way")
    assert endpoints_watch(stack_id=running.pk, seconds=8) == 0  # the guest restarted: one watch goes on
    # It returned without watching itself: the first watch, whose own bound was 1 s, goes on.
    assert first.is_alive()
    time.sleep(2)  # past the first watch's own bound
    guest.answering = True
    first.join(15)
    assert results == [1]
    assert _port(running).ready_at is not None


def test_a_stopped_instance_of_a_running_stack_is_neither_starting_nor_ready(client, member, running, guest, step):
    guest.answering = True
    assert endpoints_sweep() == 1
    instance = running.instances.get()
    step(lambda: power.stack_power(user=member, stack=running, action="poweroff", instance=instance))
    Stack.objects.filter(pk=running.pk).update(status=Status.RUNNING)  # as if another tier still ran
    client.force_login(member)
    part = client.get(reverse("stack-status", args=[running.pk])).content.decode()
    assert 'id="endpoint-1"' in part
    assert "data-endpoint-state" not in part
