"""The stack page's export panel and each export's live status row."""

from __future__ import annotations

from pathlib import Path

import pytest

from provisioning.models import Stack, Status
from tests.provisioning import conftest as provisioning_fixtures
from transfers import exports
from transfers.models import Export, JobStatus

demo_catalog = provisioning_fixtures.demo_catalog
classic = provisioning_fixtures.classic
shop = provisioning_fixtures.shop

HX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture(autouse=True)
def export_dir(settings, tmp_path) -> Path:
    settings.EXPORT_DIR = tmp_path / "exports"
    return settings.EXPORT_DIR


def _signed_in(client, user):
    client.force_login(user)
    return client


def test_another_tenant_gets_404s(shop, outsider, member, client):
    made = exports.export_stack(user=member, stack=shop)
    client = _signed_in(client, outsider)
    assert client.get(f"/stacks/{shop.pk}/exports/", **HX).status_code == 404
    assert client.post(f"/stacks/{shop.pk}/exports/", {"what": "ova"}, **HX).status_code == 404
    assert client.get(f"/exports/{made.pk}/status/").status_code == 404
    assert Export.objects.count() == 1


def test_signed_out_readers_are_sent_to_sign_in(shop, client):
    answer = client.get(f"/stacks/{shop.pk}/exports/")
    assert answer.status_code == 302
    assert "/login" in answer["Location"] or "next=" in answer["Location"]


def test_a_viewer_sees_no_forms_and_cannot_post(shop, viewer, client):
    client = _signed_in(client, viewer)
    page = client.get(f"/stacks/{shop.pk}/exports/", **HX).content.decode()
    assert "Export stack as OVA" not in page
    assert f"Members of project {shop.project}" in page
    answer = client.post(f"/stacks/{shop.pk}/exports/", {"what": "ova"}, **HX)
    assert "this needs the member role" in answer.content.decode()
    assert not Export.objects.exists()


@pytest.mark.parametrize(
    "form",
    [
        {"what": "disk", "instance": "99999999", "format": "qcow2"},
        {"what": "disk", "instance": "abc", "format": "qcow2"},
        {"what": "disk", "instance": "9" * 40, "format": "qcow2"},
    ],
)
def test_an_instance_of_no_stack_of_yours_is_a_404(shop, member, client, form):
    answer = _signed_in(client, member).post(f"/stacks/{shop.pk}/exports/", form, **HX)
    assert answer.status_code == 404
    assert not Export.objects.exists()


def test_an_instance_of_another_stack_is_a_404(shop, member, client, other_project, outsider, classic, step):
    from provisioning.services.launch import stack_launch_template

    theirs = step(
        lambda: stack_launch_template(
            user=outsider, project=other_project, name="theirs", template=classic, lease_seconds=600
        )
    )
    form = {"what": "disk", "instance": str(theirs.instances.first().pk), "format": "raw"}
    assert _signed_in(client, member).post(f"/stacks/{shop.pk}/exports/", form, **HX).status_code == 404
    assert not Export.objects.exists()


def test_a_bad_format_or_choice_is_said_on_the_panel(shop, member, client):
    client = _signed_in(client, member)
    db = shop.instances.get(role="db")
    page = client.post(f"/stacks/{shop.pk}/exports/", {"what": "disk", "instance": db.pk, "format": "vmdk"}, **HX)
    assert "Could not export: a disk is exported as qcow2 or raw, not &#x27;vmdk&#x27;" in page.content.decode()
    page = client.post(f"/stacks/{shop.pk}/exports/", {"what": "everything"}, **HX)
    assert "Could not export: choose a disk or the whole stack" in page.content.decode()
    assert not Export.objects.exists()


def test_a_busy_stack_offers_no_forms(shop, member, client):
    Stack.objects.filter(pk=shop.pk).update(status=Status.SNAPSHOTTING)
    page = _signed_in(client, member).get(f"/stacks/{shop.pk}/exports/", **HX).content.decode()
    assert "Export stack as OVA" not in page
    assert "can be exported once it runs" in page


def test_a_member_asks_and_the_row_polls_until_ready(shop, member, client, django_capture_on_commit_callbacks):
    client = _signed_in(client, member)
    page = client.get(f"/stacks/{shop.pk}/exports/", **HX).content.decode()
    assert "Export stack as OVA" in page
    for instance in shop.instances.all():
        assert f'Export disk of <span class="text-break">{instance.name}</span>' in page

    page = client.post(f"/stacks/{shop.pk}/exports/", {"what": "ova"}, **HX).content.decode()
    made = Export.objects.get()
    assert "Exporting shop as OVA" in page
    assert f'hx-get="/exports/{made.pk}/status/" hx-trigger="every 1s"' in page

    Export.objects.filter(pk=made.pk).update(status=JobStatus.RUNNING, bytes_done=25, bytes_total=100)
    row = client.get(f"/exports/{made.pk}/status/").content.decode()
    assert 'aria-valuenow="25"' in row
    assert "every 1s" in row

    Export.objects.filter(pk=made.pk).update(status=JobStatus.PENDING)  # back as queued, for the job to take
    assert exports.export_job(export_id=made.pk) == "ready"
    row = client.get(f"/exports/{made.pk}/status/").content.decode()
    assert "every 1s" not in row
    made.refresh_from_db()
    assert f"/exports/{made.pk}/download/{exports.download_secret(made)}/shop.ova" in row
    assert made.sha256 in row


def test_without_htmx_a_post_goes_back_to_the_stack_page(shop, member, client):
    answer = _signed_in(client, member).post(f"/stacks/{shop.pk}/exports/", {"what": "ova"})
    assert answer.status_code == 302
    assert answer["Location"] == f"/stacks/{shop.pk}/"
    page = client.get(f"/stacks/{shop.pk}/exports/").content.decode()
    assert "<html" in page.lower()
    assert "Take it home" in page


def test_the_snippet_loads_the_panel(shop):
    from django.template.loader import render_to_string

    html = render_to_string("transfers/_stack_export.html", {"stack": shop})
    assert f'hx-get="/stacks/{shop.pk}/exports/" hx-trigger="load"' in html
