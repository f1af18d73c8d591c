"""The classic three-tier stack on real VMs: the chain works, the tiers are walled in, nothing is left.

A test-only appliance (demo-probe) tries, from inside a guest, to reach the host's loopback through
its restricted public NIC and another stack's tier over the networks, and reports what it could
open; its own stack peer is the positive control.
"""

from __future__ import annotations

import socket
import subprocess

import pytest

from provisioning import naming
from provisioning.drivers import open_driver
from provisioning.models import StackTemplate, Status
from provisioning.services import lifecycle, templates
from provisioning.services.launch import stack_launch_template
from tests.e2e.conftest import SYSTEM_URI
from tests.polling import page_text, wait_for

pytestmark = pytest.mark.e2e

PROBE_TEMPLATE = """
tiers:
  - name: peer
    appliance: demo-db
  - name: probe
    appliance: demo-probe
    depends_on: [{{tier: peer, wait_for_port: true}}]
    publish: [80]
    settings:
      targets: "10.0.2.2:{host_port} {other_db}:5432 peer:5432"
"""


def _launch(member, project, template, name, capture):
    with capture(execute=True):
        stack = stack_launch_template(user=member, project=project, name=name, template=template, lease_seconds=900)
    stack.refresh_from_db()
    assert stack.status == Status.RUNNING, stack.status_reason
    return stack


def _web_url(stack) -> str:
    (port,) = [p for i in stack.instances.all() for p in i.published_ports.all()]
    return port.url


def _everything_on_the_host(pool: str) -> tuple[set[str], set[str], set[str]]:
    with open_driver(SYSTEM_URI) as driver:
        return (
            {d.name for d in driver.list_domains()},
            {v.name for v in driver.list_volumes(pool=pool)},
            set(driver.list_networks()),
        )


def test_classic_three_tier_chain_isolation_and_clean_delete(
    operator, member, project, inline_demo_catalog, system_pool, django_capture_on_commit_callbacks
):
    pool, _path = system_pool
    (classic,) = [t for t in templates.install_shipped_templates(user=operator) if t.name == "classic-three-tier"]
    shop = _launch(member, project, classic, "shop", django_capture_on_commit_callbacks)
    names = {instance.role: instance.name for instance in shop.instances.all()}

    page = wait_for(
        lambda: (text := page_text(_web_url(shop))) and names["db"] in text and text,
        timeout=180,
        interval=1,
        what="the web tier's page showing the whole chain",
    )
    for name in names.values():
        assert name in page
    assert "order 1001: 3 teapots, paid" in page

    # The bridge of a stack network has no address on the host.
    bridge = naming.bridge_name(shop.network.name)
    addresses = subprocess.run(["ip", "-o", "addr", "show", "dev", bridge], capture_output=True, text=True, check=True)
    assert " inet" not in addresses.stdout, addresses.stdout

    with socket.socket() as listener:  # a service on the host's loopback that no guest may reach
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        host_port = listener.getsockname()[1]
        other_db = shop.instances.get(role="db").address
        source = PROBE_TEMPLATE.format(host_port=host_port, other_db=other_db)
        probe_template = templates.template_create(user=member, project=project, name="probe", source=source)
        probe = _launch(member, project, probe_template, "probe", django_capture_on_commit_callbacks)
        assert probe.network.cidr == "10.240.1.0/24"
        own_peer = probe.instances.get(role="peer").address
        # A round after the first (the peer's service is up by then) in which the positive control, its
        # own stack's peer, answered: load can turn "reachable" into "blocked" (2 s per try), never back.
        report = wait_for(
            lambda: (
                (text := page_text(_web_url(probe)))
                and " done" in text
                and "round 1 done" not in text
                and f"target {own_peer}:5432 reachable" in text
                and text
            ),
            timeout=180,
            interval=1,
            what="a round of the probe in which its own peer answered",
        )
    assert f"target 10.0.2.2:{host_port} blocked" in report, report
    assert f"target {other_db}:5432 blocked" in report, report

    stacks = [shop, probe]
    made = {
        "domains": {i.domain_name for s in stacks for i in s.instances.all()},
        "volumes": {n for s in stacks for i in s.instances.all() for n in (i.volume_name, i.config_volume_name)},
        "networks": {s.network.name for s in stacks},
    }
    for stack in stacks:
        with django_capture_on_commit_callbacks(execute=True):
            lifecycle.stack_destroy(user=member, stack=stack)
        stack.refresh_from_db()
        assert stack.status == Status.DELETED, stack.status_reason
    domains, volumes, networks = _everything_on_the_host(pool)
    assert not made["domains"] & domains
    assert not made["volumes"] & volumes
    assert not made["networks"] & networks
    assert StackTemplate.objects.filter(name="classic-three-tier").exists()
