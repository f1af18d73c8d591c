"""Stacks of tiers from templates, on libvirt's test driver: plan, network, config drives, teardown."""

from __future__ import annotations

import ipaddress

import pytest
from django.db.models import Q

from portal import errors
from portal.models import AuditEvent
from provisioning.drivers import open_driver
from provisioning.models import Instance, Stack, StackNetwork, StackTemplate, Status
from provisioning.services import lifecycle, templates
from provisioning.services.config_drives import guest_config
from provisioning.services.launch import stack_launch_template
from tests.factories import ApplianceVersionFactory, FeedFactory

CLASSIC = templates.SHIPPED_TEMPLATES / "classic-three-tier.yaml"


@pytest.fixture
def classic(operator):
    return templates.template_create(user=operator, project=None, name="classic-three-tier", source=CLASSIC.read_text())


def _launch(member, project, template, django_capture_on_commit_callbacks, name="shop"):
    with django_capture_on_commit_callbacks(execute=True):
        stack = stack_launch_template(user=member, project=project, name=name, template=template, lease_seconds=600)
    stack.refresh_from_db()
    return stack


def _host_state() -> tuple[set[str], set[str], set[str]]:
    with open_driver("test:///default") as driver:
        domains = {d.name for d in driver.list_domains()}
        volumes = {v.name for v in driver.list_volumes(pool="default-pool")}
        return domains, volumes, set(driver.list_networks())


def test_classic_three_tier_runs_on_one_private_network(
    member, project, test_host, demo_catalog, classic, django_capture_on_commit_callbacks
):
    stack = _launch(member, project, classic, django_capture_on_commit_callbacks)
    assert stack.status == Status.RUNNING, stack.status_reason
    instances = {instance.role: instance for instance in stack.instances.all()}
    assert {role: i.name for role, i in instances.items()} == {"db": "shop-db", "app": "shop-app", "web": "shop-web"}
    subnet = ipaddress.IPv4Network(stack.network.cidr)
    assert subnet == ipaddress.IPv4Network("10.240.0.0/24")
    assert [instances[role].address for role in ("db", "app", "web")] == ["10.240.0.10", "10.240.0.11", "10.240.0.12"]
    assert {i.host for i in instances.values()} == {test_host}
    # Only web is published; db and app are reachable on the stack network alone.
    assert [(p.instance.role, p.guest_port) for p in stack.instances.get(role="web").published_ports.all()] == [
        ("web", 80)
    ]
    assert not stack.instances.filter(role__in=["db", "app"], published_ports__isnull=False).exists()
    # Started in the template's order.
    started = [e.message.split()[0] for e in stack.events.filter(message__contains=" started on ")]
    assert started == ["shop-db", "shop-app", "shop-web"]
    domains, volumes, networks = _host_state()
    assert {i.domain_name for i in instances.values()} <= domains
    assert {i.config_volume_name for i in instances.values()} <= volumes
    assert stack.network.name in networks


def test_each_guest_learns_its_address_peers_and_what_to_wait_for(
    member, project, test_host, demo_catalog, classic, django_capture_on_commit_callbacks
):
    stack = _launch(member, project, classic, django_capture_on_commit_callbacks)
    peers = list(stack.instances.select_related("stack__network", "appliance_version"))
    by_role = {instance.role: instance for instance in peers}
    web = guest_config(instance=by_role["web"], peers=peers)
    assert (web.hostname, web.tier, web.address, web.prefix_length) == ("shop-web", "web", "10.240.0.12", 24)
    assert web.mac_address == by_role["web"].mac_address
    assert {(p.tier, p.name, p.address) for p in web.peers} == {
        ("db", "shop-db", "10.240.0.10"),
        ("app", "shop-app", "10.240.0.11"),
    }
    assert web.wait_for == ("10.240.0.11:8080",)
    db = guest_config(instance=by_role["db"], peers=peers)
    assert db.settings == {"record": "order 1001: 3 teapots, paid"}
    assert db.wait_for == ()


def test_delete_removes_domains_disks_config_drives_and_the_network(
    member, project, test_host, demo_catalog, classic, django_capture_on_commit_callbacks
):
    stack = _launch(member, project, classic, django_capture_on_commit_callbacks)
    instances = list(stack.instances.all())
    network = stack.network
    with django_capture_on_commit_callbacks(execute=True):
        lifecycle.stack_destroy(user=member, stack=stack)
    stack.refresh_from_db()
    assert stack.status == Status.DELETED
    domains, volumes, networks = _host_state()
    assert not {i.domain_name for i in instances} & domains
    assert not {n for i in instances for n in (i.volume_name, i.config_volume_name)} & volumes
    assert network.name not in networks
    network.refresh_from_db()
    assert network.released_at is not None


def test_subnets_are_handed_out_once_per_host_and_freed_after_delete(
    member, project, test_host, demo_catalog, classic, django_capture_on_commit_callbacks
):
    first = _launch(member, project, classic, django_capture_on_commit_callbacks, name="one")
    second = _launch(member, project, classic, django_capture_on_commit_callbacks, name="two")
    assert (first.network.cidr, second.network.cidr) == ("10.240.0.0/24", "10.240.1.0/24")
    with django_capture_on_commit_callbacks(execute=True):
        lifecycle.stack_destroy(user=member, stack=first)
    third = _launch(member, project, classic, django_capture_on_commit_callbacks, name="three")
    assert third.network.cidr == "10.240.0.0/24"
    assert StackNetwork.objects.filter(released_at__isnull=True).count() == 2


def test_a_template_naming_another_projects_private_appliance_is_refused(
    member, project, other_project, test_host, ready_version, django_capture_on_commit_callbacks
):
    ApplianceVersionFactory(
        appliance__feed=FeedFactory(project=other_project), appliance__identifier="secret", image=ready_version.image
    )
    template = templates.template_create(
        user=member, project=project, name="sneaky", source="tiers: [{name: x, appliance: secret}]"
    )
    with pytest.raises(errors.Invalid, match="no appliance 'secret' in the catalog of project 'alpha'") as refused:
        _launch(member, project, template, django_capture_on_commit_callbacks)
    assert list(refused.value.fields) == ["tiers[0].appliance"]
    assert not Stack.objects.exists()


def test_another_projects_template_cannot_be_launched(
    member, outsider, project, other_project, test_host, demo_catalog, django_capture_on_commit_callbacks
):
    theirs = templates.template_create(user=outsider, project=other_project, name="theirs", source=CLASSIC.read_text())
    with pytest.raises(errors.Invalid, match="no such template in this project"):
        _launch(member, project, theirs, django_capture_on_commit_callbacks)


def test_sizes_below_the_appliance_minimum_and_unknown_flavors_are_refused(
    member, project, test_host, demo_catalog, django_capture_on_commit_callbacks
):
    small = templates.template_create(
        user=member, project=project, name="small", source="tiers: [{name: db, appliance: demo-db, memory_mib: 64}]"
    )
    with pytest.raises(errors.Invalid, match="demo-db needs at least 96 memory mib") as refused:
        _launch(member, project, small, django_capture_on_commit_callbacks)
    assert list(refused.value.fields) == ["tiers[0].memory_mib"]
    flavored = templates.template_create(
        user=member, project=project, name="flavored", source="tiers: [{name: db, appliance: demo-db, flavor: huge}]"
    )
    with pytest.raises(errors.Invalid, match="no flavor 'huge' for project 'alpha'"):
        _launch(member, project, flavored, django_capture_on_commit_callbacks)


def test_a_flavor_sets_the_size_and_the_projects_own_wins(
    member, project, test_host, demo_catalog, django_capture_on_commit_callbacks
):
    from provisioning.models import Flavor

    Flavor.objects.create(project=None, name="medium", vcpus=1, memory_mib=128, disk_gib=1)
    Flavor.objects.create(project=project, name="medium", vcpus=2, memory_mib=192, disk_gib=3)
    template = templates.template_create(
        user=member, project=project, name="sized", source="tiers: [{name: db, appliance: demo-db, flavor: medium}]"
    )
    stack = _launch(member, project, template, django_capture_on_commit_callbacks)
    instance = stack.instances.get()
    assert (instance.vcpus, instance.memory_mib, instance.disk_gib) == (2, 192, 3)


def test_template_writes_follow_roles_and_are_audited(member, viewer, operator, project):
    with pytest.raises(errors.PermissionDenied, match="only operators may write shared templates"):
        templates.template_create(user=member, project=None, name="x", source=CLASSIC.read_text())
    with pytest.raises(errors.PermissionDenied, match="needs the member role"):
        templates.template_create(user=viewer, project=project, name="x", source=CLASSIC.read_text())
    mine = templates.template_create(user=member, project=project, name="mine", source=CLASSIC.read_text())
    with pytest.raises(errors.Invalid, match="already has a template called 'mine'"):
        templates.template_create(user=member, project=project, name="mine", source=CLASSIC.read_text())
    templates.template_update(user=member, template=mine, name="renamed", source="tiers: [{name: a, appliance: b}]")
    mine.refresh_from_db()
    assert (mine.name, [t["name"] for t in mine.document["tiers"]]) == ("renamed", ["a"])
    templates.template_delete(user=member, template=mine)
    assert not StackTemplate.objects.exists()
    actions = list(AuditEvent.objects.filter(actor=member).values_list("action", flat=True).order_by("id"))
    assert actions == ["template.create", "template.update", "template.delete"]


def test_stacks_keep_the_document_they_were_launched_with(
    member, project, test_host, demo_catalog, django_capture_on_commit_callbacks
):
    template = templates.template_create(
        user=member, project=project, name="t", source="tiers: [{name: db, appliance: demo-db}]"
    )
    stack = _launch(member, project, template, django_capture_on_commit_callbacks)
    templates.template_update(
        user=member, template=template, name="t", source="tiers: [{name: x, appliance: demo-web}]"
    )
    templates.template_delete(user=member, template=template)
    stack.refresh_from_db()
    assert stack.template is None
    assert [t["name"] for t in stack.document["tiers"]] == ["db"]
    assert Instance.objects.filter(Q(stack=stack) & Q(role="db")).count() == 1


@pytest.mark.django_db(transaction=True)
def test_fifty_parallel_launches_of_three_tiers_against_ten_instances(
    member, project, test_host, demo_catalog, operator
):
    """Exactly three stacks fit in a quota of ten instances; the 47 refused leave nothing behind."""
    import threading

    from django.db import connection

    from provisioning.models import PublishedPort

    template = templates.template_create(user=operator, project=None, name="classic", source=CLASSIC.read_text())
    project.max_instances, project.max_stacks, project.max_vcpus = 10, 50, 100
    project.save()
    outcomes: list[str] = []
    barrier = threading.Barrier(50)

    def attempt(index: int) -> None:
        try:
            barrier.wait()
            stack_launch_template(user=member, project=project, name=f"burst-{index}", template=template)
            outcomes.append("ok")
        except errors.QuotaExceeded:
            outcomes.append("quota")
        finally:
            connection.close()

    threads = [threading.Thread(target=attempt, args=(index,)) for index in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert (outcomes.count("ok"), outcomes.count("quota")) == (3, 47)
    assert Stack.objects.count() == 3
    assert Instance.objects.count() == 9
    assert StackNetwork.objects.count() == 3
    assert PublishedPort.objects.count() == 3
    assert len(set(StackNetwork.objects.values_list("cidr", flat=True))) == 3


def test_a_live_stack_name_is_taken_in_its_project_until_the_stack_is_deleted(
    member, project, test_host, demo_catalog, classic, django_capture_on_commit_callbacks
):
    first = _launch(member, project, classic, django_capture_on_commit_callbacks, name="shop")
    with pytest.raises(errors.Invalid, match="project 'alpha' already has a stack called 'shop'") as refused:
        _launch(member, project, classic, django_capture_on_commit_callbacks, name="shop")
    assert list(refused.value.fields) == ["name"]
    with django_capture_on_commit_callbacks(execute=True):
        lifecycle.stack_destroy(user=member, stack=first)
    again = _launch(member, project, classic, django_capture_on_commit_callbacks, name="shop")
    assert again.status == Status.RUNNING
