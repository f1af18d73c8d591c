"""Records through the classic three-tier stack on real VMs: posted to web, kept by db, listed by web.

Only web is published. A record POSTed there goes through app to the db's disk before the answer,
so the page fetched right after the answer must already list it, in the order the records came.
"""

from __future__ import annotations

import urllib.request

import pytest

from provisioning.models import Status
from provisioning.services import lifecycle
from tests.e2e.records import launch_classic, post_record
from tests.polling import page_text, wait_for

pytestmark = pytest.mark.e2e


def _get(url: str) -> str:
    """One GET, given more time than polling does: it must answer, and with the records in it."""
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.read().decode()


def test_records_posted_to_web_are_listed_by_web_in_order(
    operator, member, project, inline_demo_catalog, django_capture_on_commit_callbacks
):
    shop = launch_classic(
        operator=operator, member=member, project=project, capture=django_capture_on_commit_callbacks, lease_seconds=900
    )
    (port,) = [p for i in shop.instances.all() for p in i.published_ports.all()]
    names = {instance.role: instance.name for instance in shop.instances.all()}
    # The whole chain answers before any record is sent.
    wait_for(
        lambda: (text := page_text(port.url)) and names["db"] in text and "No records yet." in text,
        timeout=180,
        interval=1,
        what="the web tier's page showing the chain and an empty record list",
    )

    records = ["first: a teapot", "<b>second</b>: 1 kettle & a lid"]
    assert post_record(port.url, "two\nlines") == (400, "a record is one line\n")
    for record in records:
        assert post_record(port.url, record) == (201, "record saved\n")

    page = _get(port.url)
    items = [line for line in page.splitlines() if line.startswith("<li>")]
    assert items == ["<li>first: a teapot</li>", "<li>&lt;b&gt;second&lt;/b&gt;: 1 kettle &amp; a lid</li>"]
    for name in names.values():  # the status chain is still there
        assert name in page

    with django_capture_on_commit_callbacks(execute=True):
        lifecycle.stack_destroy(user=member, stack=shop)
    shop.refresh_from_db()
    assert shop.status == Status.DELETED, shop.status_reason
