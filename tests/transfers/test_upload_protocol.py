"""The tus endpoint (/api/v1/uploads/): what it refuses, to whom it answers, and the protocol's headers.

Refusals come first, from the side of a client that sends the wrong thing or names what is not
its own; then the protocol as a well-behaved client sees it.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import io
import os
from datetime import timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest
from django.test import Client
from django.utils import timezone

from portal import errors
from portal.models import AuditEvent
from portal.tokens import token_issue
from tests.transfers.upload_helpers import (
    ENDPOINT,
    OFFSET_TYPE,
    TUS,
    create,
    head,
    metadata_header,
    own_version,
    patch,
    use_private_folders,
)
from transfers import tus, uploads
from transfers.models import Upload


@pytest.fixture(autouse=True)
def folders(settings, tmp_path):
    return use_private_folders(settings, tmp_path)


@pytest.fixture
def client(api, member):
    return api(member)


def started(client, project, length: int = 10, **meta: str) -> tuple[str, Upload]:
    response = create(client, project=project, length=length, **meta)
    assert response.status_code == 201, response.content
    return response["Location"], Upload.objects.get(pk=response.json()["id"])


def held(upload: Upload) -> bytes:
    return Path(upload.path).read_bytes()


# Creation: refusals.


@pytest.mark.parametrize("version", [None, "0.2.2", "1.0", ""])
def test_a_creation_without_tus_1_0_0_is_refused_with_412_naming_the_version(client, project, version):
    extra = {} if version is None else {"HTTP_TUS_RESUMABLE": version}
    header = metadata_header(project=str(project.pk), appliance="my-web", version="1.0")
    response = client.post(ENDPOINT, HTTP_UPLOAD_LENGTH="10", HTTP_UPLOAD_METADATA=header, **extra)
    assert response.status_code == 412
    assert response["Tus-Version"] == "1.0.0"
    assert response.json()["code"] == "tus_version"
    assert not Upload.objects.exists()


@pytest.mark.parametrize("length", [None, "", "-1", "1e3", "0x10", "ten", "12345678901234567890"])
def test_a_creation_without_a_readable_length_is_refused(client, project, length):
    header = metadata_header(project=str(project.pk), appliance="my-web", version="1.0")
    extra = {} if length is None else {"HTTP_UPLOAD_LENGTH": length}
    response = client.post(ENDPOINT, HTTP_UPLOAD_METADATA=header, **TUS, **extra)
    assert response.status_code == 400, response.content
    assert list(response.json()["fields"]) == ["Upload-Length"]
    assert not Upload.objects.exists()


def test_an_empty_file_is_refused(client, project):
    response = create(client, project=project, length=0)
    assert response.status_code == 400
    assert response.json()["fields"] == {"Upload-Length": ["the file is empty"]}


def test_a_file_over_the_size_limit_is_refused_with_413(client, project, settings):
    settings.IMAGE_MAX_BYTES = 1000
    response = create(client, project=project, length=1001)
    assert response.status_code == 413
    assert response.json()["code"] == "too_large"
    assert not Upload.objects.exists()
    assert create(client, project=project, length=1000).status_code == 201


def test_a_deferred_length_and_a_body_on_creation_are_refused(client, project):
    header = metadata_header(project=str(project.pk), appliance="my-web", version="1.0")
    deferred = client.post(ENDPOINT, HTTP_UPLOAD_DEFER_LENGTH="1", HTTP_UPLOAD_METADATA=header, **TUS)
    assert deferred.status_code == 400
    with_body = client.generic(
        "POST", ENDPOINT, b"data", content_type=OFFSET_TYPE, HTTP_UPLOAD_LENGTH="4", HTTP_UPLOAD_METADATA=header, **TUS
    )
    assert with_body.status_code == 400
    assert not Upload.objects.exists()


@pytest.mark.parametrize(
    ("header", "field"),
    [
        ("project !!!notbase64", "Upload-Metadata"),
        ("project MQ==,project Mg==", "Upload-Metadata"),  # a key twice
        ("project MQ== extra", "Upload-Metadata"),
        ("project /w==", "Upload-Metadata"),  # base64 of a byte that is no UTF-8
        ("x" * 5000, "Upload-Metadata"),
    ],
)
def test_unreadable_metadata_is_refused(client, project, header, field):
    response = client.post(ENDPOINT, HTTP_UPLOAD_LENGTH="10", HTTP_UPLOAD_METADATA=header, **TUS)
    assert response.status_code == 400, response.content
    assert list(response.json()["fields"]) == [field]


@pytest.mark.parametrize(
    ("values", "fields"),
    [
        ({"appliance": "my-web", "version": "1.0"}, ["project"]),
        ({"project": "abc", "appliance": "my-web", "version": "1.0"}, ["project"]),
        ({"project": "99999999999999999999", "appliance": "my-web", "version": "1.0"}, ["project"]),
        ({"project": "{p}", "appliance": "My Web", "version": "1.0"}, ["appliance"]),
        ({"project": "{p}", "appliance": "../../etc", "version": "1.0"}, ["appliance"]),
        ({"project": "{p}", "appliance": "-web", "version": "1.0"}, ["appliance"]),
        ({"project": "{p}", "appliance": "a" * 101, "version": "1.0"}, ["appliance"]),
        ({"project": "{p}", "appliance": "my-web", "version": ""}, ["version"]),
        ({"project": "{p}", "appliance": "my-web", "version": "1.0/../2"}, ["version"]),
        ({"project": "{p}", "appliance": "my-web", "version": "1" * 51}, ["version"]),
        ({"project": "{p}", "appliance": "my-web", "version": "1.0", "title": "bad\x00title"}, ["title"]),
        ({"project": "{p}", "appliance": "", "version": ""}, ["appliance", "version"]),
    ],
)
def test_metadata_that_names_nothing_usable_is_refused_naming_each_field(client, project, values, fields):
    given = {key: value.replace("{p}", str(project.pk)) for key, value in values.items()}
    response = client.post(ENDPOINT, HTTP_UPLOAD_LENGTH="10", HTTP_UPLOAD_METADATA=metadata_header(**given), **TUS)
    assert response.status_code == 400, response.content
    assert sorted(response.json()["fields"]) == sorted(fields)
    assert not Upload.objects.exists()


def test_another_tenants_project_and_an_unknown_one_answer_the_same_404(client, project, other_project):
    theirs = create(client, project=other_project, length=10)
    unknown = create(client, project=str(other_project.pk + project.pk + 1000), length=10)
    assert theirs.status_code == unknown.status_code == 404
    assert theirs.json() == unknown.json() == {"code": "not_found", "detail": "no such project"}
    assert not Upload.objects.exists()


def test_a_viewer_may_not_upload(api, viewer, project):
    response = create(api(viewer), project=project, length=10)
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"


def test_a_name_the_projects_own_catalog_has_is_refused_at_creation(client, project):
    own_version(project, appliance="my-web", version="1.0")
    response = create(client, project=project, length=10, appliance="my-web", version="1.0")
    assert response.status_code == 400
    assert response.json()["fields"] == {
        "version": ["appliance 'my-web' already has a version '1.0' in this project's catalog"]
    }
    assert create(client, project=project, length=10, appliance="my-web", version="1.1").status_code == 201


def test_the_same_name_in_another_projects_catalog_does_not_count(client, project, other_project):
    own_version(other_project, appliance="my-web", version="1.0")
    assert create(client, project=project, length=10, appliance="my-web", version="1.0").status_code == 201


def test_a_name_another_unfinished_upload_brings_is_refused(client, project):
    started(client, project, appliance="my-web", version="1.0")
    response = create(client, project=project, length=10, appliance="my-web", version="1.0")
    assert response.status_code == 400
    assert "another upload" in response.json()["fields"]["version"][0]


def test_a_project_has_at_most_its_limit_of_unfinished_uploads(client, project, settings):
    settings.UPLOADS_PER_PROJECT = 2
    first, _ = started(client, project, version="1")
    _, second = started(client, project, version="2")
    refused = create(client, project=project, length=10, version="3")
    assert refused.status_code == 403
    assert refused.json()["code"] == "quota_exceeded"
    # An expired upload holds no place; neither does one deleted.
    Upload.objects.filter(pk=second.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert create(client, project=project, length=10, version="3").status_code == 201
    assert client.delete(first, **TUS).status_code == 204
    assert create(client, project=project, length=10, version="4").status_code == 201


def test_a_caller_who_is_not_signed_in_is_refused(api, project):
    assert create(api(None), project=project, length=10).status_code == 401
    assert not Upload.objects.exists()


def test_a_browser_session_needs_its_csrf_token(member, project):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(member)
    assert browser.get("/catalog/upload/").status_code == 200
    refused = create(browser, project=project, length=10)
    assert refused.status_code == 403
    assert not Upload.objects.exists()
    token = browser.cookies["csrftoken"].value
    header = metadata_header(project=str(project.pk), appliance="my-web", version="1.0")
    accepted = browser.post(
        ENDPOINT, HTTP_UPLOAD_LENGTH="10", HTTP_UPLOAD_METADATA=header, HTTP_X_CSRFTOKEN=token, **TUS
    )
    assert accepted.status_code == 201, accepted.content
    url = accepted["Location"]
    assert patch(browser, url, b"abc", offset=0).status_code == 403  # every write needs it
    assert patch(browser, url, b"abc", offset=0, HTTP_X_CSRFTOKEN=token).status_code == 204


def test_a_script_with_an_api_token_needs_no_csrf_token(member, project):
    _, secret = token_issue(user=member, name="uploads")
    script = Client(enforce_csrf_checks=True, HTTP_AUTHORIZATION=f"Token {secret}")
    response = create(script, project=project, length=3)
    assert response.status_code == 201
    assert patch(script, response["Location"], b"abc", offset=0).status_code == 204


# Appending: refusals.


def test_a_patch_at_the_wrong_offset_is_refused_with_409_and_writes_nothing(client, project):
    url, upload = started(client, project, length=10)
    response = patch(client, url, b"abcd", offset=3)
    assert response.status_code == 409
    assert response.json()["code"] == "offset_mismatch"
    assert held(upload) == b""
    assert patch(client, url, b"abcd", offset=0).status_code == 204
    again = patch(client, url, b"abcd", offset=0)  # the same part sent twice
    assert again.status_code == 409
    assert held(upload) == b"abcd"


def test_a_patch_without_tus_resumable_is_refused_with_412(client, project):
    url, upload = started(client, project)
    response = client.generic("PATCH", url, b"abc", content_type=OFFSET_TYPE, HTTP_UPLOAD_OFFSET="0")
    assert response.status_code == 412
    assert response["Tus-Version"] == "1.0.0"
    assert held(upload) == b""


@pytest.mark.parametrize("content_type", ["application/octet-stream", "application/json", "text/plain"])
def test_a_patch_of_another_content_type_is_refused_with_415(client, project, content_type):
    url, upload = started(client, project)
    response = client.generic("PATCH", url, b"abc", content_type=content_type, HTTP_UPLOAD_OFFSET="0", **TUS)
    assert response.status_code == 415
    assert held(upload) == b""


def test_a_patch_without_its_size_is_refused_with_411(client, project):
    url, upload = started(client, project)
    response = patch(client, url, b"abc", offset=0, CONTENT_LENGTH="")
    assert response.status_code == 411
    assert held(upload) == b""


@pytest.mark.parametrize("offset_header", ["", "-1", "abc", "1.5"])
def test_a_patch_without_a_readable_offset_is_refused(client, project, offset_header):
    url, _ = started(client, project)
    response = client.generic("PATCH", url, b"abc", content_type=OFFSET_TYPE, HTTP_UPLOAD_OFFSET=offset_header, **TUS)
    assert response.status_code == 400
    assert list(response.json()["fields"]) == ["Upload-Offset"]


def test_a_patch_past_upload_length_is_refused_with_413_and_writes_nothing(client, project):
    url, upload = started(client, project, length=10)
    assert patch(client, url, b"x" * 11, offset=0).status_code == 413
    assert held(upload) == b""
    assert patch(client, url, b"x" * 5, offset=0).status_code == 204
    refused = patch(client, url, b"y" * 6, offset=5)
    assert refused.status_code == 413
    assert refused.json()["code"] == "too_large"
    assert held(upload) == b"x" * 5
    assert head(client, url)["Upload-Offset"] == "5"


def test_a_patch_over_the_part_limit_is_refused_with_413(client, project, settings):
    settings.UPLOAD_CHUNK_BYTES = 64 * 1024
    url, upload = started(client, project, length=1024 * 1024)
    response = patch(client, url, b"x" * (64 * 1024 + 1), offset=0)
    assert response.status_code == 413
    assert str(64 * 1024) in response.json()["detail"]
    assert held(upload) == b""
    assert patch(client, url, b"x" * (64 * 1024), offset=0).status_code == 204


def test_another_projects_upload_answers_404_to_every_method(api, member, outsider, viewer, project):
    url, upload = started(api(member), project, length=10)
    for stranger in (api(outsider), api(viewer)):
        assert stranger.get(url).status_code == 404
        assert head(stranger, url).status_code == 404
        assert patch(stranger, url, b"abc", offset=0).status_code == 404
        assert stranger.delete(url, **TUS).status_code == 404
        assert stranger.get(ENDPOINT).json()["results"] == []
    assert held(upload) == b""
    assert Upload.objects.filter(pk=upload.pk).exists()
    assert api(member).get(url).status_code == 200


def test_an_id_that_is_no_upload_answers_404(client):
    assert client.get(f"{ENDPOINT}00000000-0000-0000-0000-000000000000/").status_code == 404
    assert client.get(f"{ENDPOINT}not-a-uuid/").status_code == 404


def test_a_checksum_that_does_not_match_is_refused_with_460_and_keeps_nothing(client, project):
    url, upload = started(client, project, length=6)
    wrong = base64.b64encode(hashlib.sha1(b"other", usedforsecurity=False).digest()).decode()
    response = patch(client, url, b"abc", offset=0, HTTP_UPLOAD_CHECKSUM=f"sha1 {wrong}")
    assert response.status_code == 460
    assert held(upload) == b""
    right = base64.b64encode(hashlib.sha256(b"abc").digest()).decode()
    assert patch(client, url, b"abc", offset=0, HTTP_UPLOAD_CHECKSUM=f"sha256 {right}").status_code == 204
    assert held(upload) == b"abc"


@pytest.mark.parametrize("checksum", ["crc32 AAAA", "sha1", "sha1 !!!", "sha1 AAAA"])
def test_a_checksum_header_that_cannot_be_checked_is_refused(client, project, checksum):
    url, upload = started(client, project)
    response = patch(client, url, b"abc", offset=0, HTTP_UPLOAD_CHECKSUM=checksum)
    assert response.status_code == 400
    assert held(upload) == b""


def test_an_expired_upload_answers_410_and_its_file_is_removed(client, project):
    url, upload = started(client, project, length=10)
    assert patch(client, url, b"abc", offset=0).status_code == 204
    Upload.objects.filter(pk=upload.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert head(client, url).status_code == 410
    assert head(client, url).status_code == 410
    assert patch(client, url, b"def", offset=3).status_code == 410
    assert not Path(upload.path).exists()
    shown = client.get(url).json()
    assert shown["status"] == "failed"
    assert shown["error"] == "the upload was not finished before it expired; start it again"


def test_a_second_writer_is_told_to_wait_with_423(client, project):
    url, upload = started(client, project, length=10)
    with open(upload.path, "ab") as other_writer:
        fcntl.flock(other_writer, fcntl.LOCK_EX)
        response = patch(client, url, b"abc", offset=0)
    assert response.status_code == 423
    assert held(upload) == b""
    assert patch(client, url, b"abc", offset=0).status_code == 204


def test_a_body_cut_short_keeps_what_arrived_so_the_client_can_resume(client, project, member):
    _, upload = started(client, project, length=10)

    class Cut(io.BytesIO):
        """Gives four bytes, then fails like a connection that went away."""

        def read(self, size=-1):
            if self.tell() >= 4:
                raise OSError("connection reset")
            return super().read(min(size, 4 - self.tell()))

    with pytest.raises(errors.Invalid, match="ended after 4 of 8 bytes; 4 were kept"):
        uploads.upload_append(upload=upload, offset=0, length=8, stream=Cut(b"abcdefgh"))
    assert held(upload) == b"abcd"
    upload.refresh_from_db()
    assert upload.offset == 4
    # With a checksum, a part is kept whole or not at all.
    checksum = tus.Checksum("sha1", hashlib.sha1(b"efghij", usedforsecurity=False).digest())
    with pytest.raises(errors.Invalid):
        uploads.upload_append(upload=upload, offset=4, length=6, stream=io.BytesIO(b"efg"), checksum=checksum)
    assert held(upload) == b"abcd"


# The protocol as a client sees it.


def test_options_tells_the_version_extensions_limit_and_checksums(client, settings):
    response = client.options(ENDPOINT)
    assert response.status_code == 204
    assert response["Tus-Version"] == "1.0.0"
    assert response["Tus-Extension"] == "creation,termination,expiration,checksum"
    assert response["Tus-Max-Size"] == str(settings.IMAGE_MAX_BYTES)
    assert response["Tus-Checksum-Algorithm"] == "sha1,sha256,md5"


def test_creation_answers_201_with_the_address_and_the_expiry(client, project, member, settings):
    response = create(client, project=project, length=10, title="My web server", filename="C:\\disks\\web.qcow2")
    assert response.status_code == 201
    body = response.json()
    upload = Upload.objects.get(pk=body["id"])
    assert response["Location"] == f"/api/v1/uploads/{upload.pk}/"
    assert response["Tus-Resumable"] == "1.0.0"
    expires = parsedate_to_datetime(response["Upload-Expires"])
    assert abs((expires - upload.expires_at).total_seconds()) < 1
    kept = (upload.expires_at - upload.created_at).total_seconds()
    assert abs(kept - settings.UPLOAD_KEEP_SECONDS) < 60
    assert (body["status"], body["offset"], body["length"], body["version_id"]) == ("receiving", 0, 10, None)
    assert (upload.created_by, upload.title, upload.filename) == (member, "My web server", "web.qcow2")
    path = Path(upload.path)
    assert path.parent == settings.UPLOAD_DIR
    assert path.read_bytes() == b""
    assert path.stat().st_mode & 0o777 == 0o600
    assert AuditEvent.objects.filter(action="upload.create", project=project, actor=member).exists()


def test_head_says_where_the_upload_stands(client, project):
    url, _ = started(client, project, length=10, filename="web.qcow2")
    assert patch(client, url, b"abc", offset=0)["Upload-Offset"] == "3"
    response = head(client, url)
    assert response.status_code == 200
    assert (response["Upload-Offset"], response["Upload-Length"]) == ("3", "10")
    assert response["Cache-Control"] == "no-store"
    assert tus.parse_metadata(response["Upload-Metadata"]) == {
        "project": str(project.pk),
        "appliance": "my-web",
        "version": "1.0",
        "filename": "web.qcow2",
    }
    assert client.get(url).json()["offset"] == 3


def test_delete_removes_the_upload_and_its_file(client, project, member):
    url, upload = started(client, project)
    assert patch(client, url, b"abc", offset=0).status_code == 204
    response = client.delete(url, **TUS)
    assert response.status_code == 204
    assert not Path(upload.path).exists()
    assert head(client, url).status_code == 404
    assert AuditEvent.objects.filter(action="upload.delete", actor=member).exists()


def test_an_upload_being_checked_cannot_be_deleted(client, project):
    url, upload = started(client, project)
    Upload.objects.filter(pk=upload.pk).update(status=Upload.Status.PROCESSING)
    response = client.delete(url, **TUS)
    assert response.status_code == 409
    assert Path(upload.path).exists()


def test_the_list_holds_the_callers_projects_uploads(api, member, outsider, project, other_project):
    mine, _ = started(api(member), project)
    started(api(outsider), other_project)
    listed = api(member).get(ENDPOINT).json()["results"]
    assert [f"{ENDPOINT}{row['id']}/" for row in listed] == [mine]
    assert api(member).get(ENDPOINT, {"project": other_project.pk}).json()["results"] == []
    assert api(member).get(ENDPOINT, {"status": "bogus"}).status_code == 400


def test_the_last_byte_queues_the_check_once(client, project, django_capture_on_commit_callbacks):
    url, upload = started(client, project, length=6)
    with django_capture_on_commit_callbacks() as queued:
        assert patch(client, url, b"abc", offset=0).status_code == 204
    assert queued == []
    with django_capture_on_commit_callbacks() as queued:
        assert patch(client, url, b"def", offset=3).status_code == 204
        # Nothing more to send: nothing more happens.
        assert patch(client, url, b"", offset=6, CONTENT_LENGTH="0").status_code == 204
        assert patch(client, url, b"g", offset=6).status_code == 413
    assert len(queued) == 1
    assert client.get(url).json()["status"] == "processing"
    assert head(client, url)["Upload-Offset"] == "6"
    assert os.path.getsize(upload.path) == 6


def test_bytes_all_written_by_a_request_that_died_start_the_checks_when_asked(
    client, project, django_capture_on_commit_callbacks
):
    url, upload = started(client, project, length=6)
    Path(upload.path).write_bytes(b"abcdef")  # as if the process died between its write and its bookkeeping
    with django_capture_on_commit_callbacks() as queued:
        assert head(client, url)["Upload-Offset"] == "6"
    assert len(queued) == 1
    assert client.get(url).json()["status"] == "processing"
