"""The portal's own 404, 403 and 500 pages (DEBUG is off in tests, as in production)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.template import loader
from django.test import RequestFactory
from django.urls import path
from django.utils import timezone
from django.views.defaults import server_error

from portal.urls import urlpatterns as portal_urlpatterns
from provisioning.models import Stack


def broken_view(request):
    raise RuntimeError("something the portal did not expect")


# The portal's routes plus one that fails, for the 500 tests (see the urls marker below).
urlpatterns = [path("broken/", broken_view), *portal_urlpatterns]


def template_names(response):
    return [template.name for template in response.templates]


def test_debug_is_off():
    assert settings.DEBUG is False


def test_unknown_url_shows_the_styled_404_with_navigation(client, member):
    client.force_login(member)
    response = client.get("/no/such/page/")
    assert response.status_code == 404
    assert "404.html" in template_names(response)
    html = response.content.decode()
    assert "Page not found" in html
    assert 'aria-label="Main"' in html  # the site navigation
    assert 'href="/stacks/"' in html
    assert 'href="/">Back to the dashboard</a>' in html
    assert "/no/such/page/" in html


def test_anonymous_404_offers_sign_in(client, db):
    response = client.get("/no/such/page/")
    assert response.status_code == 404
    html = response.content.decode()
    assert "Page not found" in html
    assert 'href="/login/"' in html


def test_another_projects_stack_is_the_same_404(client, member, other_project):
    stack = Stack.objects.create(project=other_project, name="theirs", expires_at=timezone.now() + timedelta(hours=1))
    client.force_login(member)
    response = client.get(f"/stacks/{stack.pk}/")
    assert response.status_code == 404
    assert "404.html" in template_names(response)
    assert "theirs" not in response.content.decode()


def test_forbidden_action_shows_the_styled_403_with_the_reason(client, project, owner, viewer):
    client.force_login(viewer)
    response = client.post(f"/projects/{project.pk}/members/", {"username": "vera", "role": "owner"})
    assert response.status_code == 403
    assert "403.html" in template_names(response)
    html = response.content.decode()
    assert "this needs the owner role in project alpha: ask one of its owners" in html
    assert 'aria-label="Main"' in html
    assert 'href="/">Back to the dashboard</a>' in html


def test_500_page_renders_without_any_context():
    # Django renders 500.html with an empty context: no request, no user, no messages.
    html = loader.get_template("500.html").render()
    assert "Something went wrong" in html
    assert 'href="/">Back to the dashboard</a>' in html
    assert 'aria-label="Main"' in html


def test_500_handler_uses_the_styled_page():
    response = server_error(RequestFactory().get("/anything/"))
    assert response.status_code == 500
    assert "Something went wrong" in response.content.decode()


@pytest.mark.urls(__name__)
def test_an_exception_in_a_view_answers_the_styled_500(client, member):
    client.raise_request_exception = False
    client.force_login(member)
    response = client.get("/broken/")
    assert response.status_code == 500
    html = response.content.decode()
    assert "Something went wrong" in html
    assert "something the portal did not expect" not in html  # nothing of the error leaks


def api_broken_view(request):
    raise RuntimeError("secret detail of an API failure")


# A plain Django view under /api/: what DRF's handler never sees (a middleware failing is the same).
api_urlpatterns = [path("api/v1/broken/", api_broken_view), *portal_urlpatterns]


@pytest.mark.urls("tests.portal.test_error_pages_api_urls")
def test_an_exception_outside_drf_under_the_api_answers_the_error_body(client, member):
    client.raise_request_exception = False
    client.force_login(member)
    response = client.get("/api/v1/broken/")
    assert response.status_code == 500
    assert response.json()["code"] == "server_error"
    assert "secret detail" not in response.content.decode()
