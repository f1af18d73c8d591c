"""What the real-VM benchmarks share: a throw-away portal, its worker, the floor, and the clean-up.

Importing this module configures Django for a benchmark run (a temporary folder holding the SQLite
database, the image cache and the worker log; a deployment name and a storage pool of its own) and
calls ``django.setup()``, so a script imports it before anything from Django.

``run`` does the rest around a script's rounds: the demo appliances built and imported, the local
libvirtd registered as the only host, the shipped templates installed, a real django-q2 worker
started, and afterwards everything the run made on the host removed (domains, volumes, networks,
the pool), also when a round fails half-way or the run is interrupted.

The floor, what the portal asks libvirt for made directly, is in ``benchmarks.vm_floor``.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import secrets
import shutil
import signal
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
WORK = Path(tempfile.mkdtemp(prefix="portal-bench-"))
(WORK / "static").mkdir()  # what collectstatic would make; whitenoise warns without it
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
os.environ.setdefault("DJANGO_SECRET_KEY", secrets.token_urlsafe(32))
os.environ.setdefault("PORTAL_VAR_DIR", str(WORK))
os.environ.setdefault("PORTAL_FETCH_FILE_ROOTS", str(WORK / "appliances"))
os.environ.setdefault("DJANGO_ALLOWED_HOSTS", "testserver")
# Its own domain-name prefix, so no other portal's reconciler on this host takes its VMs for leftovers.
os.environ.setdefault("PORTAL_DEPLOYMENT", f"bench{secrets.token_hex(3)}")
# The ORM broker in the run's own database: with a shared Redis another portal's worker could take our tasks.
os.environ.pop("REDIS_URL", None)

import django  # noqa: E402

django.setup()

import libvirt  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from rest_framework.test import APIClient  # noqa: E402

from benchmarks.processes import load  # noqa: E402 - load: for the launch benchmarks
from catalog import services as catalog_services  # noqa: E402
from catalog.demo_appliances import build_demo_appliances  # noqa: E402
from catalog.models import Appliance, ApplianceVersion, Feed  # noqa: E402
from portal.models import Project, Role  # noqa: E402
from portal.services import membership_set  # noqa: E402
from provisioning.drivers import (  # noqa: E402
    DriverError,
    HypervisorDriver,
    NotFound,
    open_driver,
)
from provisioning.models import Stack, StackTemplate  # noqa: E402
from provisioning.services import hosts  # noqa: E402
from provisioning.services.templates import install_shipped_templates  # noqa: E402
from provisioning.templates import TemplateDocument  # noqa: E402
from tests.polling import wait_for  # noqa: E402
from tests.worker_process import running_worker  # noqa: E402

URI = "qemu:///system"
DEPLOYMENT = settings.DEPLOYMENT_NAME
POOL = f"portal-bench-{secrets.token_hex(3)}"
POOL_PATH = f"/var/lib/libvirt/images/{POOL}"
# The floor's domains are tagged like the portal's (same XML size) but with a deployment of their own,
# so no portal's reconciler, the benchmark's included, takes them for its leftovers. Its names start
# with the run's deployment name, so the clean-up finds them with the portal's.
FLOOR = f"{DEPLOYMENT}-floor"
# Another range than the portal's stack networks (10.240.0.0/16), so addresses in guest logs tell them apart.
FLOOR_SUBNET = ipaddress.IPv4Network("10.241.0.0/24")
LEASE_SECONDS = 900
# A poll of the stack API costs this process about 8 ms of CPU, which the worker and the booting guests
# would otherwise have (the floor has no such observer); every 50 ms costs a core about 15% and makes
# the figure late by 25 ms on average.
API_POLL_SECONDS = 0.05
PAGE_POLL_SECONDS = 0.1
PAGE_TIMEOUT_SECONDS = 1.0
BUILD_TIMEOUT_SECONDS = 600


# --- the portal -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Portal:
    client: APIClient
    user: Any
    project: Project


def _set_up() -> Portal:
    call_command("migrate", verbosity=0)
    user = get_user_model().objects.create_superuser("bench", password=secrets.token_urlsafe(16))
    # There is no project service; projects are made by operators in the admin or like this.
    project = Project.objects.create(
        name="bench",
        max_stacks=100,
        max_instances=100,
        max_vcpus=100,
        max_memory_mib=100_000,
        max_disk_gib=10_000,
        max_lease_seconds=LEASE_SECONDS,
    )
    membership_set(actor=user, project=project, username=user.get_username(), role=Role.OWNER)
    hosts.host_register(
        user=user, name="local", uri=URI, domain_type="qemu", storage_pool=POOL, storage_pool_path=POOL_PATH
    )
    out = WORK / "appliances"
    build_demo_appliances(
        out_dir=out, base_url=out.as_uri(), work_dir=ROOT / "var" / "cache" / "demo-build", log=lambda _: None
    )
    feed = catalog_services.feed_subscribe_and_import(user=user, url=(out / "feed.xml").as_uri(), project=None)
    if feed.last_status != Feed.ImportStatus.OK:
        raise SystemExit(f"demo feed import failed: {feed.last_error}")
    # Downloads are the catalog's business, not the launch's: neither side pays them below.
    for appliance in Appliance.objects.filter(feed=feed):
        catalog_services.image_ensure_cached(version=appliance.versions.newest_first().first())
    install_shipped_templates(user=user)
    client = APIClient()
    client.force_authenticate(user)
    return Portal(client=client, user=user, project=project)


def latest_version(identifier: str) -> ApplianceVersion:
    version = Appliance.objects.get(identifier=identifier).versions.newest_first().first()
    assert version is not None, f"the demo feed has no version of {identifier}"
    return version


def template_document(name: str) -> tuple[int, TemplateDocument]:
    template = StackTemplate.objects.get(project=None, name=name)
    return template.pk, TemplateDocument.from_json(template.document)


@dataclass(frozen=True)
class Timed:
    started: float  # time.perf_counter() at the call
    seconds: float  # the call -> every instance running


@dataclass(frozen=True)
class Launched(Timed):
    stack: dict[str, Any]  # the stack's API body at that moment
    posted_at: float  # wall clock of the API call, to compare with the database's timestamps


def portal_launch(portal: Portal, payload: dict[str, Any]) -> Launched:
    """POST the stack and poll its API until every instance is running."""
    posted_at = time.time()
    started = time.perf_counter()
    response = portal.client.post(
        "/api/v1/stacks/", {**payload, "project": portal.project.pk, "lease": LEASE_SECONDS}, format="json"
    )
    assert response.status_code == 202, response.content
    url = f"/api/v1/stacks/{response.json()['id']}/"

    def settled() -> dict | None:
        body = portal.client.get(url).json()
        instances = body["instances"]
        if body["status"] == "error" or (instances and all(i["status"] == "running" for i in instances)):
            return body
        return None

    body = wait_for(
        settled,
        timeout=BUILD_TIMEOUT_SECONDS,
        interval=API_POLL_SECONDS,
        what=f"{payload['name']} to run (worker log: {WORK / 'worker.log'})",
    )
    if body["status"] == "error":
        raise SystemExit(f"launch failed: {body['status_reason']}")
    return Launched(started=started, seconds=time.perf_counter() - started, stack=body, posted_at=posted_at)


def portal_delete(portal: Portal, stack_id: int) -> None:
    url = f"/api/v1/stacks/{stack_id}/"
    portal.client.delete(url)
    wait_for(
        lambda: portal.client.get(url).json()["status"] in ("deleted", "error"),
        timeout=300,
        interval=0.05,
        what="delete",
    )


def stack_timeline(launched: Launched) -> list[str]:
    """The stack's events (written by the API call and the worker), in seconds after the API call."""
    stack = Stack.objects.get(pk=launched.stack["id"])

    def offset(moment: datetime) -> str:
        return f"{moment.timestamp() - launched.posted_at:7.3f} s"

    lines = [f"  {offset(event.created_at)}  {event.message}" for event in stack.events.order_by("created_at", "id")]
    if stack.running_at:
        lines.append(
            f"  {offset(stack.running_at)}  (stack running_at; API saw every instance running at "
            f"{launched.seconds:.3f} s)"
        )
    return lines


# --- pages, figures, the run --------------------------------------------------------------------


def _page_text(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=PAGE_TIMEOUT_SECONDS) as response:
            return response.read().decode(errors="replace")
    except OSError:
        return None


def wait_for_page(url: str, expected: str) -> float:
    """Poll the page at ``url`` until it contains ``expected``; return that moment (``time.perf_counter``)."""
    wait_for(
        lambda: expected in (_page_text(url) or ""),
        timeout=BUILD_TIMEOUT_SECONDS,
        interval=PAGE_POLL_SECONDS,
        what=f"{url} to show {expected!r}",
    )
    return time.perf_counter()


def alternating(rounds: int) -> Iterator[tuple[int, tuple[str, str]]]:
    """Round numbers from 0 with the order of the two sides, swapped every round so drift hits both alike."""
    for index in range(rounds):
        yield index, (("floor", "portal") if index % 2 == 0 else ("portal", "floor"))


@contextmanager
def libvirt_connection() -> Iterator[libvirt.virConnect]:
    conn = libvirt.open(URI)
    try:
        yield conn
    finally:
        conn.close()


def run(description: str, rounds_body: Callable[[Portal, int, bool], None]) -> None:
    """Parse ``--rounds`` and ``--events``, set up, run ``rounds_body(portal, rounds, events)`` beside a
    worker, and remove everything the run made, however it ends."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--events", action="store_true", help="print each portal launch's events, timed")
    try:
        args = parser.parse_args()
        if args.rounds < 1:
            parser.error("--rounds must be at least 1")
    except SystemExit:
        shutil.rmtree(WORK, ignore_errors=True)
        raise
    # A plain SIGTERM would skip the clean-up below.
    signal.signal(signal.SIGTERM, lambda _signum, _frame: sys.exit(143))
    load_before = load()
    failed = True
    try:
        portal = _set_up()
        with running_worker(log_path=WORK / "worker.log"):
            rounds_body(portal, args.rounds, args.events)
        failed = False
    finally:
        remove_everything()  # after the worker has stopped, so no build adds anything behind it
        print(f"load average (1/5/15 min): {load_before} at the start, {load()} at the end", flush=True)
        if failed:
            print(f"worker log and database kept in {WORK}", file=sys.stderr)
        else:
            shutil.rmtree(WORK, ignore_errors=True)


def remove_everything() -> None:
    """Every domain, network and volume this run made on the host, and its pool. Reports what stays."""
    problems: list[str] = []

    def attempt(what: str, action: Callable[[], object]) -> None:
        try:
            action()
        except DriverError as exc:
            problems.append(f"{what}: {exc.message}")

    def remove_all(driver: HypervisorDriver) -> None:
        for domain in driver.list_domains():
            if domain.tags is not None and domain.tags.deployment in (DEPLOYMENT, FLOOR):
                attempt(f"domain {domain.name}", lambda name=domain.name: driver.destroy_domain(name=name))
        for network in driver.list_networks():
            if network.startswith(f"{DEPLOYMENT}-"):
                attempt(f"network {network}", lambda name=network: driver.delete_network(name=name))
        try:
            volumes = driver.list_volumes(pool=POOL)
        except NotFound:
            volumes = []  # the run stopped before the host (and its pool) was registered
        for volume in volumes:
            attempt(f"volume {volume.name}", lambda name=volume.name: driver.delete_volume(pool=POOL, name=name))
        attempt(f"pool {POOL}", lambda: driver.delete_pool(name=POOL))  # a missing pool is not an error

    with open_driver(URI) as driver:
        attempt(f"host {URI}", lambda: remove_all(driver))
    if problems:
        print("clean-up incomplete:\n  " + "\n  ".join(problems), file=sys.stderr)
