"""An instance's quality of service: its flavor's limits kept at launch, under its host's ceilings; shown
in the admin and the API, and nonsense refused there."""

from __future__ import annotations

import pytest
from django.urls import reverse

from provisioning import qos
from provisioning.api.serializers import FlavorSerializer, HostSerializer
from provisioning.drivers.qos_types import DomainQos
from provisioning.models import Flavor, Host, Instance, Status
from provisioning.qos import domain_qos, flavor_qos
from provisioning.services import templates
from provisioning.services.launch import stack_launch_template
from tests.factories import HostFactory

MIB = 1024 * 1024


def instance_with(kept: dict, pinned: str = "") -> Instance:
    return Instance(qos=kept, pinned_cpus=pinned)


def host_with(**ceilings) -> Host:
    return Host(name="h", **ceilings)


def test_no_limits_and_no_ceilings_limit_nothing():
    assert domain_qos(instance=instance_with({}), host=host_with()) == DomainQos()


def test_the_flavors_limits_pass_through_when_the_host_has_no_ceilings():
    kept = {"disk_write_bytes_sec": 2 * MIB, "net_inbound_kib_sec": 100, "cpu_shares": 512, "dedicated_cpus": True}
    got = domain_qos(instance=instance_with(kept, "4,5"), host=host_with())
    assert got == DomainQos(disk_write_bytes_sec=2 * MIB, net_inbound_kib_sec=100, cpu_shares=512, pinned_cpus=(4, 5))


def test_the_smaller_of_limit_and_ceiling_wins_and_a_ceiling_caps_the_unlimited_direction():
    kept = {"disk_write_bytes_sec": 2 * MIB, "disk_read_iops_sec": 50, "net_inbound_kib_sec": 100}
    host = host_with(disk_bytes_sec_ceiling=1 * MIB, disk_iops_sec_ceiling=400, net_kib_sec_ceiling=80)
    got = domain_qos(instance=instance_with(kept), host=host)
    assert (got.disk_read_bytes_sec, got.disk_write_bytes_sec, got.disk_total_bytes_sec) == (MIB, MIB, None)
    assert (got.disk_read_iops_sec, got.disk_write_iops_sec, got.disk_total_iops_sec) == (50, 400, None)
    assert (got.net_inbound_kib_sec, got.net_outbound_kib_sec) == (80, 80)


def test_a_ceiling_applies_with_no_flavor_limit_as_a_total():
    host = host_with(disk_bytes_sec_ceiling=5 * MIB, disk_iops_sec_ceiling=300, net_kib_sec_ceiling=1000)
    got = domain_qos(instance=instance_with({}), host=host)
    assert got.disk_limits == {"total_bytes_sec": 5 * MIB, "total_iops_sec": 300}
    assert (got.net_inbound_kib_sec, got.net_outbound_kib_sec) == (1000, 1000)


def test_a_zero_ceiling_stored_by_hand_is_no_ceiling_rather_than_a_failed_build():
    assert domain_qos(instance=instance_with({}), host=host_with(disk_bytes_sec_ceiling=0)) == DomainQos()


def test_a_flavor_without_limits_leaves_nothing_to_keep():
    assert flavor_qos(None) == {}
    assert flavor_qos(Flavor(name="plain", vcpus=1, memory_mib=128, disk_gib=1)) == {}


@pytest.mark.parametrize(
    ("text", "cpus"),
    [("", set()), ("2-5", {2, 3, 4, 5}), ("0, 3-4,9", {0, 3, 4, 9}), ("7-7", {7})],
)
def test_cpu_sets_read_as_libvirt_writes_them(text, cpus):
    assert qos.parse_cpu_set(text) == cpus


@pytest.mark.parametrize("text", ["a", "5-2", "1-", "-3", "2;3", "1-99999", "1.5"])
def test_nonsense_cpu_sets_are_refused(text):
    assert qos.cpu_set_problem(text, host_cpus=0)


def test_a_cpu_set_beyond_the_hosts_cpus_is_refused():
    assert "CPU 8" in qos.cpu_set_problem("4-8", host_cpus=8)
    assert qos.cpu_set_problem("4-7", host_cpus=8) is None
    assert qos.cpu_set_problem("4-99", host_cpus=0) is None  # CPUs not read yet: judged at the next refresh


FLAVORED = """
tiers:
  - name: web
    appliance: demo-web
    flavor: limited
    publish: [80]
"""


@pytest.fixture
def limited_template(operator, demo_catalog):
    Flavor.objects.create(
        name="limited", vcpus=1, memory_mib=128, disk_gib=1, disk_write_bytes_sec=2 * MIB, cpu_shares=256
    )
    return templates.template_create(user=operator, project=None, name="limited-web", source=FLAVORED)


def test_a_launch_keeps_its_flavors_limits_whatever_becomes_of_the_flavor(
    member, project, test_host, limited_template, step
):
    stack = step(lambda: stack_launch_template(user=member, project=project, name="lim", template=limited_template))
    stack.refresh_from_db()
    assert stack.status == Status.RUNNING, stack.status_reason
    instance = stack.instances.get()
    assert instance.qos == {"disk_write_bytes_sec": 2 * MIB, "cpu_shares": 256}
    assert instance.pinned_cpus == ""
    Flavor.objects.filter(name="limited").update(disk_write_bytes_sec=MIB)
    instance.refresh_from_db()
    assert domain_qos(instance=instance, host=instance.host).disk_write_bytes_sec == 2 * MIB


def test_a_projects_own_flavor_wins_over_a_shared_one_of_the_same_name(
    member, project, test_host, limited_template, step
):
    Flavor.objects.create(project=project, name="limited", vcpus=1, memory_mib=128, disk_gib=1, cpu_shares=4096)
    stack = step(lambda: stack_launch_template(user=member, project=project, name="own", template=limited_template))
    assert stack.instances.get().qos == {"cpu_shares": 4096}


def test_the_api_shows_an_instances_limits_and_a_hosts_ceilings(api, member, operator, project, test_host, shop):
    Host.objects.filter(pk=test_host.pk).update(dedicated_cpu_set="2-5", disk_bytes_sec_ceiling=10 * MIB)
    Instance.objects.filter(stack=shop).update(qos={"net_outbound_kib_sec": 64})
    body = api(member).get(f"/api/v1/stacks/{shop.pk}/").json()
    assert {tier["qos"]["net_outbound_kib_sec"] for tier in body["instances"]} == {64}
    assert all(tier["pinned_cpus"] == "" for tier in body["instances"])
    host = api(operator).get(f"/api/v1/hosts/{test_host.pk}/").json()
    assert host["dedicated_cpu_set"] == "2-5"
    assert host["disk_bytes_sec_ceiling"] == 10 * MIB
    assert host["disk_iops_sec_ceiling"] is None
    assert "memory_overcommit" in host


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("dedicated_cpu_set", "2-x"),
        ("dedicated_cpu_set", "9-3"),
        ("disk_bytes_sec_ceiling", 0),
        ("disk_iops_sec_ceiling", 10**12),
        ("net_kib_sec_ceiling", 0),
    ],
)
def test_registering_a_host_with_nonsense_qos_is_refused_before_connecting(api, operator, field, value):
    given = {"name": "new", "uri": "qemu+ssh://nowhere.invalid/system", "storage_pool": "p", field: value}
    response = api(operator).post("/api/v1/hosts/", given, format="json")
    assert response.status_code == 400
    assert field in response.json()["fields"] or field in str(response.json())


def test_the_host_serializer_knows_its_hosts_cpus(db):
    host = HostFactory(cpus=4)
    assert not HostSerializer(host, data={"dedicated_cpu_set": "2-4"}, partial=True).is_valid()
    assert HostSerializer(host, data={"dedicated_cpu_set": "2-3"}, partial=True).is_valid()


@pytest.mark.parametrize(
    ("field", "value"),
    [("disk_write_bytes_sec", 0), ("disk_read_iops_sec", 10**9), ("net_inbound_kib_sec", 0), ("cpu_shares", 1)],
)
def test_the_flavor_serializer_refuses_nonsense_limits(db, field, value):
    given = {"name": "f", "vcpus": 1, "memory_mib": 128, "disk_gib": 1, field: value}
    serializer = FlavorSerializer(data=given)
    assert not serializer.is_valid()
    assert field in serializer.errors


def test_the_flavor_serializer_shows_every_qos_field(db):
    flavor = Flavor.objects.create(name="f", vcpus=2, memory_mib=256, disk_gib=1, dedicated_cpus=True, cpu_shares=512)
    data = FlavorSerializer(flavor).data
    assert {name: data[name] for name in qos.QOS_FIELDS} == {
        **dict.fromkeys(qos.LIMIT_FIELDS),
        "cpu_shares": 512,
        "dedicated_cpus": True,
    }


def test_admin_pages_show_and_check_the_qos_fields(admin_client, db):
    flavor = Flavor.objects.create(name="fast", vcpus=2, memory_mib=256, disk_gib=1, disk_write_bytes_sec=2 * MIB)
    host = HostFactory(dedicated_cpu_set="2-5", disk_bytes_sec_ceiling=10 * MIB)
    listing = admin_client.get(reverse("admin:provisioning_flavor_changelist")).content.decode()
    assert f"disk writes {2 * MIB} B/s" in listing
    page = admin_client.get(reverse("admin:provisioning_flavor_change", args=[flavor.pk])).content.decode()
    for name in qos.QOS_FIELDS:
        assert f'name="{name}"' in page
    host_page = admin_client.get(reverse("admin:provisioning_host_change", args=[host.pk])).content.decode()
    for name in ("dedicated_cpu_set", "disk_bytes_sec_ceiling", "disk_iops_sec_ceiling", "net_kib_sec_ceiling"):
        assert f'name="{name}"' in host_page
    assert "4 of 4 (2,3,4,5)" in host_page
    assert admin_client.get(reverse("admin:provisioning_host_changelist")).status_code == 200

    given = {"name": "fast", "vcpus": 2, "memory_mib": 256, "disk_gib": 1, "disk_write_bytes_sec": 0, "cpu_shares": 1}
    refused = admin_client.post(reverse("admin:provisioning_flavor_change", args=[flavor.pk]), given)
    assert refused.status_code == 200  # the form again, with its errors
    assert refused.context["adminform"].form.errors.keys() == {"disk_write_bytes_sec", "cpu_shares"}
    flavor.refresh_from_db()
    assert flavor.disk_write_bytes_sec == 2 * MIB


def test_the_api_lists_shared_and_own_flavors_with_their_limits(api, member, project, other_project):
    Flavor.objects.create(name="shared-io", vcpus=1, memory_mib=128, disk_gib=1, disk_write_bytes_sec=2 * 1024 * 1024)
    Flavor.objects.create(name="ours", project=project, vcpus=2, memory_mib=256, disk_gib=1, dedicated_cpus=True)
    Flavor.objects.create(name="theirs", project=other_project, vcpus=1, memory_mib=128, disk_gib=1)
    body = api(member).get("/api/v1/flavors/").json()
    rows = {row["name"]: row for row in body["results"]}
    assert set(rows) == {"shared-io", "ours"}
    assert rows["shared-io"]["disk_write_bytes_sec"] == 2 * 1024 * 1024
    assert rows["ours"]["dedicated_cpus"] is True
