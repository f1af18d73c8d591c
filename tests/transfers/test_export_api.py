"""The exports API and the signed download, from the outsider's side first."""

from __future__ import annotations

import base64
import hashlib
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from portal.models import Project
from provisioning.models import Stack, Status
from tests.provisioning import conftest as provisioning_fixtures
from transfers import exports
from transfers.models import Export, JobStatus

demo_catalog = provisioning_fixtures.demo_catalog
classic = provisioning_fixtures.classic
shop = provisioning_fixtures.shop


@pytest.fixture(autouse=True)
def export_dir(settings, tmp_path) -> Path:
    settings.EXPORT_DIR = tmp_path / "exports"
    return settings.EXPORT_DIR


def _instance_url(instance) -> str:
    return f"/api/v1/instances/{instance.pk}/export/"


def _stack_url(stack) -> str:
    return f"/api/v1/stacks/{stack.pk}/export/"


@pytest.fixture
def ready(shop, member, api, django_capture_on_commit_callbacks) -> dict:
    """A finished qcow2 export of the web tier, as its member reads it from the API."""
    web = shop.instances.get(role="web")
    with django_capture_on_commit_callbacks(execute=True):
        answer = api(member).post(_instance_url(web), {"format": "qcow2"}, format="json")
    assert answer.status_code == 202, answer.content
    body = api(member).get(f"/api/v1/exports/{answer.json()['id']}/").json()
    assert body["status"] == "ready", body
    return body


def _path_of(url: str) -> str:
    return url.removeprefix("http://testserver")


# --- refusals ---------------------------------------------------------------------------------------


def test_another_tenant_cannot_export_or_see_your_things(shop, outsider, api, ready):
    db = shop.instances.get(role="db")
    client = api(outsider)
    assert client.post(_instance_url(db), {"format": "raw"}, format="json").status_code == 404
    assert client.post(_stack_url(shop)).status_code == 404
    assert client.get(f"/api/v1/exports/{ready['id']}/").status_code == 404
    assert client.delete(f"/api/v1/exports/{ready['id']}/").status_code == 404
    assert client.get("/api/v1/exports/").json()["results"] == []
    assert Export.objects.count() == 1


def test_anonymous_callers_are_refused(shop, api):
    assert api().post(_stack_url(shop)).status_code in (401, 403)
    assert api().get("/api/v1/exports/").status_code in (401, 403)


def test_a_viewer_is_refused_with_403_and_sees_no_exports(shop, viewer, api, ready):
    client = api(viewer)
    answer = client.post(_instance_url(shop.instances.get(role="db")), {"format": "qcow2"}, format="json")
    assert answer.status_code == 403
    assert answer.json()["code"] == "permission_denied"
    assert client.post(_stack_url(shop)).status_code == 403
    assert client.get("/api/v1/exports/").json()["results"] == []


@pytest.mark.parametrize("body", [{"format": "ova"}, {"format": "vmdk"}, {"format": ""}, {"format": ["raw"]}])
def test_a_bad_format_is_a_400_on_its_field(shop, member, api, body):
    answer = api(member).post(_instance_url(shop.instances.get(role="db")), body, format="json")
    assert answer.status_code == 400
    assert "format" in answer.json()["fields"]
    assert not Export.objects.exists()


def test_over_quota_is_refused_in_words(shop, member, api):
    Project.objects.filter(pk=shop.project_id).update(max_export_gib=0)
    answer = api(member).post(_stack_url(shop))
    assert answer.status_code == 403
    assert answer.json()["code"] == "quota_exceeded"
    assert "may keep 0 GiB of exports" in answer.json()["detail"]


def test_a_busy_stack_is_a_409(shop, member, api):
    Stack.objects.filter(pk=shop.pk).update(status=Status.STOPPING)
    answer = api(member).post(_stack_url(shop))
    assert answer.status_code == 409
    assert answer.json()["detail"] == "the stack is stopping: it can be exported when it is running, stopped, shelved"


# --- the export as the API shows it -------------------------------------------------------------------


def test_an_accepted_export_says_where_it_stands(shop, member, api):
    answer = api(member).post(_stack_url(shop))  # its job waits: no commit in this test's transaction
    assert answer.status_code == 202
    body = answer.json()
    assert body["status"] == "pending"
    assert body["format"] == "ova"
    assert body["source_name"] == shop.name
    assert body["bytes_total"] > 0
    assert body["download_url"] is None
    assert api(member).get("/api/v1/exports/").json()["results"][0]["id"] == body["id"]


def test_a_ready_export_has_its_checksum_and_download_url(ready, shop):
    export = Export.objects.get(pk=ready["id"])
    assert ready["sha256"] == export.sha256
    assert ready["size_bytes"] == export.size_bytes > 0
    assert ready["bytes_done"] == ready["bytes_total"]
    assert ready["expires_at"]
    assert ready["download_url"].startswith(f"http://testserver/exports/{export.pk}/download/")
    assert ready["download_url"].endswith(f"/{shop.instances.get(role='web').name}.qcow2")


def test_the_list_filters_by_stack_and_rejects_nonsense(ready, member, api, shop):
    client = api(member)
    assert [e["id"] for e in client.get(f"/api/v1/exports/?stack={shop.pk}").json()["results"]] == [ready["id"]]
    assert client.get(f"/api/v1/exports/?stack={shop.pk + 1000}").json()["results"] == []
    assert client.get("/api/v1/exports/?stack=abc").status_code == 400
    assert client.get("/api/v1/exports/?stack=").status_code == 400


def test_a_member_deletes_a_finished_export(ready, member, api, export_dir):
    assert api(member).delete(f"/api/v1/exports/{ready['id']}/").status_code == 204
    assert not Export.objects.exists()
    assert not any(p.is_file() for p in export_dir.rglob("*"))


# --- the download ----------------------------------------------------------------------------------------


def test_the_download_streams_the_file_without_a_session(ready, client):
    export = Export.objects.get(pk=ready["id"])
    answer = client.get(_path_of(ready["download_url"]))
    assert answer.status_code == 200
    body = b"".join(answer.streaming_content)
    assert body == Path(export.path).read_bytes()
    assert int(answer["Content-Length"]) == export.size_bytes
    assert answer["Content-Disposition"].startswith("attachment;")
    assert export.source_name in answer["Content-Disposition"]
    digest = base64.b64encode(hashlib.sha256(body).digest()).decode()
    assert answer["Repr-Digest"] == f"sha-256=:{digest}:"
    assert answer["Cache-Control"] == "private, no-store"


@pytest.mark.parametrize(
    "change",
    [
        lambda url, pk, secret: url.replace(secret, "0" * 64),
        lambda url, pk, secret: url.replace(secret, secret[:-1]),
        lambda url, pk, secret: url.replace(secret, secret.upper()),
        lambda url, pk, secret: url.replace(f"/exports/{pk}/", f"/exports/{pk + 1}/"),
    ],
)
def test_a_wrong_secret_or_id_is_a_404(ready, client, change):
    export = Export.objects.get(pk=ready["id"])
    secret = exports.download_secret(export)
    url = change(_path_of(ready["download_url"]), export.pk, secret)
    assert client.get(url).status_code == 404


def test_one_exports_secret_does_not_open_another(ready, shop, member, client):
    other = Export.objects.create(
        project=shop.project,
        stack=shop,
        source_name="other",
        format="raw",
        status=JobStatus.READY,
        path=Export.objects.get(pk=ready["id"]).path,
        download_token="b" * 64,
        expires_at=timezone.now() + timedelta(hours=1),
    )
    secret = exports.download_secret(Export.objects.get(pk=ready["id"]))
    assert client.get(f"/exports/{other.pk}/download/{secret}/other.raw").status_code == 404


def test_an_export_not_ready_is_a_404_even_with_its_secret(shop, member, client):
    made = exports.export_stack(user=member, stack=shop)
    assert client.get(f"/exports/{made.pk}/download/{exports.download_secret(made)}/x.ova").status_code == 404


def test_an_expired_export_is_a_410_and_so_after_the_sweep(ready, client):
    url = _path_of(ready["download_url"])
    Export.objects.filter(pk=ready["id"]).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert client.get(url).status_code == 410
    exports.sweep_exports()
    assert client.get(url).status_code == 410


def test_a_new_token_revokes_the_url(ready, client):
    url = _path_of(ready["download_url"])
    Export.objects.filter(pk=ready["id"]).update(download_token="c" * 64)
    assert client.get(url).status_code == 404


def test_an_expired_export_says_so_in_the_api(ready, member, api):
    Export.objects.filter(pk=ready["id"]).update(expires_at=timezone.now() - timedelta(seconds=1))
    body = api(member).get(f"/api/v1/exports/{ready['id']}/").json()
    assert body["status"] == "expired"
    assert body["download_url"] is None
