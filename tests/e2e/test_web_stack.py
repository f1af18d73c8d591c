"""From VMcast feed to a page served by a real VM, and back to nothing left in libvirt."""

from __future__ import annotations

from functools import partial

import pytest
from django.conf import settings

from provisioning import naming
from provisioning.drivers import open_driver
from tests.e2e.conftest import SYSTEM_URI
from tests.polling import page_text, wait_for

pytestmark = pytest.mark.e2e


def _get(client, url):
    response = client.get(url)
    assert response.status_code == 200, response.content
    return response.json()


def _wait_for_status(client, url, *, field: str, done: tuple[str, ...], timeout: float) -> dict:
    """Poll a resource until ``field`` takes one of the ``done`` values; return its last JSON."""

    def settled():
        body = _get(client, url)
        return body if body[field] in done else None

    return wait_for(settled, timeout=timeout, what=f"{url} {field} in {done}")


def _our_domains(driver) -> list:
    # Ids repeat across parallel test databases; each test runs as its own deployment.
    return [d for d in driver.list_domains() if naming.is_ours(d.tags)]


@pytest.mark.xdist_group("e2e-web")
def test_feed_to_running_web_stack_and_back(api, operator, member, project, demo_feed, system_pool, worker):
    pool, pool_path = system_pool
    admin, user = api(operator), api(member)

    host = admin.post(
        "/api/v1/hosts/",
        {
            "name": "local",
            "uri": SYSTEM_URI,
            "domain_type": "qemu",
            "storage_pool": pool,
            "storage_pool_path": pool_path,
        },
        format="json",
    )
    assert host.status_code == 201, host.content
    assert host.json()["healthy"] is True

    feed = user.post("/api/v1/feeds/", {"url": demo_feed, "project": project.pk}, format="json")
    assert feed.status_code == 202, feed.content
    feed_url = f"/api/v1/feeds/{feed.json()['id']}/"
    imported = _wait_for_status(user, feed_url, field="last_status", done=("ok", "error"), timeout=60)
    assert imported["last_status"] == "ok", imported["last_error"]
    assert imported["last_item_count"] == 4  # web, app, db and the test-only probe

    appliances = _get(user, "/api/v1/appliances/")["results"]
    web = next(a for a in appliances if a["identifier"] == "demo-web")
    launched = user.post(
        "/api/v1/stacks/",
        {"name": "e2e-web", "project": project.pk, "appliance": web["id"], "lease": 900},
        format="json",
    )
    assert launched.status_code == 202, launched.content
    stack_url = f"/api/v1/stacks/{launched.json()['id']}/"

    stack = _wait_for_status(user, stack_url, field="status", done=("running", "error"), timeout=180)
    assert stack["status"] == "running", stack["status_reason"]
    (endpoint,) = stack["endpoints"]
    assert endpoint["guest_port"] == 80
    assert endpoint["url"].startswith("http://localhost:")  # a name of its own, not the portal's
    page = wait_for(lambda: page_text(endpoint["url"]), timeout=120, interval=0.5, what="the appliance's page")
    assert "demo-web appliance" in page

    (instance,) = stack["instances"]
    with open_driver(SYSTEM_URI) as driver:
        assert [(d.state, d.tags.stack_id) for d in _our_domains(driver)] == [("running", stack["id"])]

    assert user.delete(stack_url).status_code == 202
    gone = _wait_for_status(user, stack_url, field="status", done=("deleted", "error"), timeout=60)
    assert gone["status"] == "deleted", gone["status_reason"]
    assert page_text(endpoint["url"]) is None
    with open_driver(SYSTEM_URI) as driver:
        assert _our_domains(driver) == []
        volumes = {v.name for v in driver.list_volumes(pool=pool)}
    # Only the base image stays in the pool (the cache later stacks overlay); the fixture removes it.
    (base,) = volumes
    assert base.startswith(f"{settings.DEPLOYMENT_NAME}-base-"), volumes
    tags = naming.instance_tags(project_id=stack["project"], stack_id=stack["id"], instance_id=instance["id"])
    assert naming.overlay_volume_name(tags) not in volumes


@pytest.mark.xdist_group("e2e-tiers")
def test_app_and_db_tiers_build_side_by_side(api, member, project, demo_catalog):
    """Two stacks launched at once (two workers, two base images) each serve their own tier's page."""
    user = api(member)
    urls = {}
    for identifier in ("demo-app", "demo-db"):
        body = {"name": identifier, "project": project.pk, "appliance": demo_catalog[identifier].pk, "lease": 900}
        response = user.post("/api/v1/stacks/", body, format="json")
        assert response.status_code == 202, response.content
        urls[identifier] = f"/api/v1/stacks/{response.json()['id']}/"
    for identifier, url in urls.items():
        stack = _wait_for_status(user, url, field="status", done=("running", "error"), timeout=180)
        assert stack["status"] == "running", stack["status_reason"]
        (endpoint,) = stack["endpoints"]
        assert endpoint["guest_port"] == {"demo-app": 8080, "demo-db": 5432}[identifier]
        page = wait_for(partial(page_text, endpoint["url"]), timeout=120, interval=0.5, what=f"{identifier} page")
        assert f"{identifier} appliance" in page
    for url in urls.values():
        assert user.delete(url).status_code == 202
    for url in urls.values():
        gone = _wait_for_status(user, url, field="status", done=("deleted", "error"), timeout=60)
        assert gone["status"] == "deleted", gone["status_reason"]
    with open_driver(SYSTEM_URI) as driver:
        assert _our_domains(driver) == []
