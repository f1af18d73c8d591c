"""Placement: filters, weighers, claims with host generations, and parallel launches on PostgreSQL.

A stack is placed as a group (every tier on one host). ``launch_stack`` below does what a launch
does about quota and hosts, for a demand of any number of tiers: lock the project, check the quota,
claim a host, write the instance rows that are the claim.
"""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.db.models import F
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from portal import errors
from portal.models import Project
from provisioning import placement
from provisioning.demand import InstanceDemand, StackDemand
from provisioning.models import Host, Instance, Stack, Status
from provisioning.placement import Strategy, claim_host, host_loads
from provisioning.quotas import check_stack_quota
from tests.factories import ApplianceVersionFactory, HostFactory, ProjectFactory

GIB = 1024**3


def demand(*sizes: tuple[int, int, int], arch: str = "x86_64", domain_type: str | None = None) -> StackDemand:
    """A stack of one tier per (vCPUs, MiB, GiB) size."""
    return StackDemand(
        instances=tuple(
            InstanceDemand(tier=f"t{n}", vcpus=v, memory_mib=m, disk_gib=d, arch=arch, domain_type=domain_type)
            for n, (v, m, d) in enumerate(sizes)
        ),
        lease_seconds=3600,
    )


THREE_TIER = demand((1, 256, 2), (1, 256, 2), (2, 512, 4))  # 4 vCPU, 1024 MiB, 8 GiB


def launch_stack(project: Project, wanted: StackDemand, *, version, name: str = "s", strategy=None) -> Stack:
    with transaction.atomic():
        locked = Project.objects.select_for_update().get(pk=project.pk)
        check_stack_quota(locked, wanted)
        host = claim_host(wanted, strategy=strategy)
        stack = Stack.objects.create(
            project=locked, name=name, expires_at=timezone.now() + timedelta(seconds=wanted.lease_seconds)
        )
        Instance.objects.bulk_create(
            Instance(
                stack=stack,
                name=f"{name}-{item.tier}",
                role=item.tier,
                appliance_version=version,
                host=host,
                vcpus=item.vcpus,
                memory_mib=item.memory_mib,
                disk_gib=item.disk_gib,
            )
            for item in wanted.instances
        )
    return stack


def host_of(stack: Stack) -> str:
    (name,) = set(stack.instances.values_list("host__name", flat=True))  # every tier on one host
    return name


def occupy(host: Host, project: Project, version, *sizes: tuple[int, int], name: str = "held") -> None:
    """A stack already on ``host`` with one instance per (vCPUs, MiB) size."""
    stack = Stack.objects.create(project=project, name=name, expires_at=timezone.now() + timedelta(hours=1))
    for n, (vcpus, memory_mib) in enumerate(sizes):
        Instance.objects.create(
            stack=stack,
            name=f"{name}-{n}",
            role="r",
            appliance_version=version,
            host=host,
            vcpus=vcpus,
            memory_mib=memory_mib,
        )


def room_for(stacks: int, wanted: StackDemand = THREE_TIER, **fields) -> dict:
    """Host fields giving room for exactly ``stacks`` stacks of ``wanted`` (RAM is what runs out)."""
    return {
        "cpus": 64,
        "cpu_overcommit": 1,
        "memory_mib": 512 + stacks * wanted.memory_mib,
        **fields,
    }


@pytest.fixture
def version(db):
    return ApplianceVersionFactory()


@pytest.fixture
def roomy_project(db):
    return ProjectFactory(
        name="roomy", max_stacks=1000, max_instances=1000, max_vcpus=1000, max_memory_mib=10**6, max_disk_gib=10**6
    )


@pytest.fixture
def place(roomy_project, version):
    """``place(demand, name=..., strategy=...)`` launches a stack of ``demand`` and says which host took it."""

    def launch(wanted: StackDemand = THREE_TIER, *, name: str = "s", strategy=None) -> str:
        return host_of(launch_stack(roomy_project, wanted, version=version, name=name, strategy=strategy))

    return launch


# Refusals first: each says why no host would do.


@pytest.mark.django_db(transaction=True)
def test_a_claim_outside_a_transaction_is_refused():
    HostFactory()
    with pytest.raises(RuntimeError, match="inside the launch transaction"):
        claim_host(THREE_TIER)


def test_no_enabled_healthy_host(place):
    HostFactory(name="down", healthy=False)
    HostFactory(name="off", uri="test:///off", enabled=False)
    with pytest.raises(errors.NoCapacity, match="no host is enabled and healthy; ask an operator"):
        place()


def test_only_draining_hosts(place):
    HostFactory(name="leaving", draining=True)
    with pytest.raises(errors.NoCapacity, match="every enabled and healthy host is draining"):
        place()


def test_no_host_for_the_architecture(place):
    HostFactory(guest_arches="x86_64,i686")
    with pytest.raises(errors.NoCapacity, match="no enabled and healthy host runs aarch64 guests"):
        place(demand((1, 128, 0), arch="aarch64"))


@pytest.mark.parametrize("arches", ["x86-64", "x86_64_v2", "ax86_64", "i686,x86_64x"])
def test_an_architecture_matches_whole_items_only(place, arches):
    # "_" is a LIKE wildcard: "x86-64" must not pass for "x86_64".
    HostFactory(guest_arches=arches)
    with pytest.raises(errors.NoCapacity, match="runs x86_64 guests"):
        place(demand((1, 128, 0)))


def test_tiers_of_two_architectures_need_a_host_that_runs_both(place):
    HostFactory(name="intel", guest_arches="x86_64")
    HostFactory(name="arm", uri="test:///arm", guest_arches="aarch64")
    mixed = StackDemand(
        instances=(
            InstanceDemand(tier="web", vcpus=1, memory_mib=128, disk_gib=0, arch="x86_64"),
            InstanceDemand(tier="db", vcpus=1, memory_mib=128, disk_gib=0, arch="aarch64"),
        ),
        lease_seconds=600,
    )
    with pytest.raises(errors.NoCapacity, match="runs aarch64 and x86_64 guests together"):
        place(mixed)
    HostFactory(name="both", uri="test:///both", guest_arches="aarch64,x86_64,i686")
    assert place(mixed) == "both"


def test_domain_type_is_a_filter_when_a_tier_asks_for_one(place):
    HostFactory(name="tcg", domain_type=Host.DomainType.QEMU)
    with pytest.raises(errors.NoCapacity, match="no enabled and healthy host runs kvm domains"):
        place(demand((1, 128, 0), domain_type="kvm"))
    HostFactory(name="metal", uri="test:///metal", domain_type=Host.DomainType.KVM)
    assert place(demand((1, 128, 0), domain_type="kvm")) == "metal"
    assert place(demand((1, 128, 0))) in {"tcg", "metal"}  # no preference: any host


def test_tiers_asking_for_two_domain_types_cannot_share_a_host(place):
    HostFactory()
    split = StackDemand(
        instances=(
            InstanceDemand(tier="a", vcpus=1, memory_mib=128, disk_gib=0, domain_type="kvm"),
            InstanceDemand(tier="b", vcpus=1, memory_mib=128, disk_gib=0, domain_type="qemu"),
        ),
        lease_seconds=600,
    )
    with pytest.raises(errors.NoCapacity, match=r"different domain types \(kvm, qemu\)"):
        place(split)


def test_a_stack_larger_than_any_empty_host(place):
    HostFactory(**room_for(1))
    with pytest.raises(
        errors.NoCapacity,
        match="no host is large enough for 8 vCPU and 2048 MiB of memory plus 16 GiB of disk, even empty",
    ):
        place(demand((4, 1024, 8), (4, 1024, 8)))


def test_full_hosts_say_so_and_nothing_is_written(place):
    HostFactory(**room_for(1))
    place(name="first")
    with pytest.raises(
        errors.NoCapacity, match="no host has room for 4 vCPU and 1024 MiB of memory plus 8 GiB of disk right now"
    ):
        place(name="second")
    assert Stack.objects.count() == 1


# Filters.


@pytest.mark.parametrize("state", [{"enabled": False}, {"healthy": False}, {"draining": True}])
def test_hosts_that_may_not_take_stacks_are_skipped(place, state):
    HostFactory(name="unusable", **state, **room_for(10))
    HostFactory(name="usable", uri="test:///usable", **room_for(1))
    assert place() == "usable"


def test_vcpus_count_with_the_allocation_ratio(place):
    HostFactory(name="two-cpus", cpus=2, cpu_overcommit="1.5", memory_mib=65536)  # 3 vCPUs to hand out
    assert place(demand((3, 128, 0))) == "two-cpus"
    with pytest.raises(errors.NoCapacity, match="no host has room for 1 vCPU and 128 MiB"):
        place(demand((1, 128, 0)))


def test_memory_counts_after_the_reserve_and_is_not_overcommitted_by_default(place):
    HostFactory(cpus=64, memory_mib=512 + 1024)  # 1024 MiB to hand out
    place(demand((1, 512, 0)))
    place(demand((1, 512, 0)))
    with pytest.raises(errors.NoCapacity, match="1 vCPU and 1 MiB"):
        place(demand((1, 1, 0)))
    Host.objects.update(memory_overcommit="1.5")  # now 1536 MiB
    place(demand((1, 512, 0)))


def test_disk_counts_against_the_pool_with_its_ratio(place):
    HostFactory(pool_capacity_bytes=10 * GIB)
    place(demand((1, 128, 6)))
    with pytest.raises(errors.NoCapacity, match="plus 6 GiB of disk"):
        place(demand((1, 128, 6)))
    Host.objects.update(disk_overcommit=2)  # thin overlays: 20 GiB may be promised
    place(demand((1, 128, 6)))


def test_a_host_whose_pool_size_is_unknown_is_not_judged_on_disk(place):
    HostFactory(pool_capacity_bytes=0)
    assert place(demand((1, 128, 10_000)))


def test_deleted_instances_free_their_room_and_failed_ones_keep_it(place):
    HostFactory(**room_for(1))
    place(name="first")
    Instance.objects.update(status=Status.ERROR)
    with pytest.raises(errors.NoCapacity):
        place(name="second")
    Instance.objects.update(status=Status.DELETED)
    place(name="third")


# Weighers.


def test_spread_takes_the_host_left_with_the_largest_share_of_ram_free(place):
    HostFactory(name="small", **room_for(2))
    HostFactory(name="big", uri="test:///big", **room_for(4))
    assert place(name="a") == "big"  # with the stack on it: big 3/4 free, small 1/2
    assert place(name="b") == "small"  # both 1/2: small holds fewer instances
    assert place(name="c") == "big"  # small would be left with nothing free, big with 1/2
    assert place(name="d") == "big"  # small 0, big 1/4
    assert [(load.host.name, load.instances) for load in host_loads()] == [("big", 9), ("small", 3)]


def test_spread_breaks_ties_by_fewer_instances_then_more_free_vcpus(place, roomy_project, version):
    a = HostFactory(name="a", cpus=8, cpu_overcommit=1, memory_mib=512 + 4096)
    b = HostFactory(name="b", uri="test:///b", cpus=8, cpu_overcommit=1, memory_mib=512 + 4096)
    occupy(a, roomy_project, version, (2, 1024))
    occupy(b, roomy_project, version, (1, 512), (1, 512))  # the same RAM, one more instance
    assert place(demand((1, 128, 0)), name="x") == "a"
    Instance.objects.all().delete()
    occupy(a, roomy_project, version, (4, 1024))
    occupy(b, roomy_project, version, (1, 1024))  # the same RAM and count, more vCPUs free
    assert place(demand((1, 128, 0)), name="y") == "b"


def test_pack_fills_the_fullest_host_that_fits_first(place):
    HostFactory(name="small", **room_for(2))
    HostFactory(name="big", uri="test:///big", **room_for(3))
    placed = [place(name=f"p{n}", strategy=Strategy.PACK) for n in range(5)]
    assert placed == ["small", "small", "big", "big", "big"]


def test_the_deployment_setting_chooses_spread_or_pack(place, settings):
    HostFactory(name="one", **room_for(4))
    HostFactory(name="two", uri="test:///two", **room_for(4))
    settings.PLACEMENT = "pack"
    assert [place(name=f"k{n}") for n in range(3)] == ["one", "one", "one"]
    settings.PLACEMENT = "spread"
    assert [place(name=f"s{n}") for n in range(2)] == ["two", "two"]


def test_spread_samples_a_large_cloud_and_still_finds_the_last_host_with_room(
    place, roomy_project, version, monkeypatch
):
    # Many hosts, all full but one: a sample of one almost always misses it; then every host is read.
    monkeypatch.setattr(placement, "SAMPLE", 1)
    for n in range(30):
        occupy(
            HostFactory(name=f"full-{n:02}", uri=f"test:///full-{n}", **room_for(1)), roomy_project, version, (1, 1024)
        )
    HostFactory(name="last", uri="test:///last", **room_for(1))
    assert place() == "last"


def test_spread_reads_a_window_of_hosts_from_a_random_start_wrapping_round(place, roomy_project, version, monkeypatch):
    hosts = [HostFactory(name=f"h{n}", uri=f"test:///h{n}", **room_for(4)) for n in range(5)]
    for host in hosts[1:]:
        occupy(host, roomy_project, version, (1, 1024))  # h0 is the emptiest of all
    Host.objects.filter(name="h3").update(draining=True)
    monkeypatch.setattr(placement, "SAMPLE", 2)
    first = hosts[0].pk
    monkeypatch.setattr(placement.random, "randrange", lambda _: 4)  # the window starts at h4 and wraps to h0
    assert place(name="wrapped") == "h0"
    monkeypatch.setattr(placement.random, "randrange", lambda _: 2 + 5 * first)  # h2, then h4: h3 is drained
    assert place(name="middle") == "h2"  # both hold as much: the older one; h0 is not in this window


# Claims.


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


def _in_parallel(count: int, attempt) -> Counter:
    """Run ``attempt(index)`` in ``count`` threads at once (each its own connection); count the outcomes."""
    outcomes: Counter = Counter()
    barrier = threading.Barrier(count)

    def run(index: int) -> None:
        try:
            barrier.wait()
            outcomes[attempt(index)] += 1
        except errors.PortalError as exc:
            outcomes[exc.code] += 1
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


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

    assert _in_parallel(12, attempt) == Counter({"a": 2, "b": 2, "c": 2, "no_capacity": 6})
    for load in host_loads():
        assert load.memory_mib == 2 * THREE_TIER.memory_mib <= load.memory_capacity_mib
        assert load.instances == 6
    assert Stack.objects.count() == 6
    assert Host.objects.filter(generation=2).count() == 3  # one claim per stack placed, no more
