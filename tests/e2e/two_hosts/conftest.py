"""The extra real hosts of ``tests/e2e/hosts.py`` (started by ./scripts/test.sh) for the tests in this folder."""

import pytest

from tests.e2e.hosts import (  # noqa: F401 - fixtures
    extra_hosts,
    extra_hosts_env,
    host2_ssh_uri,
    host2_uri,
    private_libvirtd,
    register_host,
)


@pytest.fixture(autouse=True)
def _extra_hosts_first():
    """Fail at once, before any appliance is built, when ./scripts/test.sh did not start the hosts."""
    extra_hosts_env()


@pytest.fixture(autouse=True)
def _endpoints_on_each_hosts_own_address(settings):
    """Each host publishes on its own address here (one endpoint name would serve one host only)."""
    settings.ENDPOINT_HOST = ""
