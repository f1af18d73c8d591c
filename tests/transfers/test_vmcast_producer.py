"""A project's own catalog served as a VMcast: the token is the only key, and the feed reads back.

The attacker's side first: no token, a guessed one, an old one after rotation, a revoked one, one
project's token with another project's id, another project's image under a good token, and a
comparison whose time does not depend on the guess. Then the feed itself, read back with the
portal's own parser (the portal consumes its own VMcast), its images and the conditional GETs.
"""

from __future__ import annotations

import hashlib
import hmac
import subprocess
from email.utils import format_datetime
from pathlib import Path

import pytest
from django.test import Client

from catalog.feeds import parse_vmcast
from catalog.models import ApplianceVersion, ImageDelivery
from catalog.own_images import OwnVersion, own_version_add
from portal.models import AuditEvent
from tests.factories import ApplianceVersionFactory, FeedFactory
from transfers import vmcast_producer
from transfers.vmcast_producer import token_matches, vmcast_rotate

HOST = "127.0.0.1:8000"  # the address the feed is fetched at (in ALLOWED_HOSTS; the parser allows loopback)


@pytest.fixture(autouse=True)
def own_cache(settings, tmp_path):
    settings.IMAGE_CACHE_DIR = tmp_path / "cache"
    settings.PORTAL_BASE_URL = "https://portal.example.org"


def _disk(folder: Path, name: str, size_mib: int) -> Path:
    """A real, tiny qcow2: images of different sizes have different bytes."""
    path = folder / name
    subprocess.run(["qemu-img", "create", "-f", "qcow2", str(path), f"{size_mib}M"], check=True, capture_output=True)
    return path


def _own(project, tmp_path, identifier: str, *, size_mib: int = 1, **spec) -> ApplianceVersion:
    source = _disk(tmp_path, f"{identifier}.qcow2", size_mib)
    version = own_version_add(
        project=project, spec=OwnVersion(appliance=identifier, version="1.0", **spec), source=source
    )
    source.unlink()
    return version


@pytest.fixture
def served(project, owner, tmp_path):
    """Project alpha with two ready versions of its own and a VMcast token."""
    db = _own(project, tmp_path, "shop-db", size_mib=2, role="db", service_port=5432, min_ram_mib=256, min_vcpus=2)
    web = _own(project, tmp_path, "shop-web", size_mib=3, role="web", service_port=80, description="The web tier")
    project = vmcast_rotate(user=owner, project=project)
    return {"project": project, "db": db, "web": web}


def _get(path: str, **headers) -> object:
    """As another portal asks: no session, no account."""
    return Client().get(path, headers={"Host": HOST, **headers})


def _feed_path(project, token: str | None = None) -> str:
    return f"/vmcast/{project.pk}/{token or project.vmcast_token}/feed.xml"


def _image_path(project, version, token: str | None = None) -> str:
    return f"/vmcast/{project.pk}/{token or project.vmcast_token}/images/{version.pk}.qcow2"


# --- attackers first ----------------------------------------------------------------------------


def test_a_project_without_a_token_serves_nothing(project, tmp_path):
    version = _own(project, tmp_path, "shop-db")
    assert project.vmcast_token == ""
    for token in ("x", "-" * 43, "None", "null"):
        assert _get(_feed_path(project, token)).status_code == 404
        assert _get(_image_path(project, version, token)).status_code == 404
    assert _get(f"/vmcast/{project.pk}//feed.xml").status_code == 404


def test_a_guessed_or_old_token_is_404_once_rotated(served, owner):
    project = served["project"]
    old = project.vmcast_token
    assert _get(_feed_path(project)).status_code == 200
    guessed = old[:-1] + ("A" if old[-1] != "A" else "B")
    for wrong in (guessed, old[:-1], old + "x", old.upper(), "x" * 43):
        assert _get(_feed_path(project, wrong)).status_code == 404
        assert _get(_image_path(project, served["db"], wrong)).status_code == 404

    project = vmcast_rotate(user=owner, project=project)

    assert project.vmcast_token != old
    assert _get(_feed_path(project, old)).status_code == 404
    assert _get(_image_path(project, served["db"], old)).status_code == 404
    assert _get(_feed_path(project)).status_code == 200
    assert _get(_image_path(project, served["db"])).status_code == 200


def test_a_revoked_token_is_404(served, owner, api):
    project = served["project"]
    token = project.vmcast_token
    assert api(owner).delete(f"/api/v1/projects/{project.pk}/vmcast/").status_code == 204
    assert _get(_feed_path(project, token)).status_code == 404
    assert _get(_image_path(project, served["web"], token)).status_code == 404
    assert api(owner).get(f"/api/v1/projects/{project.pk}/").json()["vmcast_url"] is None


def test_one_projects_token_does_not_open_another_project(served, other_project, outsider, tmp_path):
    project_a = served["project"]
    theirs = _own(other_project, tmp_path, "beta-db", size_mib=4)
    project_b = vmcast_rotate(user=outsider, project=other_project)

    assert _get(_feed_path(project_b, project_a.vmcast_token)).status_code == 404
    assert _get(_image_path(project_b, theirs, project_a.vmcast_token)).status_code == 404
    # A good token names only its own project's versions: B's image under A's token is no address.
    assert _get(_image_path(project_a, theirs)).status_code == 404
    assert _get(f"/vmcast/999999/{project_a.vmcast_token}/feed.xml").status_code == 404


def test_versions_that_are_not_the_projects_own_and_ready_are_not_served(served, project, tmp_path):
    project = served["project"]
    shared = ApplianceVersionFactory(delivered=True)  # the shared catalog's
    subscribed = ApplianceVersionFactory(appliance__feed=FeedFactory(project=project), delivered=True)
    withdrawn = _own(project, tmp_path, "old-db", size_mib=5)
    ApplianceVersion.objects.filter(pk=withdrawn.pk).update(withdrawn=True)
    unfinished = _own(project, tmp_path, "half-db", size_mib=6)
    ImageDelivery.objects.filter(version=unfinished).update(status=ImageDelivery.Status.DOWNLOADING)

    for version in (shared, subscribed, withdrawn, unfinished):
        assert _get(_image_path(project, version)).status_code == 404
    listed = {item.appliance for item in parse_vmcast(_get(_feed_path(project)).content).items}
    assert listed == {"shop-db", "shop-web"}


def test_the_token_is_compared_in_constant_time_whatever_is_wrong(served, monkeypatch):
    project = served["project"]
    compared: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def recording(a, b):
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", recording)
    good = project.vmcast_token
    asks = [good[:1], good[:-1] + "!", "x" * 200, good]
    for token in asks:
        _get(_feed_path(project, token))
    _get(f"/vmcast/999999/{good}/feed.xml")  # no such project: still one comparison
    assert [given for _stored, given in compared] == [t.encode() for t in [*asks, good]]
    assert all(stored == good.encode() for stored, _given in compared[:4])
    assert not token_matches("", "")  # no token made matches nothing, not even nothing
    assert not token_matches("", "-" * 43)


def test_only_owners_make_or_replace_the_token_and_viewers_never_see_it(api, project, owner, member, viewer, outsider):
    url = f"/api/v1/projects/{project.pk}/vmcast/rotate/"
    assert api(outsider).post(url).status_code == 404
    assert api(viewer).post(url).status_code == 403
    assert api(member).post(url).status_code == 403
    assert api(None).post(url).status_code in (401, 403)
    assert api(member).delete(f"/api/v1/projects/{project.pk}/vmcast/").status_code == 403
    assert api(owner).get(f"/api/v1/projects/{project.pk}/").json()["vmcast_url"] is None  # none until made

    made = api(owner).post(url)

    assert made.status_code == 200
    project.refresh_from_db()
    expected = f"https://portal.example.org/vmcast/{project.pk}/{project.vmcast_token}/feed.xml"
    assert made.json() == {"vmcast_url": expected}
    assert api(owner).get(f"/api/v1/projects/{project.pk}/").json()["vmcast_url"] == expected
    assert api(member).get(f"/api/v1/projects/{project.pk}/").json()["vmcast_url"] == expected
    assert api(viewer).get(f"/api/v1/projects/{project.pk}/").json()["vmcast_url"] is None
    assert [row["vmcast_url"] for row in api(viewer).get("/api/v1/projects/").json()["results"]] == [None]
    assert AuditEvent.objects.filter(action="project.vmcast_rotate", actor=owner).count() == 1


# --- the feed -----------------------------------------------------------------------------------


def test_the_feed_reads_back_with_the_portals_own_parser(served):
    project = served["project"]
    answer = _get(_feed_path(project))

    assert answer.status_code == 200
    assert answer["Content-Type"] == "application/rss+xml; charset=utf-8"
    assert "private" in answer["Cache-Control"]
    assert "Set-Cookie" not in answer  # no session was made for the reader
    parsed = parse_vmcast(answer.content)
    items = {item.appliance: item for item in parsed.items}
    assert set(items) == {"shop-db", "shop-web"}
    for name in ("db", "web"):
        version = served[name]
        item = items[f"shop-{name}"]
        image = Client().get(item.url.removeprefix(f"http://{HOST}"), headers={"Host": HOST})
        body = b"".join(image.streaming_content)
        assert item.url == f"http://{HOST}/vmcast/{project.pk}/{project.vmcast_token}/images/{version.pk}.qcow2"
        assert item.sha256 == hashlib.sha256(body).hexdigest()
        assert item.size_bytes == len(body) == Path(version.image.path).stat().st_size
        assert item.disk_format == "qcow2"
        assert item.version == "1.0"
        assert item.virtual_size_bytes == version.image.virtual_size_bytes
        assert (item.min_ram_mib, item.min_vcpus, item.role) == (version.min_ram_mib, version.min_vcpus, name)
    assert items["shop-db"].service_port == 5432
    assert items["shop-web"].description == "The web tier"


def test_an_item_without_a_port_or_with_a_role_no_tier_may_have_still_reads(served, tmp_path):
    project = served["project"]
    _own(project, tmp_path, "plain", size_mib=7, role="Not A Tier!", service_port=None)

    parsed = parse_vmcast(_get(_feed_path(project)).content)

    (plain,) = [item for item in parsed.items if item.appliance == "plain"]
    assert (plain.service_port, plain.role) == (None, "")


def test_the_feed_holds_at_most_what_one_feed_may(served, settings):
    settings.FEED_MAX_ITEMS = 1
    parsed = parse_vmcast(_get(_feed_path(served["project"])).content)
    assert [item.appliance for item in parsed.items] == ["shop-web"]  # the newest


def test_an_unchanged_feed_answers_304_and_a_rotated_one_does_not(served, owner):
    project = served["project"]
    first = _get(_feed_path(project))
    etag, last_modified = first["ETag"], first["Last-Modified"]
    assert etag == f'"{hashlib.sha256(first.content).hexdigest()}"'
    assert last_modified == format_datetime(served["web"].published_at.replace(microsecond=0), usegmt=True)

    again = _get(_feed_path(project), **{"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again["ETag"] == etag
    assert _get(_feed_path(project), **{"If-Modified-Since": last_modified}).status_code == 304
    assert _get(_feed_path(project), **{"If-None-Match": '"something else"'}).status_code == 200

    project = vmcast_rotate(user=owner, project=project)
    fresh = _get(_feed_path(project), **{"If-None-Match": etag})
    assert fresh.status_code == 200
    assert fresh["ETag"] != etag


def test_an_image_is_streamed_with_its_length_and_sha256_as_etag(served):
    project, version = served["project"], served["db"]
    answer = _get(_image_path(project, version))

    assert answer.status_code == 200
    assert answer.streaming
    body = b"".join(answer.streaming_content)
    assert int(answer["Content-Length"]) == len(body) == Path(version.image.path).stat().st_size
    assert answer["ETag"] == f'"{hashlib.sha256(body).hexdigest()}"'
    assert answer["Content-Type"] == "application/x-qemu-disk"
    assert "Set-Cookie" not in answer

    cached = _get(_image_path(project, version), **{"If-None-Match": answer["ETag"]})
    assert cached.status_code == 304
    assert cached["ETag"] == answer["ETag"]
    assert Client().post(_image_path(project, version), headers={"Host": HOST}).status_code == 405


def test_the_digest_is_measured_once_per_file(served, monkeypatch):
    image = served["db"].image
    first = vmcast_producer.served_digest(image)
    measured: list[Path] = []
    real = vmcast_producer.file_sha256

    def counting(path, **kwargs):
        measured.append(path)
        return real(path, **kwargs)

    monkeypatch.setattr(vmcast_producer, "file_sha256", counting)
    assert vmcast_producer.served_digest(image) == first
    assert measured == []
    Path(image.path).write_bytes(Path(image.path).read_bytes() + b"\0" * 512)  # the file changed: measured again
    assert vmcast_producer.served_digest(image) != first
    assert measured == [Path(image.path)]
