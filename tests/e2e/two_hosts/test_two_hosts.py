"""Several real libvirt hosts on one machine: placement spreads stacks over them and passes over a drained
host and one whose libvirtd is down (until it answers again); one host is reached over qemu+ssh.

The hosts: the system daemon (``qemu:///system``, ports on 127.0.0.4, an address the portal does not
answer to, as every endpoint's must be), the run's second libvirtd (ports on
127.0.0.2, see ``tests/e2e/hosts.py``) and, where a daemon has to stop, a private libvirtd the test starts
itself (127.0.0.3). Builds and teardowns run inline in the test process.
"""

from __future__ import annotations

import pytest

from catalog.models import ApplianceVersion
from provisioning import naming
from provisioning.drivers import open_driver
from provisioning.models import Host, Instance, Stack, Status
from provisioning.services import hosts, lifecycle
from provisioning.services.launch import stack_launch
from provisioning.tasks import refresh_hosts
from tests.e2e.conftest import SYSTEM_URI
from tests.e2e.hosts import HOST2_ADDRESS, leftovers
from tests.polling import page_text, wait_for

pytestmark = pytest.mark.e2e

LOCAL_ADDRESS = "127.0.0.4"
PAGE_TIMEOUT = 120  # a TCG guest boots to its page in about 5 s alone, slower beside other tests' guests


@pytest.fixture
def demo_web(operator, project, demo_feed) -> ApplianceVersion:
    """The demo web appliance (HTTP on 80) in ``project``'s catalog, no host registered yet."""
    from catalog import services as catalog_services
    from catalog.models import Appliance, Feed

    feed = catalog_services.feed_subscribe_and_import(user=operator, url=demo_feed, project=project)
    assert feed.last_status == Feed.ImportStatus.OK, feed.last_error
    version = Appliance.objects.get(feed=feed, identifier="demo-web").versions.newest_first().first()
    assert version is not None
    return version


@pytest.fixture
def launch(member, project, django_capture_on_commit_callbacks):
    """``launch(name, version, build=True)``: a one-tier stack; built here and now unless ``build`` is False
    (then only placed: the stack, its instance on the chosen host and its port are claimed)."""

    def run(name: str, version: ApplianceVersion, *, build: bool = True) -> Stack:
        with django_capture_on_commit_callbacks(execute=build):
            stack = stack_launch(user=member, project=project, name=name, appliance_version=version, lease_seconds=600)
        stack.refresh_from_db()
        return stack

    return run


@pytest.fixture
def destroy(member, django_capture_on_commit_callbacks):
    def run(stack: Stack) -> None:
        with django_capture_on_commit_callbacks(execute=True):
            lifecycle.stack_destroy(user=member, stack=stack)
        stack.refresh_from_db()
        assert stack.status == Status.DELETED, stack.status_reason

    return run


def host_of(stack: Stack) -> Host:
    return stack.instances.get().host


def our_domains(uri: str) -> dict[str, str]:
    """This test's domains on a host, by name, with their state."""
    with open_driver(uri) as driver:
        return {d.name: d.state for d in driver.list_domains() if naming.is_ours(d.tags)}


def test_stacks_spread_over_two_hosts_and_leave_nothing_behind(demo_web, register_host, host2_uri, launch, destroy):
    local = register_host(name="local", uri=SYSTEM_URI, public_address=LOCAL_ADDRESS)
    second = register_host(name="host2", uri=host2_uri, public_address=HOST2_ADDRESS)
    assert second.healthy, second.health_error

    # Two are enough to show the spreading: each boots under TCG, which is what costs the time here.
    stacks = [launch(f"spread{number}", demo_web) for number in range(2)]
    for stack in stacks:
        assert stack.status == Status.RUNNING, stack.status_reason
    assert sorted(host_of(stack).name for stack in stacks) == ["host2", "local"]

    urls = []
    for stack in stacks:
        port = stack.instances.get().published_ports.get()
        assert port.url.startswith(f"http://{host_of(stack).public_address}:"), port.url
        page = wait_for(lambda url=port.url: page_text(url), timeout=PAGE_TIMEOUT, interval=0.5, what=port.url)
        assert "demo-web appliance" in page
        urls.append(port.url)
    # Each guest runs on the host placement chose, and only there: the daemons keep their own domains.
    for host in (local, second):
        placed_here = Instance.objects.filter(stack__in=stacks, host=host)
        assert our_domains(host.uri) == {instance.domain_name: "running" for instance in placed_here}

    for stack in stacks:
        destroy(stack)
    assert [url for url in urls if page_text(url) is not None] == []
    for host in (local, second):
        assert leftovers(host.uri, pool=host.storage_pool) == {}, host.name


def test_drained_host_gets_no_stacks(operator, ready_version, register_host, host2_uri, launch):
    register_host(name="local", uri=SYSTEM_URI, public_address=LOCAL_ADDRESS)
    second = register_host(name="host2", uri=host2_uri, public_address=HOST2_ADDRESS)

    hosts.host_drain(user=operator, host=second)
    while_drained = [host_of(launch(f"drained{n}", ready_version, build=False)).name for n in range(2)]
    assert while_drained == ["local", "local"]

    hosts.host_undrain(user=operator, host=second)
    # Spreading, the next stacks go to the emptier host again.
    after = [host_of(launch(f"undrained{n}", ready_version, build=False)).name for n in range(2)]
    assert "host2" in after


def test_host_whose_libvirtd_stops_is_skipped_until_it_answers(
    ready_version, register_host, private_libvirtd, launch, destroy
):
    register_host(name="local", uri=SYSTEM_URI, public_address=LOCAL_ADDRESS)
    own = register_host(name="own", uri=private_libvirtd.uri, public_address="127.0.0.3")
    assert own.healthy, own.health_error

    private_libvirtd.stop_libvirtd()
    assert private_libvirtd.pid is None
    hosts.host_refresh(host=own)
    own.refresh_from_db()
    assert not own.healthy
    assert own.health_error

    # Were "own" eligible, spreading would send the second stack there.
    while_down = [host_of(launch(f"down{n}", ready_version, build=False)).name for n in range(2)]
    assert while_down == ["local", "local"]

    private_libvirtd.start()
    assert refresh_hosts() == 2  # the periodic task finds both hosts healthy
    own.refresh_from_db()
    assert (own.healthy, own.health_error) == (True, "")

    back = launch("back", ready_version)
    assert back.status == Status.RUNNING, back.status_reason
    assert host_of(back) == own
    assert our_domains(own.uri) == {back.instances.get().domain_name: "running"}
    destroy(back)
    assert leftovers(own.uri, pool=own.storage_pool) == {}


def test_host_reached_over_ssh_runs_a_stack(demo_web, register_host, host2_ssh_uri, host2_uri, launch, destroy):
    remote = register_host(name="remote", uri=host2_ssh_uri, public_address=HOST2_ADDRESS)
    assert remote.healthy, remote.health_error

    stack = launch("over-ssh", demo_web)
    assert stack.status == Status.RUNNING, stack.status_reason
    assert host_of(stack) == remote
    port = stack.instances.get().published_ports.get()
    assert port.url.startswith(f"http://{HOST2_ADDRESS}:"), port.url
    page = wait_for(lambda: page_text(port.url), timeout=PAGE_TIMEOUT, interval=0.5, what=port.url)
    assert "demo-web appliance" in page
    # SSH reached host2 itself (through its socket), not the system daemon beside it.
    domain = stack.instances.get().domain_name
    assert our_domains(host2_uri) == {domain: "running"}
    assert domain not in our_domains(SYSTEM_URI)

    destroy(stack)
    assert page_text(port.url) is None
    assert leftovers(remote.uri, pool=remote.storage_pool) == {}
