"""The idle sweep: stacks idle for their project's period are warned, then shelved; any busy tier, an
open console or a connection keeps the whole stack busy; missing data never judges a stack.

Stacks are real classic-three-tier launches on libvirt's test driver. The guests' CPU counters and
connections come from ``Guests``, handed to the sweep as its sampler; one test runs the sweep with
its own sampler (the driver) end to end on the test driver. Moments are passed in (``now=``).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from notices.models import Event, Notification
from portal.models import Role
from provisioning import tasks
from provisioning.drivers.base import DomainActivity, HostUnreachable
from provisioning.models import ConsoleTicket, Host, Instance, Stack, StackActivity, Status
from provisioning.services import idle, shelving, templates
from provisioning.services.launch import stack_launch_template
from tests.factories import HostFactory, MembershipFactory
from tests.migration_steps import run_data_migration

CLASSIC = templates.SHIPPED_TEMPLATES / "classic-three-tier.yaml"
IDLE_AFTER = 600  # with the default warning (1800 s) clamped to half of it: warned after 300 s idle
SECOND = 10**9  # ns


class Guests:
    """Stands in for the hosts' answers: each domain's CPU counter and connections, as a test sets them."""

    def __init__(self) -> None:
        self.cpu_ns: dict[str, int] = defaultdict(int)
        self.connections: dict[str, frozenset[str] | None] = {}
        self.recently_closed: dict[str, int] = defaultdict(int)
        self.unreachable: set[str] = set()
        self.missing: set[str] = set()
        self.calls: list[tuple[str, list[str]]] = []

    def __call__(self, host: Host, names: list[str]) -> dict[str, DomainActivity]:
        self.calls.append((host.name, names))
        if host.name in self.unreachable:
            raise HostUnreachable("cannot read domain statistics: the host did not answer")
        return {
            name: DomainActivity(
                cpu_time_ns=self.cpu_ns[name],
                running=True,
                connections=self.connections.get(name, frozenset()),
                recently_closed=self.recently_closed[name],
            )
            for name in names
            if name not in self.missing
        }

    def use(self, instance: Instance, seconds: float) -> None:
        """The guest uses ``seconds`` of CPU time."""
        self.cpu_ns[instance.domain_name] += int(seconds * SECOND)


@pytest.fixture
def guests() -> Guests:
    return Guests()


@pytest.fixture
def classic(operator):
    return templates.template_create(user=operator, project=None, name="classic-three-tier", source=CLASSIC.read_text())


@pytest.fixture
def launch(classic, test_host, demo_catalog, step):
    def run(project, user, name: str) -> Stack:
        stack = step(
            lambda: stack_launch_template(user=user, project=project, name=name, template=classic, lease_seconds=86400)
        )
        stack.refresh_from_db()
        assert stack.status == Status.RUNNING, stack.status_reason
        return stack

    return run


@pytest.fixture
def shop(project, member, launch):
    project.idle_after_seconds = IDLE_AFTER
    project.save()
    return launch(project, member, "shop")


@pytest.fixture
def t0() -> datetime:
    return timezone.now()


@pytest.fixture
def sweep(guests, step):
    """``sweep(now)``: one idle sweep at ``now`` with ``guests`` as the hosts, its shelve jobs run inline."""
    return lambda now: step(lambda: idle.idle_sweep(now=now, sample=guests))


def tier(stack: Stack, role: str) -> Instance:
    return stack.instances.get(role=role)


def status(stack: Stack) -> str:
    return Stack.objects.get(pk=stack.pk).status


def warnings_of(stack: Stack):
    return Notification.objects.filter(stack=stack, event=Event.STACK_IDLE)


def at(t0: datetime, seconds: int) -> datetime:
    return t0 + timedelta(seconds=seconds)


def open_console(instance: Instance, user, *, opened: datetime, closed: datetime | None = None, seen=None):
    return ConsoleTicket.objects.create(
        digest=f"{instance.pk}-{opened.timestamp()}",
        user=user,
        instance=instance,
        kind=ConsoleTicket.Kind.VNC,
        expires_at=opened,
        used_at=opened,
        opened_at=opened,
        closed_at=closed,
        last_seen_at=seen or opened,
    )


# --- bad input and missing data first -------------------------------------------------------------


def test_a_project_without_an_idle_period_is_never_touched(project, member, launch, guests, sweep, t0):
    stack = launch(project, member, "kept")
    assert project.idle_after_seconds is None
    for minutes in range(0, 24 * 60, 60):
        assert sweep(at(t0, minutes * 60)) == 0
    assert status(stack) == Status.RUNNING
    assert not StackActivity.objects.exists()
    assert not warnings_of(stack).exists()
    assert guests.calls == []  # not even sampled


def test_another_projects_idle_period_does_not_touch_this_stack(
    shop, other_project, outsider, launch, guests, sweep, t0
):
    theirs = launch(other_project, outsider, "theirs")
    # Their console is open all along; it must not keep *our* stack busy either.
    open_console(tier(theirs, "web"), outsider, opened=t0, seen=at(t0, 3000))
    for seconds in (0, 300, 600):
        sweep(at(t0, seconds))
    assert status(shop) == Status.SHELVED
    assert status(theirs) == Status.RUNNING
    assert not StackActivity.objects.filter(stack=theirs).exists()
    assert not warnings_of(theirs).exists()
    assert all(tier(theirs, "db").domain_name not in names for _host, names in guests.calls)


def test_a_host_that_does_not_answer_leaves_its_stacks_unjudged(shop, guests, sweep, t0):
    sweep(t0)
    guests.unreachable.add(Host.objects.get(pk=tier(shop, "web").host_id).name)
    for seconds in (300, 600, 900):
        assert sweep(at(t0, seconds)) == 0
    assert status(shop) == Status.RUNNING
    record = StackActivity.objects.get(stack=shop)
    assert (record.sampled_at, record.idle_warned_at) == (t0, None)


def test_a_tier_whose_domain_is_missing_leaves_the_stack_unjudged(shop, guests, sweep, t0):
    sweep(t0)
    guests.missing.add(tier(shop, "app").domain_name)
    assert sweep(at(t0, 900)) == 0
    assert status(shop) == Status.RUNNING
    assert StackActivity.objects.get(stack=shop).sampled_at == t0


def test_a_sweep_whose_moment_is_not_later_changes_nothing(shop, guests, sweep, t0):
    sweep(t0)
    guests.use(tier(shop, "db"), 3600)
    assert sweep(t0) == 0
    assert sweep(at(t0, -60)) == 0
    record = StackActivity.objects.get(stack=shop)
    assert record.cpu_ns[str(tier(shop, "db").pk)] == 0


def test_the_warning_is_at_most_half_the_idle_period(settings):
    settings.IDLE_WARNING_SECONDS = 1800
    assert idle.warning_seconds(600) == 300
    assert idle.warning_seconds(7200) == 1800
    settings.IDLE_WARNING_SECONDS = 0
    assert idle.warning_seconds(600) == 0


# --- warned, then shelved -----------------------------------------------------------------------


def test_an_idle_stack_is_warned_then_shelved_at_the_moment_it_was_told(shop, member, owner, guests, sweep, t0):
    assert sweep(t0) == 0  # the first sample starts the clock
    assert sweep(at(t0, 240)) == 0
    assert not warnings_of(shop).exists()

    assert sweep(at(t0, 300)) == 1
    told = warnings_of(shop)
    assert {n.user for n in told} == {member, owner}
    assert {n.moment for n in told} == {at(t0, 600)}
    assert shop.events.filter(message__startswith="idle: it will be shelved", moment=at(t0, 600)).exists()
    assert sweep(at(t0, 360)) == 0  # warned once
    assert warnings_of(shop).count() == 2

    assert sweep(at(t0, 599)) == 0
    assert status(shop) == Status.RUNNING
    assert sweep(at(t0, 600)) == 1
    shop.refresh_from_db()
    assert shop.status == Status.SHELVED, shop.status_reason
    assert shop.events.filter(message__contains="idle for 10 minutes").exists()
    assert not StackActivity.objects.filter(stack=shop).exists()
    assert sweep(at(t0, 660)) == 0


def test_a_late_sweep_still_gives_the_whole_warning_period(shop, guests, sweep, t0):
    sweep(t0)
    # The workers were down: the first sweep after is well past the idle period.
    assert sweep(at(t0, 3600)) == 1
    assert {n.moment for n in warnings_of(shop)} == {at(t0, 3900)}
    assert sweep(at(t0, 3660)) == 0
    assert status(shop) == Status.RUNNING
    assert sweep(at(t0, 3900)) == 1
    assert status(shop) == Status.SHELVED


def test_without_a_warning_period_it_is_warned_and_shelved_together(shop, settings, sweep, t0):
    settings.IDLE_WARNING_SECONDS = 0
    sweep(t0)
    assert sweep(at(t0, 599)) == 0
    assert sweep(at(t0, 600)) == 1
    assert warnings_of(shop).exists()
    assert status(shop) == Status.SHELVED


def test_activity_after_the_warning_clears_it_and_a_new_one_comes_later(shop, guests, sweep, t0):
    sweep(t0)
    sweep(at(t0, 300))
    assert warnings_of(shop).count() == 1  # the member is the only one who may act

    guests.use(tier(shop, "web"), 30)  # half a vCPU over the minute
    assert sweep(at(t0, 360)) == 0
    record = StackActivity.objects.get(stack=shop)
    assert (record.idle_warned_at, record.last_active_at, record.last_activity) == (None, at(t0, 360), "cpu")
    assert shop.events.filter(message__startswith="in use again").exists()

    assert sweep(at(t0, 600)) == 0  # the moment of the old warning passes
    assert status(shop) == Status.RUNNING
    assert sweep(at(t0, 660)) == 1  # idle again for 300 s: a new warning
    assert {n.moment for n in warnings_of(shop)} == {at(t0, 600), at(t0, 960)}
    assert sweep(at(t0, 960)) == 1
    assert status(shop) == Status.SHELVED


# --- what keeps a stack busy --------------------------------------------------------------------


def test_one_busy_tier_keeps_the_whole_stack_busy(shop, guests, sweep, t0):
    db = tier(shop, "db")
    sweep(t0)
    for minute in range(1, 31):
        guests.use(db, 6)  # 10% of one vCPU, above the 5% threshold; web and app do nothing
        sweep(at(t0, minute * 60))
    assert status(shop) == Status.RUNNING
    assert not warnings_of(shop).exists()
    assert StackActivity.objects.get(stack=shop).last_active_at == at(t0, 1800)


def test_cpu_under_the_threshold_is_idle(shop, guests, sweep, t0, settings):
    sweep(t0)
    for minute in range(1, 6):
        for role in ("db", "app", "web"):
            guests.use(tier(shop, role), 2.9)  # under 5% of one vCPU each, even added up (14.5%)
        sweep(at(t0, minute * 60))
    assert warnings_of(shop).exists()
    settings.IDLE_CPU_PERCENT = 1  # a stricter operator's threshold makes the same use busy
    guests.use(tier(shop, "web"), 2.9)
    sweep(at(t0, 360))
    assert StackActivity.objects.get(stack=shop).idle_warned_at is None


def test_a_guest_started_again_counts_its_new_cpu_time(shop, guests, sweep, t0):
    web = tier(shop, "web")
    guests.use(web, 100)
    sweep(t0)
    guests.cpu_ns[web.domain_name] = 10 * SECOND  # lower than before: it booted again since
    sweep(at(t0, 60))
    assert StackActivity.objects.get(stack=shop).last_active_at == at(t0, 60)


def test_an_open_console_keeps_the_stack_busy(shop, member, guests, sweep, t0):
    sweep(t0)
    console = open_console(tier(shop, "app"), member, opened=at(t0, 10))
    for minute in range(1, 16):
        # The session's heartbeat, as its proxy writes it.
        ConsoleTicket.objects.filter(pk=console.pk).update(last_seen_at=at(t0, minute * 60 - 20))
        sweep(at(t0, minute * 60))
    assert status(shop) == Status.RUNNING
    assert not warnings_of(shop).exists()
    assert StackActivity.objects.get(stack=shop).last_activity == "console"


def test_a_console_closed_since_the_last_sample_counts_once(shop, member, sweep, t0):
    sweep(t0)
    open_console(tier(shop, "web"), member, opened=at(t0, 5), closed=at(t0, 50))
    sweep(at(t0, 60))
    assert StackActivity.objects.get(stack=shop).last_active_at == at(t0, 60)
    sweep(at(t0, 120))
    assert StackActivity.objects.get(stack=shop).last_active_at == at(t0, 60)


def test_a_console_whose_proxy_died_stops_counting(shop, member, sweep, t0):
    sweep(t0)
    # Never closed, last heard of long before the sample.
    open_console(tier(shop, "web"), member, opened=at(t0, -7200), seen=at(t0, -3600))
    sweep(at(t0, 300))
    assert warnings_of(shop).exists()


def test_connections_through_published_ports_keep_the_stack_busy(shop, guests, sweep, t0):
    web = tier(shop, "web").domain_name
    sweep(t0)
    guests.connections[web] = frozenset({"pub0/22"})
    sweep(at(t0, 60))
    assert StackActivity.objects.get(stack=shop).last_activity == "connection"
    guests.connections[web] = frozenset()
    guests.recently_closed[web] = 2  # short requests, closed in the last seconds
    sweep(at(t0, 120))
    assert StackActivity.objects.get(stack=shop).last_active_at == at(t0, 120)


def test_connections_the_host_cannot_tell_judge_by_cpu_and_consoles(shop, guests, sweep, t0):
    for instance in shop.instances.all():
        guests.connections[instance.domain_name] = None
    sweep(t0)
    sweep(at(t0, 300))
    assert warnings_of(shop).exists()


# --- stacks that stop running, many stacks, the real driver ---------------------------------------


def test_a_stack_that_stops_running_loses_its_samples(shop, member, guests, sweep, step, t0):
    sweep(t0)
    sweep(at(t0, 300))
    assert StackActivity.objects.get(stack=shop).idle_warned_at is not None
    step(lambda: shelving.stack_shelve(user=member, stack=shop))
    assert status(shop) == Status.SHELVED
    sweep(at(t0, 360))
    assert not StackActivity.objects.filter(stack=shop).exists()
    step(lambda: shelving.stack_unshelve(user=member, stack=shop))
    assert status(shop) == Status.RUNNING
    # Running again: a new clock, whatever was seen before.
    sweep(at(t0, 900))
    assert sweep(at(t0, 1100)) == 0
    assert StackActivity.objects.get(stack=shop).last_active_at == at(t0, 900)


def test_a_project_that_turns_the_rule_off_forgets_its_stacks(shop, project, sweep, t0):
    sweep(t0)
    project.idle_after_seconds = None
    project.save()
    sweep(at(t0, 300))
    assert not StackActivity.objects.exists()
    assert not warnings_of(shop).exists()


def test_each_host_is_sampled_once_per_sweep(shop, project, member, launch, guests, sweep, t0):
    second = launch(project, member, "second")
    elsewhere = HostFactory(name="elsewhere", uri="test:///elsewhere")
    Instance.objects.filter(stack=second).update(host=elsewhere)
    sweep(t0)
    assert sorted(host for host, _names in guests.calls) == ["elsewhere", "test-host"]
    (names,) = [names for host, names in guests.calls if host == "test-host"]
    assert names == sorted(i.domain_name for i in shop.instances.all())


def test_viewers_are_not_told(shop, project, sweep, t0):
    viewer = MembershipFactory(project=project, role=Role.VIEWER).user
    sweep(t0)
    sweep(at(t0, 300))
    assert warnings_of(shop).exists()
    assert not warnings_of(shop).filter(user=viewer).exists()


def test_the_sweep_with_the_driver_on_the_test_driver(shop, member, step, t0):
    """The default sampler: the test driver's guests use no CPU and cannot tell their connections."""
    step(lambda: idle.idle_sweep(now=t0))
    assert set(StackActivity.objects.get(stack=shop).cpu_ns.values()) == {0}
    assert step(lambda: idle.idle_sweep(now=at(t0, 300))) == 1
    assert step(lambda: idle.idle_sweep(now=at(t0, 600))) == 1
    shop.refresh_from_db()
    assert shop.status == Status.SHELVED, shop.status_reason
    assert shop.shelved_with_memory


def test_the_migration_schedules_the_task_every_minute(shop):
    from django_q.models import Schedule

    Schedule.objects.filter(name="sweep-idle-stacks").delete()
    run_data_migration("provisioning.migrations.0018_sweep_idle_stacks_schedule")
    schedule = Schedule.objects.get(name="sweep-idle-stacks")
    assert (schedule.func, schedule.schedule_type, schedule.minutes) == (
        "provisioning.tasks.sweep_idle_stacks",
        Schedule.MINUTES,
        1,
    )
    assert tasks.sweep_idle_stacks() == 0  # the first sample only starts the clock
    assert StackActivity.objects.filter(stack=shop).exists()
