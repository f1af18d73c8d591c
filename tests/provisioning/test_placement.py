"""Placement: filters and weighers. A stack is placed as a group (every tier on one host).

Claims with host generations and parallel launches are in ``test_placement_claims``.
"""

from __future__ import annotations

import pytest

from portal import errors
from provisioning import allocations, placement
from provisioning.demand import InstanceDemand, StackDemand
from provisioning.models import Host, Instance, Stack, Status
from provisioning.placement import Strategy, claim_host, host_loads
from tests.factories import HostFactory
from tests.provisioning.placement_support import GIB, THREE_TIER, demand, occupy, room_for

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
    host = HostFactory(**room_for(1))
    place(name="first")
    # Statuses changed by hand in the database: the host's recount (the reconciler's) is what sees them.
    Instance.objects.update(status=Status.ERROR)
    assert not allocations.recount(host=host)  # an instance in error still counts
    with pytest.raises(errors.NoCapacity):
        place(name="second")
    Instance.objects.update(status=Status.DELETED)
    assert allocations.recount(host=host)
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
