"""The sampler: what a stack held since its last sample, split at midnight UTC, at the prices of the moment."""

from __future__ import annotations

import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django_q.models import Schedule

from provisioning.models import Instance, Stack, Status
from tests.migration_steps import run_data_migration
from tests.usage.conftest import GIB, at
from usage.models import UsageCursor, UsageRecord
from usage.sampler import MAX_SAMPLE_GAP, day_pieces, usage_sample


def record(stack, day: str) -> UsageRecord:
    return UsageRecord.objects.get(kept_stack_id=stack.pk, date=day)


# Bad input and nothing to count first.


def test_a_moment_before_the_last_sample_adds_nothing(prices, make_stack):
    stack = make_stack(created=at("2026-03-01 10:00"), tiers=[(2, 1024, 10, Status.RUNNING)])
    usage_sample(now=at("2026-03-01 10:06"))
    before = record(stack, "2026-03-01")

    assert usage_sample(now=at("2026-03-01 10:03")) == 0  # a clock gone back: no negative usage

    after = record(stack, "2026-03-01")
    assert (after.vcpu_hours, after.cost) == (before.vcpu_hours, before.cost) == (Decimal("0.2"), Decimal("0.26"))
    assert UsageCursor.objects.get(stack=stack).sampled_at == at("2026-03-01 10:06")


def test_the_same_moment_twice_is_counted_once(prices, make_stack):
    stack = make_stack(created=at("2026-03-01 10:00"))
    usage_sample(now=at("2026-03-01 10:06"))
    usage_sample(now=at("2026-03-01 10:06"))
    assert record(stack, "2026-03-01").vcpu_hours == Decimal("0.1")


def test_stacks_without_active_instances_are_not_charged(prices, make_stack):
    make_stack("gone", created=at("2026-03-01 10:00"), tiers=[(4, 4096, 40, Status.DELETED)])
    assert usage_sample(now=at("2026-03-01 10:06")) == 0
    assert not UsageRecord.objects.exists()
    assert not UsageCursor.objects.exists()


def test_a_stack_created_after_the_moment_is_not_charged(prices, make_stack):
    make_stack(created=at("2026-03-01 10:10"))
    usage_sample(now=at("2026-03-01 10:06"))
    assert not UsageRecord.objects.exists()


def test_a_gap_the_sampler_missed_is_charged_at_most_the_cap(prices, make_stack):
    six_vcpus = [(6, 0, 0, Status.RUNNING)]  # 6 vCPUs for the 10 minutes of the cap: 1 vCPU-hour
    assert timedelta(minutes=10) == MAX_SAMPLE_GAP
    old = make_stack("old", created=at("2026-02-20 00:00"), tiers=six_vcpus)  # never sampled: from creation, capped
    sampled = make_stack("sampled", created=at("2026-03-01 09:00"), tiers=six_vcpus)
    usage_sample(now=at("2026-03-01 09:30"))
    usage_sample(now=at("2026-03-01 12:00"))  # the sampler was down for two and a half hours

    assert record(old, "2026-03-01").vcpu_hours == Decimal(2)
    assert record(sampled, "2026-03-01").vcpu_hours == Decimal(2)


# What is counted.


def test_first_sample_counts_from_the_stack_creation(prices, make_stack, member):
    stack = make_stack(created=at("2026-03-01 10:00"), tiers=[(2, 3072, 20, Status.RUNNING)])
    assert usage_sample(now=at("2026-03-01 10:06")) == 1
    row = record(stack, "2026-03-01")
    # 6 minutes = 0.1 hours: 2 vCPUs, 3 GiB, 20 GiB of disk.
    assert (row.vcpu_hours, row.memory_gib_hours, row.disk_gib_hours, row.snapshot_gib_hours) == (
        Decimal("0.2"),
        Decimal("0.3"),
        Decimal("2"),
        Decimal("0"),
    )
    assert row.cost == Decimal("0.2") * 1 + Decimal("0.3") * Decimal("0.5") + Decimal("2") * Decimal("0.01")
    assert (row.project_id, row.stack_id, row.stack_name, row.user, row.username) == (
        stack.project_id,
        stack.pk,
        "web",
        member,
        member.username,
    )
    assert row.updated_at == at("2026-03-01 10:06")


def test_usage_is_split_at_midnight_utc(prices, make_stack):
    stack = make_stack(created=at("2026-03-31 23:50"), tiers=[(2, 1024, 10, Status.RUNNING)])
    usage_sample(now=at("2026-03-31 23:57"))
    usage_sample(now=at("2026-04-01 00:03"))

    march, april = record(stack, "2026-03-31"), record(stack, "2026-04-01")
    # 23:50-23:57 and 23:57-24:00 on the 31st (10 minutes), 00:00-00:03 on the 1st.
    assert march.vcpu_hours == (Decimal(2) * 10 / 60).quantize(Decimal("1e-9"))
    assert april.vcpu_hours == Decimal("0.1")
    assert april.memory_gib_hours == Decimal("0.05")
    assert april.disk_gib_hours == Decimal("0.5")
    assert april.cost == Decimal("0.1") + Decimal("0.05") * Decimal("0.5") + Decimal("0.5") * Decimal("0.01")
    assert UsageRecord.objects.count() == 2


def test_day_pieces_cut_at_each_midnight():
    pieces = list(day_pieces(at("2026-03-30 22:00"), at("2026-04-01 01:00")))
    assert [(day.isoformat(), length) for day, length in pieces] == [
        ("2026-03-30", timedelta(hours=2)),
        ("2026-03-31", timedelta(hours=24)),
        ("2026-04-01", timedelta(hours=1)),
    ]
    assert list(day_pieces(at("2026-03-30 22:00"), at("2026-03-30 22:00"))) == []


def test_a_shelved_stack_is_charged_for_its_disks_only(prices, make_stack):
    stack = make_stack(
        "shelved", created=at("2026-03-01 10:00"), status=Status.SHELVED, tiers=[(4, 8192, 30, Status.SHELVED)]
    )
    usage_sample(now=at("2026-03-01 10:06"))
    row = record(stack, "2026-03-01")
    assert (row.vcpu_hours, row.memory_gib_hours, row.disk_gib_hours) == (Decimal(0), Decimal(0), Decimal(3))
    assert row.cost == Decimal("0.03")


def test_only_the_tiers_not_shelved_hold_vcpus_and_memory(prices, make_stack):
    stack = make_stack(
        created=at("2026-03-01 10:00"),
        tiers=[(1, 1024, 10, Status.RUNNING), (4, 8192, 30, Status.SHELVED), (2, 2048, 5, Status.STOPPED)],
    )
    usage_sample(now=at("2026-03-01 10:06"))
    row = record(stack, "2026-03-01")
    # A stopped instance still holds its vCPUs and memory (it may start at any moment); deleted ones nothing.
    assert (row.vcpu_hours, row.memory_gib_hours, row.disk_gib_hours) == (
        Decimal("0.3"),
        Decimal("0.3"),
        Decimal("4.5"),
    )


def test_snapshot_space_is_charged(prices, make_stack, snapshot):
    stack = make_stack(created=at("2026-03-01 10:00"))
    snapshot(stack, size_bytes=3 * GIB, name="first")
    snapshot(stack, size_bytes=GIB // 2, name="second")
    usage_sample(now=at("2026-03-01 10:06"))
    row = record(stack, "2026-03-01")
    assert row.snapshot_gib_hours == Decimal("0.35")
    # 1 vCPU, 1 GiB of memory and 10 GiB of disk for 0.1 hours, and the snapshots.
    assert row.cost == Decimal("0.1") + Decimal("0.05") + Decimal("0.01") + Decimal("0.00035")


def test_a_changed_price_applies_from_the_next_sample(prices, make_stack):
    stack = make_stack(created=at("2026-03-01 10:00"), tiers=[(1, 0, 0, Status.RUNNING)])
    usage_sample(now=at("2026-03-01 10:06"))
    prices.PRICE_VCPU_HOUR = "3"
    usage_sample(now=at("2026-03-01 10:12"))
    row = record(stack, "2026-03-01")
    assert (row.vcpu_hours, row.cost) == (Decimal("0.2"), Decimal("0.4"))


def test_a_stack_that_ends_gives_up_its_cursor(prices, make_stack):
    stack = make_stack(created=at("2026-03-01 10:00"))
    usage_sample(now=at("2026-03-01 10:06"))
    Instance.objects.filter(stack=stack).update(status=Status.DELETED)
    assert usage_sample(now=at("2026-03-01 10:07")) == 0
    assert not UsageCursor.objects.exists()
    assert record(stack, "2026-03-01").vcpu_hours == Decimal("0.1")


def test_rows_outlive_the_stack_and_its_creator(prices, make_stack, member):
    stack = make_stack("ephemeral", created=at("2026-03-01 10:00"))
    stack_id = stack.pk
    usage_sample(now=at("2026-03-01 10:06"))
    Stack.objects.filter(pk=stack_id).delete()  # instances go with it
    member.delete()

    usage_sample(now=at("2026-03-01 10:07"))
    row = UsageRecord.objects.get(kept_stack_id=stack_id)
    assert (row.stack, row.user, row.stack_name, row.username) == (None, None, "ephemeral", "mateo")
    assert row.vcpu_hours == Decimal("0.1")


def test_the_sampler_is_scheduled_every_minute_on_the_control_cluster(db):
    Schedule.objects.filter(name="sample-usage").delete()
    run_data_migration("usage.migrations.0002_schedule")
    schedule = Schedule.objects.get(name="sample-usage")
    assert (schedule.func, schedule.schedule_type, schedule.minutes, schedule.repeats) == (
        "usage.tasks.sample_usage",
        "I",
        1,
        -1,
    )
    assert schedule.cluster is None  # schedules without a cluster run on the control cluster (portal/task_queues.py)


@pytest.mark.only_on("postgresql", reason="row locks: SQLite takes the database's write lock instead")
def test_parallel_samplers_count_each_moment_once(transactional_db, prices, make_stack):
    stack = make_stack(created=at("2026-03-01 10:00"), tiers=[(6, 0, 0, Status.RUNNING)])  # 0.1 vCPU-hours a minute
    usage_sample(now=at("2026-03-01 10:06"))
    moments = [at(f"2026-03-01 10:{minute:02}") for minute in range(7, 15)]
    start = threading.Barrier(len(moments))
    failures: list[BaseException] = []

    def sample(moment) -> None:
        try:
            start.wait()
            usage_sample(now=moment)
        except BaseException as exc:  # reported by the test's own thread
            failures.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=sample, args=(moment,)) for moment in moments]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    # Whatever order they ran in, 10:00 to 10:14 is counted once: 14 minutes.
    assert record(stack, "2026-03-01").vcpu_hours == Decimal("1.4")
    assert UsageCursor.objects.get(stack=stack).sampled_at == at("2026-03-01 10:14")
