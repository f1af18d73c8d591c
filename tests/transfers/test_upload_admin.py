"""Operators see uploads in the admin, read-only: the upload service alone writes them."""

from __future__ import annotations

import pytest

from tests.transfers.upload_helpers import create, use_private_folders
from transfers.models import Upload


@pytest.fixture(autouse=True)
def folders(settings, tmp_path):
    return use_private_folders(settings, tmp_path)


def test_operators_look_at_uploads_but_cannot_add_change_or_delete_them(client, api, member, project, operator):
    upload = Upload.objects.get(pk=create(api(member), project=project, length=10).json()["id"])
    client.force_login(operator)
    listed = client.get("/admin/transfers/upload/")
    assert listed.status_code == 200
    assert "my-web" in listed.content.decode()
    page = client.get(f"/admin/transfers/upload/{upload.pk}/change/")
    assert page.status_code == 200
    assert 'name="status"' not in page.content.decode()  # shown as text, no form field
    assert client.get("/admin/transfers/upload/add/").status_code == 403
    assert client.post(f"/admin/transfers/upload/{upload.pk}/delete/", {"post": "yes"}).status_code == 403
    assert Upload.objects.filter(pk=upload.pk).exists()


def test_members_do_not_reach_the_admin(client, member):
    client.force_login(member)
    assert client.get("/admin/transfers/upload/").status_code == 302
