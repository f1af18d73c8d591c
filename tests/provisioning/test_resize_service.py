"""Resizing a tier on libvirt's test driver: live or at the next start, quota and host room, giving back."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from portal import errors
from portal.models import AuditEvent
from provisioning.drivers import open_driver
from provisioning.models import Host, Instance, Operation, Stack, StackEvent, Status
from provisioning.quotas import project_usage
from provisioning.services import power, templates
from provisioning.services.launch import stack_launch, stack_launch_template
from provisioning.services.resize import stack_resize


def launch(user, project, version, name="demo"):
    return stack_launch(user=user, project=project, name=name, appliance_version=version, lease_seconds=3600)


@pytest.fixture
def web(member, project, test_host, ready_version, step):
    """A running one-tier stack (tier ``web``, one instance), launched by the member."""
    stack = step(lambda: launch(member, project, ready_version))
    stack.refresh_from_db()
    assert stack.status == Status.RUNNING, stack.status_reason
    return stack


def resize(step, user, stack, **size):
    return step(lambda: stack_resize(user=user, stack=stack, tier="web", **size))


def domain_size(instance):
    with open_driver("test:///default") as driver:
        return driver.domain_size(name=instance.domain_name)


def used(project, key):
    return next(line.used for line in project_usage(project) if line.key == key)


def test_vcpus_grow_live_up_to_the_domains_room(web, member, step):
    instance = web.instances.get()
    assert domain_size(instance).max_vcpus == 16  # the host's 16 CPUs: defined with room to grow
    host_before = Host.objects.get().allocated_vcpus

    operation = resize(step, member, web, vcpus=3)

    operation.refresh_from_db()
    assert operation.kind == Operation.Kind.RESIZE
    assert operation.status == Operation.State.SUCCEEDED, operation.detail
    assert operation.progress_percent == 100
    assert operation.created_by == member
    assert operation.request == {"tier": "web", "vcpus": 3}
    assert operation.result["applied"] == "live"
    assert operation.result["instances"][0]["vcpus"] == {"from": 1, "to": 3, "applied": "live"}
    assert domain_size(instance).vcpus == 3
    instance.refresh_from_db()
    assert (instance.vcpus, instance.restart_needed) == (3, False)
    assert Host.objects.get().allocated_vcpus == host_before + 2
    web.refresh_from_db()
    assert web.status == Status.RUNNING
    events = StackEvent.objects.filter(stack=web, message__startswith="resize")
    assert {event.actor for event in events} == {member}
    assert AuditEvent.objects.filter(action="stack.resize", actor=member, detail__tier="web").exists()


def test_vcpus_beyond_the_room_and_more_memory_wait_for_a_restart(web, member, project, step):
    project.max_vcpus = 100
    project.save()
    instance = web.instances.get()

    operation = resize(step, member, web, vcpus=20, memory_mib=512)

    operation.refresh_from_db()
    assert operation.status == Operation.State.SUCCEEDED, operation.detail
    assert operation.result["applied"] == "at_restart"
    assert operation.result["restart_needed"] == [instance.name]
    changes = operation.result["instances"][0]
    assert changes["vcpus"]["applied"] == changes["memory_mib"]["applied"] == "at_restart"
    now = domain_size(instance)
    assert (now.vcpus, now.memory_mib) == (1, 128)  # the running guest keeps its size
    instance.refresh_from_db()
    assert instance.restart_needed
    assert (instance.vcpus, instance.memory_mib) == (20, 512)
    step(lambda: power.stack_power(user=member, stack=web, action="poweroff"))
    defined = domain_size(instance)
    assert (defined.vcpus, defined.max_vcpus, defined.memory_mib) == (20, 20, 512)  # the next start's


def test_less_memory_applies_live_when_the_balloon_gets_there(web, member, project, step):
    resize(step, member, web, memory_mib=1024)
    instance = web.instances.get()
    step(lambda: power.stack_power(user=member, stack=web, action="reboot"))
    Instance.objects.filter(pk=instance.pk).update(restart_needed=False)
    used_before = used(project, "memory_mib")

    operation = resize(step, member, web, memory_mib=256)

    operation.refresh_from_db()
    assert operation.result["instances"][0]["memory_mib"]["applied"] == "live", operation.result
    assert domain_size(instance).memory_mib == 256
    assert used(project, "memory_mib") == used_before - 768  # shrinking gives back at once
    assert Host.objects.get().allocated_memory_mib == Instance.objects.get().memory_mib


def test_a_stopped_stack_gets_everything_in_its_definition(web, member, step):
    step(lambda: power.stack_power(user=member, stack=web, action="poweroff"))
    instance = web.instances.get()

    operation = resize(step, member, web, vcpus=2, memory_mib=256)

    operation.refresh_from_db()
    assert operation.status == Operation.State.SUCCEEDED
    instance.refresh_from_db()
    assert not instance.restart_needed  # its next start is no restart: it starts with the new size
    defined = domain_size(instance)
    assert (defined.running, defined.vcpus, defined.memory_mib) == (False, 2, 256)
    web.refresh_from_db()
    assert web.status == Status.STOPPED


def test_a_disk_the_host_cannot_grow_is_given_back(web, member, project, step):
    disk_before = used(project, "disk_gib")

    operation = resize(step, member, web, disk_gib=5)

    operation.refresh_from_db()
    assert operation.status == Operation.State.FAILED
    assert operation.result["instances"][0]["not_done"] == [
        {"what": "disk_gib", "reason": "the host cannot grow disks"}
    ]
    assert Instance.objects.get().disk_gib == 1
    assert used(project, "disk_gib") == disk_before
    assert Host.objects.get().allocated_disk_gib == 1
    web.refresh_from_db()
    assert web.status == Status.RUNNING
    assert StackEvent.objects.filter(stack=web, is_error=True, message__contains="cannot grow disks").exists()


def test_a_disk_never_shrinks_and_memory_keeps_the_appliances_least(web, member):
    with pytest.raises(errors.Invalid) as refused:
        stack_resize(user=member, stack=web, tier="web", memory_mib=64)
    assert "needs at least 128 MiB" in refused.value.fields["memory_mib"][0]
    Instance.objects.filter(stack=web).update(disk_gib=4)
    with pytest.raises(errors.Invalid) as refused:
        stack_resize(user=member, stack=web, tier="web", disk_gib=2)
    assert "disks only grow" in refused.value.fields["disk_gib"][0]
    assert not Operation.objects.exists()


def test_unknown_tier_and_no_change_are_refused(web, member):
    with pytest.raises(errors.Invalid, match="no tier 'db'"):
        stack_resize(user=member, stack=web, tier="db", vcpus=2)
    with pytest.raises(errors.Invalid, match="already has that size"):
        stack_resize(user=member, stack=web, tier="web", vcpus=1)
    with pytest.raises(errors.Invalid, match="say what to change"):
        stack_resize(user=member, stack=web, tier="web")


def test_quota_refusal_names_the_quota_and_the_figures(web, member, project):
    project.max_vcpus = 2
    project.save()
    with pytest.raises(errors.QuotaExceeded) as refused:
        stack_resize(user=member, stack=web, tier="web", vcpus=4)
    assert "may hold 2 vCPUs, 1 are in use and resizing tier 'web' needs 3" in refused.value.detail
    assert Instance.objects.get().vcpus == 1
    web.refresh_from_db()
    assert web.status == Status.RUNNING


def test_capacity_refusal_says_a_move_is_an_operators_action(web, member):
    Host.objects.update(cpus=1, cpu_overcommit=2)  # room for 2 vCPUs; the stack holds 1
    with pytest.raises(errors.NoCapacity) as refused:
        stack_resize(user=member, stack=web, tier="web", vcpus=4)
    assert "has no room for 3 more vCPUs (it holds 1 of 2)" in refused.value.detail
    assert "operator's action" in refused.value.detail
    assert Host.objects.get().allocated_vcpus == 1


def test_a_resizing_stack_is_busy(web, member):
    operation = stack_resize(user=member, stack=web, tier="web", vcpus=2)  # its job is not run
    web.refresh_from_db()
    assert web.status == Status.RESIZING
    assert operation.status == Operation.State.PENDING
    with pytest.raises(errors.WrongState, match="resizing"):
        power.stack_power(user=member, stack=web, action="reboot")
    with pytest.raises(errors.WrongState):
        stack_resize(user=member, stack=web, tier="web", vcpus=3)


def test_owner_may_resize_viewer_may_not_outsider_sees_nothing(web, owner, viewer, outsider, step):
    assert resize(step, owner, web, vcpus=2).stack_id == web.pk
    with pytest.raises(errors.PermissionDenied):
        stack_resize(user=viewer, stack=web, tier="web", vcpus=3)
    with pytest.raises(errors.NotFound):
        stack_resize(user=outsider, stack=web, tier="web", vcpus=3)


@pytest.mark.django_db(transaction=True)
def test_parallel_resizes_cannot_pass_the_quota(member, project, test_host, ready_version):
    """Four stacks of 1 vCPU grow to 3 at once, with room in the quota for two of them: two win."""
    stacks = [launch(member, project, ready_version, name=f"s{index}") for index in range(4)]
    project.max_vcpus = 4 + 2 * 2
    project.save()
    outcomes: list[str] = []
    barrier = threading.Barrier(len(stacks))

    def attempt(stack: Stack) -> None:
        try:
            barrier.wait()
            stack_resize(user=member, stack=stack, tier="web", vcpus=3)
            outcomes.append("ok")
        except errors.QuotaExceeded:
            outcomes.append("quota")
        finally:
            connection.close()

    threads = [threading.Thread(target=attempt, args=(stack,)) for stack in stacks]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["ok", "ok", "quota", "quota"]
    assert used(project, "vcpus") == 8
    assert Host.objects.get().allocated_vcpus == 8


def test_a_host_that_does_not_answer_gets_the_claim_given_back(web, member, project, step):
    Host.objects.update(uri="qemu+tcp://127.0.0.1:1/system")  # a closed loopback port

    operation = resize(step, member, web, vcpus=2, memory_mib=256)

    operation.refresh_from_db()
    assert operation.status == Operation.State.FAILED
    (refused,) = operation.result["instances"]
    assert {item["what"] for item in refused["not_done"]} == {"vcpus", "memory_mib"}
    instance = Instance.objects.get()
    assert (instance.vcpus, instance.memory_mib, instance.restart_needed) == (1, 128, False)
    host = Host.objects.get()
    assert (host.allocated_vcpus, host.allocated_memory_mib) == (1, 128)
    assert used(project, "vcpus") == 1
    web.refresh_from_db()
    assert web.status == Status.RUNNING
    assert StackEvent.objects.filter(stack=web, is_error=True, message__startswith="resize: ").exists()


def test_every_instance_of_the_tier_is_resized(member, project, test_host, ready_version, step):
    source = f"tiers:\n  - name: web\n    appliance: {ready_version.appliance.identifier}\n    count: 2\n"
    template = templates.template_create(user=member, project=project, name="pair", source=source, description="")
    stack = step(
        lambda: stack_launch_template(user=member, project=project, name="pair", template=template, lease_seconds=3600)
    )
    assert stack.instances.count() == 2

    operation = resize(step, member, stack, vcpus=2)

    operation.refresh_from_db()
    assert operation.status == Operation.State.SUCCEEDED, operation.detail
    assert [item["vcpus"]["applied"] for item in operation.result["instances"]] == ["live", "live"]
    for instance in stack.instances.all():
        assert domain_size(instance).vcpus == instance.vcpus == 2
    assert Host.objects.get().allocated_vcpus == 4
