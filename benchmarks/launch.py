"""API call to ``running`` for one VM, against the floor: the same disk and domain made directly.

Run:  .venv/bin/python benchmarks/launch.py [--rounds 5]

Each round times two things on the local libvirtd (qemu:///system), in alternating order so
drift on a noisy machine hits both alike:
  floor   libvirt-python alone: create the qcow2 overlay over the cached base volume, define
          the same domain XML, start it.
  portal  POST /api/v1/stacks/ and poll GET until the stack is "running" (a real django-q2
          worker process does the work through the ORM broker).
It prints the medians and their ratio. Everything it creates is removed at the end.
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
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

import django  # noqa: E402

django.setup()

# The floor must bypass the portal entirely, so this script talks to libvirt itself.
import libvirt  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from rest_framework.test import APIClient  # noqa: E402

from catalog import services as catalog_services  # noqa: E402
from catalog.demo_appliances import build_demo_appliances  # noqa: E402
from catalog.models import Appliance, Feed  # noqa: E402
from portal.models import Project, Role  # noqa: E402
from portal.services import membership_set  # noqa: E402
from provisioning.drivers import DomainSpec, DomainTags, PortForward, open_driver  # noqa: E402
from provisioning.drivers.domain_xml import build_domain_xml, build_overlay_xml  # noqa: E402
from provisioning.naming import base_volume_name  # noqa: E402
from provisioning.services import hosts  # noqa: E402
from tests.polling import wait_for  # noqa: E402
from tests.worker_process import running_worker  # noqa: E402

URI = "qemu:///system"
POOL = f"portal-bench-{secrets.token_hex(3)}"
POOL_PATH = f"/var/lib/libvirt/images/{POOL}"
# The floor's domains are tagged like the portal's (same XML size) but with a deployment of their own,
# so no portal's reconciler, the benchmark's included, takes them for its leftovers.
FLOOR_DEPLOYMENT = "bench-floor"


def set_up() -> tuple[APIClient, int, int]:
    call_command("migrate", verbosity=0)
    user = get_user_model().objects.create_superuser("bench", password=secrets.token_urlsafe(16))
    # There is no project service; projects are made by operators in the admin or like this.
    project = Project.objects.create(name="bench", max_instances=100, max_vcpus=100, max_memory_mib=100_000)
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
    appliance = Appliance.objects.get(identifier="demo-web")
    catalog_services.image_ensure_cached(version=appliance.latest_version())
    client = APIClient()
    client.force_authenticate(user)
    return client, project.pk, appliance.pk


def portal_launch(client: APIClient, project: int, appliance: int, name: str) -> tuple[float, int]:
    started = time.perf_counter()
    response = client.post(
        "/api/v1/stacks/", {"name": name, "project": project, "appliance": appliance, "lease": 600}, format="json"
    )
    assert response.status_code == 202, response.content
    url = f"/api/v1/stacks/{response.json()['id']}/"

    def settled() -> dict | None:
        body = client.get(url).json()
        return body if body["status"] in ("running", "error") else None

    body = wait_for(settled, timeout=300, interval=0.01, what=f"{name} to run (worker log: {WORK / 'worker.log'})")
    if body["status"] == "error":
        raise SystemExit(f"launch failed: {body['status_reason']}")
    return time.perf_counter() - started, body["id"]


def portal_delete(client: APIClient, stack_id: int) -> None:
    url = f"/api/v1/stacks/{stack_id}/"
    client.delete(url)
    wait_for(
        lambda: client.get(url).json()["status"] in ("deleted", "error"), timeout=120, interval=0.05, what="delete"
    )


def floor_launch(conn: libvirt.virConnect, base_path: str, index: int, port: int) -> tuple[float, str]:
    """What the portal asks libvirt for, done directly: overlay volume, define, start."""
    name = f"bench-floor-{index}"
    tags = DomainTags(deployment=FLOOR_DEPLOYMENT, project_id=0, stack_id=0, instance_id=index)
    pool = conn.storagePoolLookupByName(POOL)
    base = pool.storageVolLookupByName(Path(base_path).name)
    overlay_xml = build_overlay_xml(f"{name}.qcow2", base.info()[1], base_path, "qcow2")
    started = time.perf_counter()
    overlay = pool.createXML(overlay_xml, 0)
    spec = DomainSpec(
        name=name,
        domain_type="qemu",
        vcpus=1,
        memory_mib=128,
        disk_path=overlay.path(),
        tags=tags,
        port_forwards=(PortForward(host_port=port, guest_port=80),),
    )
    domain = conn.defineXML(build_domain_xml(spec))
    domain.create()
    return time.perf_counter() - started, name


def floor_delete(conn: libvirt.virConnect, name: str) -> None:
    domain = conn.lookupByName(name)
    domain.destroy()
    domain.undefine()
    conn.storagePoolLookupByName(POOL).storageVolLookupByName(f"{name}.qcow2").delete(0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    rounds = parser.parse_args().rounds
    client, project, appliance = set_up()
    with running_worker(log_path=WORK / "worker.log"):
        run_rounds(client, project, appliance, rounds)


def run_rounds(client: APIClient, project: int, appliance: int, rounds: int) -> None:
    conn = libvirt.open(URI)
    try:
        # Warm-up: the first launch uploads the base image into the pool; neither side pays that below.
        seconds, stack_id = portal_launch(client, project, appliance, "warmup")
        portal_delete(client, stack_id)
        image = Appliance.objects.get(pk=appliance).latest_version().image
        base_path = f"{POOL_PATH}/{base_volume_name(image.sha256, 'qcow2')}"
        floor, portal = [], []
        for index in range(rounds):
            order = ("floor", "portal") if index % 2 == 0 else ("portal", "floor")
            for which in order:
                if which == "floor":
                    seconds, name = floor_launch(conn, base_path, index, settings.PUBLISH_PORT_RANGE[1] - index)
                    floor.append(seconds)
                    floor_delete(conn, name)
                else:
                    seconds, stack_id = portal_launch(client, project, appliance, f"bench-{index}")
                    portal.append(seconds)
                    portal_delete(client, stack_id)
            print(f"round {index + 1}: floor {floor[-1]:.3f} s, portal {portal[-1]:.3f} s", flush=True)
        floor_median, portal_median = statistics.median(floor), statistics.median(portal)
        print(f"floor  (libvirt-python: overlay + define + start): median {floor_median:.3f} s")
        print(f"portal (API call -> running):                      median {portal_median:.3f} s")
        print(f"ratio portal/floor: {portal_median / floor_median:.2f}x (goal: 1.50x or less)")
    finally:
        conn.close()
        with open_driver(URI) as driver:
            for volume in driver.list_volumes(pool=POOL):
                driver.delete_volume(pool=POOL, name=volume.name)
            driver.delete_pool(name=POOL)


if __name__ == "__main__":
    main()
