"""More real libvirt hosts for end-to-end tests, beside the system daemon (``qemu:///system``).

``./scripts/test.sh`` starts them for its run (``test_hosts_start`` in ``scripts/lib.sh``), stops them
afterwards by their pid files, and passes them to the tests in environment variables:

- ``PORTAL_TEST_HOST2_SOCKET``: a second libvirtd ("host2") in its own mount namespace, with its own
  configuration, guests, pools and logs, reached as ``qemu+unix:///system?socket=<that socket>``. Its
  guests publish their ports on 127.0.0.2.
- ``PORTAL_TEST_SSH_PORT``, ``PORTAL_TEST_SSH_KEY``, ``PORTAL_TEST_SSH_KNOWN_HOSTS``,
  ``PORTAL_TEST_SSH_COMMAND``: an OpenSSH server on 127.0.0.1 that lets root in with a key made for the
  run, in front of host2's socket (``qemu+libssh2``: SSH, the transport real clouds use).
- ``PORTAL_TEST_HOSTS_DIR``: the run's folder, where a test starts private libvirtds of its own, the
  only ones a test may stop and restart.

Those are shared by every test of the run (and both xdist workers), so a test uses a storage pool of its
own on them and its own deployment name; ``register_host`` arranges both and cleans up afterwards.
Import the fixtures from a ``conftest.py`` (as ``tests/e2e/two_hosts/conftest.py`` does).
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings

from provisioning import naming
from provisioning.drivers import DriverError, HostUnreachable, open_driver
from provisioning.drivers.libvirt_driver import LibvirtDriver
from provisioning.models import Host
from tests.e2e.conftest import remove_pool

ROOT = Path(__file__).resolve().parents[2]
LIB_SH = ROOT / "scripts" / "lib.sh"
HOST2_ADDRESS = "127.0.0.2"

_HOST_ENV = (
    "PORTAL_TEST_HOSTS_DIR",
    "PORTAL_TEST_HOST2_SOCKET",
    "PORTAL_TEST_SSH_PORT",
    "PORTAL_TEST_SSH_KEY",
    "PORTAL_TEST_SSH_KNOWN_HOSTS",
    "PORTAL_TEST_SSH_COMMAND",
)


def extra_hosts_env() -> dict[str, str]:
    """The run's extra hosts; a clear failure (not a skip: CI must not pass without them) when missing."""
    missing = [name for name in _HOST_ENV if not os.environ.get(name)]
    if missing:
        pytest.fail(
            f"{', '.join(missing)} not set. This test needs the second libvirt host and the SSH server that "
            "./scripts/test.sh starts (and stops) around pytest: run ./scripts/test.sh, with pytest's "
            "arguments after it if you like (./scripts/test.sh tests/e2e/two_hosts -n 0).",
            pytrace=False,
        )
    return {name: os.environ[name] for name in _HOST_ENV}


def run_lib(function: str, *args: str) -> None:
    """Run one function of ``scripts/lib.sh``: the same code the test script manages its hosts with."""
    try:
        subprocess.run(
            ["bash", "-c", 'source "$0" && "$@"', str(LIB_SH), function, *args],
            check=True,
            capture_output=True,
            text=True,
            timeout=120,
        )
    except subprocess.CalledProcessError as exc:
        raise AssertionError(f"{function} {' '.join(args)} failed: {exc.stderr or exc.stdout}") from None


def unix_uri(socket_path: str) -> str:
    return f"qemu+unix:///system?socket={quote(socket_path, safe='/')}"


def ssh_uri(env: dict[str, str]) -> str:
    """host2 over SSH, as a remote host is reached: libvirt's libssh2 transport, host key checked.

    ``proxy=netcat`` makes the remote side run ``nc -U <socket>``: the default (virt-ssh-helper, when the
    remote has it) is given only ``qemu:///system`` and would silently answer from the system daemon.
    ``known_hosts`` pins this run's host key. (``qemu+ssh`` would ignore that parameter in libvirt 9.0
    and need a ``command=`` wrapper, which the portal refuses: it runs a program on the portal server.
    ``qemu+libssh`` hangs in libvirt 9.0 on a reply larger than a few kilobytes from a Python client.)
    """
    params = {
        "socket": env["PORTAL_TEST_HOST2_SOCKET"],
        "keyfile": env["PORTAL_TEST_SSH_KEY"],
        "known_hosts": env["PORTAL_TEST_SSH_KNOWN_HOSTS"],
        "known_hosts_verify": "normal",
        "sshauth": "privkey",
        "proxy": "netcat",
    }
    query = "&".join(f"{key}={quote(value, safe='/')}" for key, value in params.items())
    return f"qemu+libssh2://root@127.0.0.1:{env['PORTAL_TEST_SSH_PORT']}/system?{query}"


@dataclass(frozen=True)
class PrivateLibvirtd:
    """A libvirtd (with its virtlogd) that one test started in a folder of its own, and may stop and
    start again: by its pid file, never by name, never the daemons the script started for everyone."""

    dir: Path

    @property
    def uri(self) -> str:
        return unix_uri(str(self.dir / "sock" / "libvirt-sock"))

    @property
    def pid(self) -> int | None:
        """libvirtd's process id while it runs (read from its pid file and checked against /proc)."""
        try:
            pid = int((self.dir / "libvirtd.pid").read_text())
            comm = Path(f"/proc/{pid}/comm").read_text().strip()
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, ValueError, IndexError):
            return None
        return pid if comm == "libvirtd" and state != "Z" else None

    def start(self) -> None:
        """Start libvirtd (and virtlogd) if not running; waits until it answers. Pools and volumes stay."""
        run_lib("libvirt_host_start", str(self.dir), "16900")  # VNC ports apart from host2's (15900)

    def stop_libvirtd(self) -> None:
        """Stop libvirtd alone, as if it had died: its guests and virtlogd keep running."""
        run_lib("stop_pidfile", str(self.dir / "libvirtd.pid"), "libvirtd")

    def remove(self) -> None:
        """Stop its guests and daemons and delete its folder (configuration, pools, disks)."""
        run_lib("libvirt_host_stop", str(self.dir))
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def extra_hosts() -> dict[str, str]:
    return extra_hosts_env()


@pytest.fixture
def host2_uri(extra_hosts) -> str:
    """The second libvirtd the test script started for this run (shared: never stop it)."""
    return unix_uri(extra_hosts["PORTAL_TEST_HOST2_SOCKET"])


@pytest.fixture
def host2_ssh_uri(extra_hosts) -> str:
    """The same second libvirtd, over SSH through the run's sshd on 127.0.0.1."""
    return ssh_uri(extra_hosts)


@pytest.fixture
def private_libvirtd(extra_hosts) -> Iterator[PrivateLibvirtd]:
    """A libvirtd of this test's own (about half a second to start), removed with everything on it afterwards."""
    daemon = PrivateLibvirtd(Path(extra_hosts["PORTAL_TEST_HOSTS_DIR"]) / f"own-{secrets.token_hex(4)}")
    try:
        daemon.start()
        yield daemon
    finally:
        daemon.remove()


@pytest.fixture
def register_host(own_names_and_ports, operator) -> Iterator[Callable[..., Host]]:
    """``register_host(name=, uri=, public_address=)`` registers a real host (domain type ``qemu``) with a
    storage pool of this test's own, which the driver builds.

    Afterwards this test's domains, stack networks and volumes on each such host are removed and its pool
    deleted (before ``own_names_and_ports`` forgets the test's deployment name). A host that no longer
    answers (a private libvirtd already removed) is passed over.
    """
    from provisioning.services import hosts

    deployment = settings.DEPLOYMENT_NAME
    made: list[tuple[str, str]] = []

    def register(*, name: str, uri: str, public_address: str = "127.0.0.1") -> Host:
        pool = f"portal-e2e-{secrets.token_hex(4)}"
        made.append((uri, pool))
        return hosts.host_register(
            user=operator,
            name=name,
            uri=uri,
            domain_type="qemu",
            storage_pool=pool,
            storage_pool_path=f"/var/lib/libvirt/images/{pool}",
            public_address=public_address,
        )

    yield register
    problems = []
    for uri, pool in made:
        try:
            _remove_test_objects(uri, pool=pool, deployment=deployment)
        except HostUnreachable:
            continue
        except DriverError as exc:  # clean up the other hosts, then report them all
            problems.append(f"{uri}: {exc}")
    assert not problems, f"clean-up left things behind: {problems}"


def _remove_test_objects(uri: str, *, pool: str, deployment: str) -> None:
    prefix = f"{deployment}-"
    with LibvirtDriver(uri) as driver:
        for domain in driver.list_domains():
            if domain.name.startswith(prefix):
                driver.destroy_domain(name=domain.name)
        for network in driver.list_networks():
            if network.startswith(prefix):
                driver.delete_network(name=network)
        remove_pool(driver, pool)


def leftovers(uri: str, *, pool: str) -> dict[str, list[str]]:
    """This deployment's domains, stack networks and volumes (other than cached base images) on a host."""
    base_prefix = f"{naming.deployment()}-base-"
    with open_driver(uri) as driver:
        found = {
            "domains": [d.name for d in driver.list_domains() if naming.is_ours(d.tags)],
            "networks": [n for n in driver.list_networks() if naming.parse_network_name(n) is not None],
            "volumes": [v.name for v in driver.list_volumes(pool=pool) if not v.name.startswith(base_prefix)],
        }
    return {kind: names for kind, names in found.items() if names}
