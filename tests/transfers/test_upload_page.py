"""The upload page (/catalog/upload/): who gets the form, what it tells the script, the latest uploads of
the reader's projects, and deleting an unfinished one. (The browser's side: tests/browser/test_upload_page.py.)"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from portal.models import Role
from tests.factories import MembershipFactory, ProjectFactory
from tests.transfers.upload_helpers import create, use_private_folders
from transfers.models import Upload

PAGE = "/catalog/upload/"


@pytest.fixture(autouse=True)
def folders(settings, tmp_path):
    return use_private_folders(settings, tmp_path)


def started(api, user, project, **meta: str) -> Upload:
    response = create(api(user), project=project, length=10, **meta)
    assert response.status_code == 201, response.content
    return Upload.objects.get(pk=response.json()["id"])


def test_signing_in_comes_first(client):
    response = client.get(PAGE)
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_a_viewer_is_told_the_member_role_is_needed_and_gets_no_form(client, viewer):
    client.force_login(viewer)
    html = client.get(PAGE).content.decode()
    assert "needs the member role" in html
    assert 'id="upload-form"' not in html
    assert "upload.js" not in html


def test_a_member_gets_the_form_with_their_projects_only(client, member, project, other_project, settings):
    settings.UPLOAD_CHUNK_BYTES = 128 * 1024
    viewed = ProjectFactory(name="watched")
    MembershipFactory(project=viewed, user=member, role=Role.VIEWER)
    client.force_login(member)
    html = client.get(PAGE).content.decode()
    options = re.findall(r'<option value="(\d+)"[^>]*>([^<]+)</option>', html)
    assert options == [(str(project.pk), "alpha")]
    assert 'data-endpoint="/api/v1/uploads/"' in html
    assert 'data-chunk-bytes="131072"' in html
    assert f'data-max-bytes="{settings.IMAGE_MAX_BYTES}"' in html
    # No inline script: the page's code is a file, its settings are data attributes.
    assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", html) == []
    assert "vendor/tus/tus.min.js" in html
    assert "js/upload.js" in html


def test_the_project_can_be_chosen_in_the_address(client, member, project):
    second = ProjectFactory(name="zeta")
    MembershipFactory(project=second, user=member, role=Role.MEMBER)
    client.force_login(member)
    html = client.get(PAGE, {"project": second.pk}).content.decode()
    assert f'<option value="{second.pk}" selected>' in html
    html = client.get(PAGE, {"project": "nonsense"}).content.decode()
    assert f'<option value="{project.pk}" selected>' in html


def test_the_list_holds_the_readers_projects_uploads_only(client, api, member, outsider, project, other_project):
    started(api, member, project, appliance="ours", version="1")
    started(api, outsider, other_project, appliance="theirs", version="1")
    client.force_login(member)
    html = client.get(PAGE).content.decode()
    assert "ours 1" in html
    assert "theirs" not in html


def test_another_projects_upload_cannot_be_deleted_from_the_page(client, api, member, outsider, project):
    upload = started(api, member, project)
    client.force_login(outsider)
    assert client.post(f"/catalog/upload/{upload.pk}/delete/").status_code == 404
    assert Upload.objects.filter(pk=upload.pk).exists()
    assert Path(upload.path).exists()


def test_deleting_needs_a_post(client, api, member, project):
    upload = started(api, member, project)
    client.force_login(member)
    assert client.get(f"/catalog/upload/{upload.pk}/delete/").status_code == 405
    assert Upload.objects.filter(pk=upload.pk).exists()


def test_an_unfinished_upload_is_deleted_from_the_page(client, api, member, project):
    upload = started(api, member, project, appliance="web", version="2")
    client.force_login(member)
    assert f"/catalog/upload/{upload.pk}/delete/" in client.get(PAGE).content.decode()
    response = client.post(f"/catalog/upload/{upload.pk}/delete/", follow=True)
    assert "The upload of web 2 was deleted." in response.content.decode()
    assert not Upload.objects.filter(pk=upload.pk).exists()
    assert not Path(upload.path).exists()


def test_an_upload_being_checked_is_not_deleted_and_the_page_says_why(client, api, member, project):
    upload = started(api, member, project)
    Upload.objects.filter(pk=upload.pk).update(status=Upload.Status.PROCESSING)
    client.force_login(member)
    response = client.post(f"/catalog/upload/{upload.pk}/delete/", follow=True)
    assert "being checked and converted" in response.content.decode()
    assert Upload.objects.filter(pk=upload.pk).exists()
