"""Placement claims: host generations, stale reads, lock waits, and parallel launches on PostgreSQL."""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from django.db import connection, transaction
from django.db.models import F
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from portal import errors
from provisioning import placement
from provisioning.demand import StackDemand
from provisioning.models import Host, Instance, Stack
from provisioning.placement import Strategy, claim_host, host_loads
from tests.factories import HostFactory, ProjectFactory
from tests.provisioning.placement_support import THREE_TIER, host_of, in_parallel, launch_stack, room_for


def test_a_claim_bumps_the_host_generation(place):
    host = HostFactory(**room_for(2))
    place()
    assert Host.objects.get(pk=host.pk).generation == host.generation + 1


@pytest.mark.parametrize("strategy", list(Strategy))
def test_queries_per_placement_do_not_grow_with_hosts(place, strategy):
    def queries(name: str) -> int:
        with CaptureQueriesContext(connection) as captured:
            place(name=name, strategy=strategy)
        return len(captured)

    for n in range(3):
        HostFactory(name=f"h{n}", uri=f"test:///h{n}", **room_for(50))
    few = queries("few")
    for n in range(3, placement.SAMPLE * 3):
        HostFactory(name=f"h{n}", uri=f"test:///h{n}", **room_for(50))
    assert queries("many") == few


class CompetingLaunch:
    """Another launcher, on its own connection, that claims ``host`` right after our read of the hosts.

    Installed with ``connection.execute_wrapper``: it lets our candidate read run, then makes the
    competing claim (and its instance rows, ``fill`` MiB of them) in its own thread and transaction,
    commits, and lets us go on to claim what we read, which is now stale.
    """

    def __init__(self, host: Host, version, *, fill: int, times: int = 1) -> None:
        self.host, self.version, self.fill, self.left = host, version, fill, times
        # Its own project: ours is locked by our launch, and the rival's stack row must not wait for it.
        self.project = ProjectFactory(name="rival") if fill else None

    def __call__(self, execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        if sql.lstrip().startswith("WITH eligible") and self.left:
            self.left -= 1
            competitor = threading.Thread(target=self.claim)
            competitor.start()
            competitor.join()
        return result

    def claim(self) -> None:
        try:
            with transaction.atomic():
                Host.objects.filter(pk=self.host.pk).update(generation=F("generation") + 1)
                if self.fill:
                    stack = Stack.objects.create(
                        project=self.project, name=f"rival-{self.left}", expires_at=timezone.now()
                    )
                    Instance.objects.create(
                        stack=stack,
                        name="rival",
                        role="r",
                        appliance_version=self.version,
                        host=self.host,
                        vcpus=1,
                        memory_mib=self.fill,
                    )
        finally:
            connection.close()


@pytest.mark.django_db(transaction=True)
def test_a_host_claimed_between_read_and_claim_is_not_overfilled(place, version):
    """The rival fills "best" after we read it as empty: our claim sees the new generation and moves on."""
    best = HostFactory(name="best", **room_for(1, memory_mib=512 + THREE_TIER.memory_mib + 100))
    HostFactory(name="second", uri="test:///second", **room_for(1))
    rival = CompetingLaunch(best, version, fill=THREE_TIER.memory_mib)
    with connection.execute_wrapper(rival):
        assert place() == "second"
    assert rival.left == 0
    assert all(load.fits(StackDemand(instances=(), lease_seconds=0)) for load in host_loads())


@pytest.mark.django_db(transaction=True)
def test_a_stale_read_is_read_again_and_the_host_taken_when_room_is_left(place, version):
    only = HostFactory(name="only", **room_for(2))
    rival = CompetingLaunch(only, version, fill=0)  # a claim that added nothing (it changed its mind)
    with CaptureQueriesContext(connection) as captured, connection.execute_wrapper(rival):
        assert place() == "only"
    reads = [q for q in captured.captured_queries if q["sql"].lstrip().startswith("WITH eligible")]
    assert len(reads) == 2  # the first read went stale, the second claimed
    assert Host.objects.get(pk=only.pk).generation == 2  # the rival's claim and ours


@pytest.mark.django_db(transaction=True)
def test_claims_that_keep_losing_give_up_with_a_clear_error_and_a_usable_transaction(version):
    host = HostFactory(**room_for(5))
    rival = CompetingLaunch(host, version, fill=0, times=placement.ROUNDS * 2)
    with transaction.atomic():
        with connection.execute_wrapper(rival), pytest.raises(errors.NoCapacity, match="try again"):
            claim_host(THREE_TIER)
        assert Host.objects.filter(pk=host.pk).exists()  # the launch transaction still works
    assert rival.left == placement.ROUNDS * 2 - placement.ROUNDS


@pytest.mark.django_db(transaction=True)
def test_a_lock_timeout_while_waiting_for_a_host_leaves_the_launch_transaction_usable():
    host = HostFactory(**room_for(5))
    holding, release = threading.Event(), threading.Event()

    def hold_the_row() -> None:
        try:
            with transaction.atomic():
                Host.objects.select_for_update().get(pk=host.pk)
                holding.set()
                release.wait(10)
        finally:
            connection.close()

    holder = threading.Thread(target=hold_the_row)
    holder.start()
    holding.wait(10)
    try:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL lock_timeout = '50ms'")
            with pytest.raises(errors.NoCapacity, match="try again"):
                claim_host(THREE_TIER)
            assert Host.objects.get(pk=host.pk).generation == 0
    finally:
        release.set()
        holder.join()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("strategy", list(Strategy))
def test_parallel_launches_never_overfill_a_host(version, strategy):
    """Twelve three-tier launches at once onto three hosts with room for two stacks each: six fit.

    Each launch is for a project of its own, so no project lock lines them up: only the host claims do.
    """
    for name in ("a", "b", "c"):
        HostFactory(name=name, uri=f"test:///{name}", **room_for(2))
    projects = [ProjectFactory(name=f"p{n}") for n in range(12)]

    def attempt(n: int) -> str:
        return host_of(launch_stack(projects[n], THREE_TIER, version=version, name=f"p{n}", strategy=strategy))

    assert in_parallel(12, attempt) == Counter({"a": 2, "b": 2, "c": 2, "no_capacity": 6})
    for load in host_loads():
        assert load.memory_mib == 2 * THREE_TIER.memory_mib <= load.memory_capacity_mib
        assert load.instances == 6
    assert Stack.objects.count() == 6
    assert Host.objects.filter(generation=2).count() == 3  # one claim per stack placed, no more
