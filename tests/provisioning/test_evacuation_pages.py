"""The Hosts page's Evacuate and Maintenance buttons, each host's last evacuation on its row, and the
stack page's "Move to another host" panel: operators only, everyone else gets a 404."""

from __future__ import annotations

import re

import pytest
from django.utils import timezone

from provisioning.models import Host, Operation, Status
from provisioning.services.evacuation import begin_evacuation
from tests.factories import HostFactory
from tests.provisioning.test_evacuation import stack_on

HTMX = {"HX-Request": "true"}


@pytest.fixture
def as_operator(client, operator):
    client.force_login(operator)
    return client


def row_of(html: str, host: Host) -> str:
    match = re.search(rf'<tr id="host-{host.pk}"[^>]*>(.*?)</tr>', html, re.S)
    assert match, f"no row for {host.name}"
    return match.group(0)


def buttons(row: str) -> list[str]:
    return [
        re.sub(r"<.*?>.*?</.*?>", "", b).strip() for b in re.findall(r'<button type="submit"[^>]*>(.*?)</button>', row)
    ]


def test_buttons_follow_the_hosts_state(as_operator, db):
    serving = HostFactory(name="hv-a", uri="test:///pages-a")
    draining = HostFactory(name="hv-b", uri="test:///pages-b", draining=True)
    resting = HostFactory(
        name="hv-c",
        uri="test:///pages-c",
        draining=True,
        maintenance=True,
        maintenance_since=timezone.now(),
        healthy=False,
        health_error="",
    )
    html = as_operator.get("/hosts/").content.decode()
    assert buttons(row_of(html, serving)) == ["Refresh", "Drain", "Maintenance"]
    assert buttons(row_of(html, draining)) == ["Refresh", "Undrain", "Evacuate", "Maintenance"]
    assert buttons(row_of(html, resting)) == ["Refresh", "End maintenance"]
    resting_row = row_of(html, resting)
    assert "in maintenance" in resting_row
    assert "not answering, as expected" in resting_row
    assert "unhealthy" not in resting_row
    assert 'hx-confirm="Evacuate hv-b?' in row_of(html, draining)
    assert 'hx-confirm="Put hv-a in maintenance?' in row_of(html, serving)


def test_evacuate_by_htmx_answers_the_row_with_the_outcome(
    as_operator, project, db, django_capture_on_commit_callbacks
):
    host = HostFactory(name="hv-b", uri="test:///pages-b", draining=True)
    stack_on(host, project, "parked", Status.STOPPED)
    with django_capture_on_commit_callbacks(execute=True):
        answer = as_operator.post(f"/hosts/{host.pk}/evacuate/", headers=HTMX)
    html = answer.content.decode()
    assert html.strip().startswith(f'<tr id="host-{host.pk}"')
    assert "Evacuating hv-b (operation" in html
    assert "Evacuation waiting for a worker" in html
    assert 'hx-trigger="every 2s"' in html
    # Once the job has run, the re-read row shows its outcome and what stayed.
    html = as_operator.get(f"/hosts/{host.pk}/row/", headers=HTMX).content.decode()
    assert "hx-get" not in html.split(">", 1)[0]  # it no longer re-reads itself
    assert "Last evacuation" in html
    assert "done in part" in html
    assert "Could not move:" in html
    assert "parked</a>: it is stopped" in html


def test_a_refused_evacuation_says_why_on_the_row(as_operator, db):
    host = HostFactory(name="hv-a", uri="test:///pages-a")
    html = as_operator.post(f"/hosts/{host.pk}/evacuate/", headers=HTMX).content.decode()
    assert "hv-a: hv-a is not draining: drain it first" in html
    assert not Operation.objects.exists()


def test_a_running_evacuation_shows_its_progress_and_rereads_the_row(as_operator, operator, db):
    host = HostFactory(name="hv-b", uri="test:///pages-b", draining=True)
    operation = begin_evacuation(user=operator, host=host)  # pending: its job is not run
    Operation.objects.filter(pk=operation.pk).update(
        status=Operation.State.RUNNING, progress_percent=40, detail="moving shop (2 of 5)"
    )
    row = row_of(as_operator.get("/hosts/").content.decode(), host)
    assert f'hx-get="/hosts/{host.pk}/row/"' in row
    assert 'hx-trigger="every 2s"' in row
    assert "Evacuation running: moving shop (2 of 5)" in row
    assert 'aria-valuenow="40"' in row
    assert buttons(row) == ["Refresh", "Undrain"]  # no second evacuation while one runs
    again = as_operator.get(f"/hosts/{host.pk}/row/", headers=HTMX).content.decode()
    assert again.strip().startswith(f'<tr id="host-{host.pk}"')


def test_maintenance_from_the_page(as_operator, db, django_capture_on_commit_callbacks):
    host = HostFactory(name="hv-a", uri="test:///pages-a")
    with django_capture_on_commit_callbacks(execute=True):
        response = as_operator.post(f"/hosts/{host.pk}/maintenance/")
    host.refresh_from_db()
    assert host.maintenance
    assert host.draining
    row = row_of(as_operator.get(response.url).content.decode(), host)
    assert "hv-a is draining and being evacuated" in row
    assert "In maintenance since" in row
    assert "its libvirtd may be stopped" in row


@pytest.mark.parametrize("who", ["owner", "member", "outsider"])
def test_host_actions_are_not_there_for_others(client, request, who, db):
    client.force_login(request.getfixturevalue(who))
    host = HostFactory(name="hv-b", uri="test:///pages-b", draining=True)
    for action in ("evacuate", "maintenance"):
        assert client.post(f"/hosts/{host.pk}/{action}/").status_code == 404
    assert client.get(f"/hosts/{host.pk}/row/").status_code == 404
    host.refresh_from_db()
    assert not host.maintenance
    assert not Operation.objects.exists()


# The stack page's move panel


def test_the_move_panel_is_for_operators_only(client, member, shop):
    client.force_login(member)
    page = client.get(f"/stacks/{shop.pk}/").content.decode()
    assert 'id="stack-move"' not in page
    assert client.get(f"/stacks/{shop.pk}/move/", headers=HTMX).status_code == 404
    assert client.post(f"/stacks/{shop.pk}/move/", {"host": ""}).status_code == 404
    shop.refresh_from_db()
    assert shop.status == Status.RUNNING


def test_the_move_panel_offers_other_usable_hosts(as_operator, shop, test_host):
    HostFactory(name="hv-free", uri="test:///pages-free")
    HostFactory(name="hv-draining", uri="test:///pages-draining", draining=True)
    page = as_operator.get(f"/stacks/{shop.pk}/").content.decode()
    assert f'hx-get="/stacks/{shop.pk}/move/"' in page
    panel = as_operator.get(f"/stacks/{shop.pk}/move/", headers=HTMX).content.decode()
    options = re.findall(r"<option [^>]*>(.*?)</option>", panel)
    assert options == ["Where placement chooses", "hv-free"]  # not its own host, not a draining one


def test_a_refused_move_says_why_in_place(as_operator, shop, test_host):
    other = HostFactory(name="hv-free", uri="test:///pages-free")
    panel = as_operator.post(f"/stacks/{shop.pk}/move/", {"host": str(other.pk)}, headers=HTMX).content.decode()
    assert 'id="stack-move"' in panel
    # libvirt's test driver moves no running guest: the migration service refuses, the panel says why.
    assert "Could not move shop:" in panel
    assert "cannot move running guests" in panel
    shop.refresh_from_db()
    assert shop.status == Status.RUNNING
    bad = as_operator.post(f"/stacks/{shop.pk}/move/", {"host": "nope"}, headers=HTMX).content.decode()
    assert "Could not move shop: no such host." in bad
