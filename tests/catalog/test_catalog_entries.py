"""The catalog as one entry per appliance (copies from several feeds grouped), a page at a time, and
no Launch for a version that cannot be launched: the reason and what to do are shown instead."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from catalog.image_problems import explain_image_error
from catalog.models import ImageDelivery, image_source_key
from portal.models import AuditEvent
from tests.factories import ApplianceVersionFactory, FeedFactory

CHECKSUM_ERROR = (
    "image for Web 1.0.0: sha256 mismatch: the feed promised "
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa, the download is bbbb"
)


def _titles(response) -> list[str]:
    return [entry.title for entry in response.context["appliances"]]


def _failed(version, error: str = CHECKSUM_ERROR):
    ImageDelivery.objects.create(
        version=version, source=image_source_key(version.image_url), status=ImageDelivery.Status.ERROR, error=error
    )
    return version


def _launch_buttons(html: str) -> set[str]:
    """The versions a Launch button on the page offers."""
    return set(re.findall(r'data-bs-target="#launch-dialog"\s+data-version="(\d+)"', html))


def _copy(feed, identifier: str, title: str, **fields):
    return ApplianceVersionFactory(
        appliance__feed=feed, appliance__identifier=identifier, appliance__title=title, **fields
    )


# -- grouping copies --------------------------------------------------------------------------


def test_one_appliance_offered_by_two_feeds_is_one_entry_naming_both(client, member, project):
    shared = FeedFactory(project=None, title="Shared mirror")
    own = FeedFactory(project=project, title="Our feed")
    _copy(shared, "web", "Web server")
    _copy(own, "web", "Web server")
    client.force_login(member)
    response = client.get("/catalog/")
    html = response.content.decode()
    assert _titles(response) == ["Web server"]
    assert html.count('class="card h-100"') == 1
    assert "1 appliance found" in html
    assert "offered by 2 feeds" in html
    assert "Shared mirror" in html
    assert "Our feed" in html


def test_another_projects_copy_is_neither_counted_nor_named(client, member, other_project):
    _copy(FeedFactory(project=None, title="Shared mirror"), "web", "Web server")
    _copy(FeedFactory(project=other_project, title="Beta's private feed"), "web", "Web server")
    client.force_login(member)
    html = client.get("/catalog/").content.decode()
    assert "offered by" not in html
    assert "Beta&#x27;s private feed" not in html
    assert "Beta's private feed" not in html


def test_different_appliances_sharing_an_identifier_stay_apart(client, member):
    feed = FeedFactory(project=None)
    _copy(feed, "web", "Web server")
    _copy(FeedFactory(project=None), "web", "Webmail")
    client.force_login(member)
    assert _titles(client.get("/catalog/")) == ["Web server", "Webmail"]


@pytest.fixture
def mirrored(db, project):
    """30 appliances, each offered by the shared catalog and by the project's mirror of it."""
    shared, mirror = FeedFactory(project=None), FeedFactory(project=project)
    for number in range(30):
        for feed in (shared, mirror):
            _copy(feed, f"app-{number:02}", f"Appliance {number:02}")


def test_pages_are_cut_over_entries_not_copies(client, member, mirrored):
    client.force_login(member)
    first = client.get("/catalog/")
    assert _titles(first) == [f"Appliance {number:02}" for number in range(12)]
    assert "30 appliances found" in first.content.decode()
    assert first.context["appliance_pages"].page.paginator.num_pages == 3
    third = client.get("/catalog/?page=3")
    assert _titles(third) == [f"Appliance {number:02}" for number in range(24, 30)]


def test_an_entry_costs_the_same_queries_with_many_copies(client, member, project, mirrored):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.force_login(member)
    with CaptureQueriesContext(connection) as one_page:
        client.get("/catalog/?q=Appliance 0")
    for _ in range(3):  # three more mirrors of every appliance
        feed = FeedFactory(project=project)
        for number in range(30):
            _copy(feed, f"app-{number:02}", f"Appliance {number:02}")
    with CaptureQueriesContext(connection) as more_copies:
        response = client.get("/catalog/?q=Appliance 0")
    assert len(more_copies.captured_queries) == len(one_page.captured_queries)
    assert "offered by 5 feeds" in response.content.decode()
    assert "and 1 more feed" in response.content.decode()


# -- versions that cannot be launched -----------------------------------------------------------


def test_a_failed_image_offers_no_launch_but_the_reason_and_a_retry(client, member):
    version = _failed(_copy(FeedFactory(project=None), "web", "Web"))
    client.force_login(member)
    for url in ("/catalog/", f"/catalog/appliances/{version.appliance_id}/"):
        html = client.get(url).content.decode()
        assert str(version.pk) not in _launch_buttons(html), url
        assert "The image failed its checksum" in html
        assert "retry the feed" in html
        assert f'action="/catalog/versions/{version.pk}/download/"' in html


def test_a_withdrawn_version_offers_no_launch(client, member):
    version = _copy(FeedFactory(project=None), "web", "Web", withdrawn=True)
    client.force_login(member)
    html = client.get(f"/catalog/appliances/{version.appliance_id}/").content.decode()
    assert _launch_buttons(html) == set()
    assert "Withdrawn: its feed no longer lists this version" in html
    assert "No version of Web can be launched now" in html


def test_the_entry_offers_the_copy_that_can_be_launched(client, member, project):
    broken = _failed(_copy(FeedFactory(project=None, title="Broken mirror"), "web", "Web"))
    fine = _copy(FeedFactory(project=project, title="Good mirror"), "web", "Web")
    client.force_login(member)
    html = client.get("/catalog/").content.decode()
    assert _launch_buttons(html) == {str(fine.pk)}
    assert str(broken.pk) not in _launch_buttons(html)
    assert "cannot be launched" in html  # the other copy, named inside the entry


def test_the_detail_page_puts_its_launch_above_the_versions(client, member):
    feed = FeedFactory(project=None)
    newest = _copy(feed, "web", "Web", version="2.0", published_at=datetime(2026, 2, 1, tzinfo=UTC))
    ApplianceVersionFactory(appliance=newest.appliance, version="1.0", published_at=datetime(2026, 1, 1, tzinfo=UTC))
    client.force_login(member)
    html = client.get(f"/catalog/appliances/{newest.appliance_id}/").content.decode()
    first_launch = html.index(f'data-version="{newest.pk}"')
    assert first_launch < html.index("<table")
    assert "Newest version you can launch: 2.0" in html


@pytest.mark.parametrize(
    ("error", "summary", "retry"),
    [
        (CHECKSUM_ERROR, "failed its checksum", True),
        ("image for W 1: the image's bytes changed since they were pinned on first download", "changed since", False),
        ("image for W 1: https://x.example/w.qcow2: HTTP 404 Not Found", "no image at its address (HTTP 404)", False),
        ("image for W 1: https://x.example/w.qcow2: HTTP 503 Service Unavailable", "error (HTTP 503)", True),
        ("image for W 1: cannot resolve host 'x.example': Name or service not known", "could not be reached", True),
        ("image for W 1: the image names a backing file; refusing it", "was refused", False),
        ("image for W 1: the image cache is full: ... (PORTAL_IMAGE_CACHE_MAX_BYTES) hold", "store is full", True),
        ("image for W 1: qemu-img convert took longer than 600 s", "could not check or convert", True),
        ("something nobody foresaw", "could not be downloaded", True),
    ],
)
def test_image_errors_are_explained_with_what_to_do(error, summary, retry):
    block = explain_image_error(error)
    assert summary in block.summary
    assert block.advice
    assert block.retry_download is retry
    assert "PORTAL_" not in block.detail


# -- retrying a failed download -----------------------------------------------------------------


def test_retrying_a_failed_download_queues_a_new_one(client, member, project, django_capture_on_commit_callbacks):
    version = _failed(_copy(FeedFactory(project=project), "web", "Web"))
    client.force_login(member)
    with django_capture_on_commit_callbacks(execute=False) as queued:
        response = client.post(f"/catalog/versions/{version.pk}/download/", follow=True)
    assert len(queued) == 1
    delivery = ImageDelivery.objects.get(version=version)
    assert (delivery.status, delivery.error) == (ImageDelivery.Status.QUEUED, "")
    assert "Downloading the image of Web 1.0.0 again" in response.content.decode()
    assert AuditEvent.objects.filter(action="image.retry", actor=member).count() == 1


def test_another_projects_version_cannot_be_retried(client, outsider, project):
    version = _failed(_copy(FeedFactory(project=project), "web", "Web"))
    client.force_login(outsider)
    assert client.post(f"/catalog/versions/{version.pk}/download/").status_code == 404
    assert ImageDelivery.objects.get(version=version).status == ImageDelivery.Status.ERROR


def test_a_viewer_cannot_retry_and_is_told_why(client, viewer, project):
    version = _failed(_copy(FeedFactory(project=project), "web", "Web"))
    client.force_login(viewer)
    response = client.post(f"/catalog/versions/{version.pk}/download/", follow=True)
    assert "needs the member role" in response.content.decode()
    assert ImageDelivery.objects.get(version=version).status == ImageDelivery.Status.ERROR


def test_an_image_that_did_not_fail_is_not_downloaded_again(client, member, project):
    version = _copy(FeedFactory(project=project), "web", "Web", delivered=True)
    client.force_login(member)
    response = client.post(f"/catalog/versions/{version.pk}/download/", follow=True)
    assert "nothing to retry" in response.content.decode()
    assert client.get(f"/catalog/versions/{version.pk}/download/").status_code == 405
