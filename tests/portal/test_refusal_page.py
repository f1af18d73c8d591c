"""A portal error no view placed on a form: a page of the portal that says what happened and what helps."""

from __future__ import annotations

import pytest
from django.urls import path

from catalog.errors import CatalogError
from portal import errors
from portal.urls import urlpatterns as portal_urlpatterns


def _raising(exc: errors.PortalError):
    def view(request):
        raise exc

    return view


urlpatterns = [
    path("full/", _raising(errors.NoCapacity("no host has room for 4 vCPUs and 8192 MiB now"))),
    path("moved-on/", _raising(errors.WrongState("the stack is being deleted"))),
    path("publisher/", _raising(CatalogError("the feed answered 500 Internal Server Error"))),
    *portal_urlpatterns,
]


@pytest.fixture
def signed_in(client, member):
    client.force_login(member)
    return client


@pytest.mark.urls(__name__)
@pytest.mark.parametrize(
    ("url", "status", "detail", "next_step"),
    [
        ("/full/", 409, "No host has room for 4 vCPUs", "Trying again in a few minutes may help"),
        ("/moved-on/", 409, "The stack is being deleted", "go back and reload it"),
        ("/publisher/", 502, "The feed answered 500", "publisher is at fault, not you"),
    ],
)
def test_the_refusal_is_a_portal_page_not_plain_text(signed_in, url, status, detail, next_step):
    response = signed_in.get(url)
    assert response.status_code == status
    assert response["Content-Type"].startswith("text/html")
    html = response.content.decode()
    assert "That could not be done" in html
    assert detail in html
    assert next_step in html
    assert 'aria-label="Main"' in html  # the site's navigation, so the reader is not stranded


@pytest.mark.urls(__name__)
def test_the_way_back_is_offered_only_to_a_page_of_this_portal(signed_in):
    ours = signed_in.get("/full/", headers={"Referer": "http://testserver/stacks/"}).content.decode()
    assert 'href="http://testserver/stacks/">Back to the page you came from' in ours
    theirs = signed_in.get("/full/", headers={"Referer": "https://evil.example/phish"}).content.decode()
    assert "evil.example" not in theirs
    assert "Back to the page you came from" not in theirs
