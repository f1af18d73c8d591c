"""Publish back, round trip: a stack captured in one portal runs, records and all, from another.

Portal A is this test process (its test database) and, for the other portal to fetch from, the same
portal under daphne on 127.0.0.1 (``live_portal``). It launches the classic three tiers, takes a
record, captures the stack (disks copied with the tiers paused together) and offers its own catalog
as a VMcast.

Portal B is really another deployment: ``manage.py`` commands in processes of their own, with their
own database, deployment name, data folder, image cache, storage pool and published ports. It
subscribes to A's VMcast over loopback HTTP, downloads the images (checked against the feed's
sha256), takes the captured template and launches it; its web tier lists A's record, which no one
ever sent to B.

At most three VMs run at once: A's stack is deleted once captured, before B launches. Everything
either portal made (domains, networks, volumes, pools, B's database, files) is removed afterwards.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection

from provisioning.drivers import open_driver
from provisioning.models import StackTemplate, Status
from provisioning.services import lifecycle
from tests.e2e.conftest import SYSTEM_URI, remove_pool
from tests.e2e.records import launch_classic, page_with, post_record, web_url
from tests.polling import page_text, wait_for
from tests.worker_process import ROOT, database_url, worker_env
from transfers.models import Capture, JobStatus

pytestmark = pytest.mark.e2e

RECORD = "order 2002: 5 teacups, captured"
B_COMMAND_SECONDS = 900  # a launch under TCG, images downloaded first, with room to spare
RESULT = "second-portal-result:"  # marks the line B's functions answer on (logging may write lines too)


# --- portal B: what its processes run (``manage.py shell -c``), parameters in its environment --------


def second_portal_launch() -> None:
    """In B: an operator, a member and a project; the local host; A's VMcast; the captured template,
    launched. Prints what the test checks, as JSON on the last line."""
    from django.contrib.auth import get_user_model

    from catalog import services as catalog_services
    from portal.models import Membership, Project, Role
    from provisioning.services import hosts, templates
    from provisioning.services.launch import stack_launch_template

    users = get_user_model().objects
    operator = users.create_user("b-operator", is_staff=True, is_superuser=True)
    member = users.create_user("b-member")
    project = Project.objects.create(name="beta-portal")
    Membership.objects.create(project=project, user=member, role=Role.MEMBER)
    pool = os.environ["B_POOL"]
    hosts.host_register(
        user=operator,
        name="local",
        uri=SYSTEM_URI,
        domain_type="qemu",
        storage_pool=pool,
        storage_pool_path=f"/var/lib/libvirt/images/{pool}",
    )
    feed = catalog_services.feed_subscribe_and_import(user=member, url=os.environ["B_FEED_URL"], project=project)
    result: dict[str, object] = {"feed_status": feed.last_status, "feed_error": feed.last_error}
    if feed.last_status == "ok":
        template = templates.template_create(
            user=member, project=project, name=os.environ["B_TEMPLATE_NAME"], source=os.environ["B_TEMPLATE_SOURCE"]
        )
        stack = stack_launch_template(user=member, project=project, name="shop", template=template, lease_seconds=1800)
        stack.refresh_from_db()
        ports = [p for i in stack.instances.all() for p in i.published_ports.all()]
        result |= {
            "stack_status": stack.status,
            "stack_reason": stack.status_reason,
            "appliances": {i.role: str(i.appliance_version) for i in stack.instances.all()},
            "instance_names": [i.name for i in stack.instances.all()],
            "web_url": ports[0].url if ports else None,
            "checksums": sorted({i.appliance_version.checksum_source for i in stack.instances.all()}),
        }
    print(RESULT, json.dumps(result))


def second_portal_teardown() -> None:
    """In B: every stack deleted, its teardown run here; prints the statuses as JSON."""
    from django.contrib.auth import get_user_model

    from provisioning.models import Stack
    from provisioning.services import lifecycle

    member = get_user_model().objects.filter(username="b-member").first()
    statuses = []
    for stack in Stack.objects.exclude(status__in=[Status.DELETED, Status.DELETING]):
        lifecycle.stack_destroy(user=member, stack=stack)
        stack.refresh_from_db()
        statuses.append(stack.status)
    print(RESULT, json.dumps(statuses))


class SecondPortal:
    """Portal B: its environment, and its ``manage.py`` commands run as processes of their own."""

    def __init__(self, *, folder: Path, deployment: str, database: str, pool: str, ports: tuple[int, int]) -> None:
        self.folder = folder
        self.database = database
        self.pool = pool
        self.env = worker_env(
            DATABASE_URL=database_url().rsplit("/", 1)[0] + f"/{database}",
            PORTAL_TASKS_SYNC="1",  # B's tasks run in the process that queues them
            PORTAL_DEPLOYMENT=deployment,
            PORTAL_TASK_QUEUE=deployment,
            PORTAL_VAR_DIR=str(folder),
            PORTAL_IMAGE_CACHE=str(folder / "images"),
            PORTAL_PORT_MIN=str(ports[0]),
            PORTAL_PORT_MAX=str(ports[1]),
            PORTAL_FETCH_ALLOWED_PRIVATE_HOSTS="127.0.0.1",  # A's feed and images, on loopback
            B_POOL=pool,
        )

    def manage(self, *command: str, env: dict[str, str] | None = None) -> str:
        done = subprocess.run(
            [sys.executable, "manage.py", *command],
            cwd=ROOT,
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=B_COMMAND_SECONDS,
        )
        assert done.returncode == 0, f"portal B: manage.py {command[0]} failed:\n{done.stdout}\n{done.stderr}"
        return done.stdout

    def run(self, function: str, **env: str) -> object:
        code = f"from tests.e2e.test_publish_round_trip import {function}; {function}()"
        out = self.manage("shell", "--no-imports", "-c", code, env=env)
        (line,) = [line for line in out.splitlines() if line.startswith(RESULT)]
        return json.loads(line.removeprefix(RESULT))


def _create_database(name: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        cursor.execute(f'CREATE DATABASE "{name}"')


def _drop_database(name: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _domains_and_networks(prefix: str) -> tuple[list[str], list[str]]:
    with open_driver(SYSTEM_URI) as driver:
        domains = [d.name for d in driver.list_domains() if d.name.startswith(prefix)]
        networks = [n for n in driver.list_networks() if n.startswith(prefix)]
    return domains, networks


# --- the round trip -----------------------------------------------------------------------------


def test_a_captured_stack_runs_with_its_records_in_another_portal(
    live_portal,
    settings,
    operator,
    owner,
    member,
    project,
    inline_demo_catalog,
    django_capture_on_commit_callbacks,
    api,
    tmp_path,
):
    # A's own files in this test's folder (removed at the end); its ports the lower half of its range, B's the upper.
    settings.IMAGE_CACHE_DIR = tmp_path / "a-images"
    settings.CAPTURE_DIR = tmp_path / "a-captures"
    low, high = settings.PUBLISH_PORT_RANGE
    middle = (low + high) // 2
    settings.PUBLISH_PORT_RANGE = (low, middle)
    settings.PORTAL_BASE_URL = live_portal  # where the VMcast's URL points (A's own address, on loopback)
    deployment_b = f"{settings.DEPLOYMENT_NAME}-b"
    database_b = f"{connection.settings_dict['NAME']}_b"
    pool_b = f"portal-e2e-{settings.DEPLOYMENT_NAME}-b"
    portal_b = SecondPortal(
        folder=tmp_path / "b-var", deployment=deployment_b, database=database_b, pool=pool_b, ports=(middle + 1, high)
    )
    figures: dict[str, float] = {}
    b_cleared = False
    try:
        # A: the classic stack, one record taken, then captured while it runs.
        shop = launch_classic(
            operator=operator, member=member, project=project, capture=django_capture_on_commit_callbacks
        )
        page_with(shop, shop.instances.get(role="db").name, what="A's web page showing the chain")
        assert post_record(web_url(shop), RECORD) == (201, "record saved\n")

        started = time.monotonic()
        with django_capture_on_commit_callbacks(execute=True):
            asked = api(member).post(
                f"/api/v1/stacks/{shop.pk}/capture/", {"appliance_prefix": "shop", "version": "1.0"}, format="json"
            )
        figures["capture_seconds"] = time.monotonic() - started
        assert asked.status_code == 202, asked.json()
        captured = api(member).get(f"/api/v1/captures/{asked.json()['id']}/").json()
        assert captured["status"] == JobStatus.READY, captured["error"]
        assert captured["appliances"] == ["shop-db", "shop-app", "shop-web"]
        shop.refresh_from_db()
        assert shop.status == Status.RUNNING
        page_with(shop, RECORD, what="A's stack serving its record again after the capture")
        template = StackTemplate.objects.get(pk=captured["template"])

        with django_capture_on_commit_callbacks(execute=True):
            lifecycle.stack_destroy(user=member, stack=shop)
        shop.refresh_from_db()
        assert shop.status == Status.DELETED, shop.status_reason

        # A offers its own catalog; members see the URL, owners made it.
        assert api(owner).get(f"/api/v1/projects/{project.pk}/").json()["vmcast_url"] is None
        feed_url = api(owner).post(f"/api/v1/projects/{project.pk}/vmcast/rotate/").json()["vmcast_url"]
        assert api(member).get(f"/api/v1/projects/{project.pk}/").json()["vmcast_url"] == feed_url
        assert feed_url.startswith(f"{live_portal}/vmcast/{project.pk}/")

        # B: a database of its own, migrated; then it subscribes, downloads and launches.
        _create_database(database_b)
        portal_b.manage("migrate", "--no-input")
        portal_b.manage("createcachetable")
        started = time.monotonic()
        launched = portal_b.run(
            "second_portal_launch",
            B_FEED_URL=feed_url,
            B_TEMPLATE_NAME=template.name,
            B_TEMPLATE_SOURCE=template.source,
        )
        figures["b_subscribe_download_launch_seconds"] = time.monotonic() - started
        assert launched["feed_status"] == "ok", launched["feed_error"]
        assert launched["stack_status"] == Status.RUNNING, launched["stack_reason"]
        assert launched["appliances"] == {"db": "db of shop 1.0", "app": "app of shop 1.0", "web": "web of shop 1.0"}
        assert launched["checksums"] == ["feed"]  # B verified every image against A's feed

        # B's web tier lists the record A's stack took (it came in the captured db disk), and B's own chain
        # answers: web through app to db, each naming its instance.
        wanted = [RECORD, *launched["instance_names"]]
        wait_for(
            lambda: (page := page_text(launched["web_url"])) and all(text in page for text in wanted),
            timeout=240,
            interval=1,
            what="B's web page listing the record captured in A, through B's own tiers",
        )

        teardown = portal_b.run("second_portal_teardown")
        b_cleared = True
        assert teardown == [Status.DELETED]
        assert _domains_and_networks(f"{deployment_b}-") == ([], [])
    finally:
        if not b_cleared and _database_exists(database_b):
            # What a failed teardown leaves is removed below: domains and networks by name, volumes with the pool.
            with contextlib.suppress(AssertionError, ValueError, subprocess.TimeoutExpired):
                portal_b.run("second_portal_teardown")
        _drop_database(database_b)
        with open_driver(SYSTEM_URI) as driver:
            domains, networks = _domains_and_networks(f"{deployment_b}-")
            for name in domains:
                driver.destroy_domain(name=name)
            for name in networks:
                driver.delete_network(name=name)
            remove_pool(driver, pool_b)
        for folder in ("a-images", "a-captures", "b-var"):
            shutil.rmtree(tmp_path / folder, ignore_errors=True)
        print(f"\npublish round trip: {json.dumps({k: round(v, 1) for k, v in figures.items()})}")
    assert not Capture.objects.filter(status__in=[JobStatus.PENDING, JobStatus.RUNNING]).exists()


def _database_exists(name: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
        return cursor.fetchone() is not None
