"""The API tokens page: list your own tokens, create one (its secret shown once), revoke one."""

from __future__ import annotations

import hashlib
import re

import pytest
from django.test import Client

from portal.models import ApiToken, AuditEvent
from portal.tokens import token_issue

SECRET_FIELD = re.compile(r'id="new-token-secret" value="([^"]+)"')


@pytest.fixture
def web(client, member):
    client.force_login(member)
    return client


def test_needs_a_login(client, db):
    response = client.get("/account/tokens/")
    assert response.status_code == 302
    assert response.url.startswith("/login/")


def test_lists_only_the_users_own_tokens(web, member, outsider):
    mine, _ = token_issue(user=member, name="ci pipeline")
    theirs, _ = token_issue(user=outsider, name="oscar's laptop")
    html = web.get("/account/tokens/").content.decode()
    assert "ci pipeline" in html
    assert f"<code>{mine.prefix}…</code>" in html
    assert "never" in html  # not used yet
    assert "oscar&#x27;s laptop" not in html
    assert theirs.prefix not in html


def test_created_token_is_shown_once_and_works(web, member):
    response = web.post("/account/tokens/", {"name": "deploy script"})
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    html = response.content.decode()
    secret = SECRET_FIELD.search(html).group(1)
    token = ApiToken.objects.get(user=member)
    assert token.name == "deploy script"
    assert token.digest == hashlib.sha256(secret.encode()).hexdigest()
    assert "Copy its secret now" in html  # the flash message
    assert 'id="copy-token"' in html
    assert AuditEvent.objects.filter(action="token.issue").count() == 1

    again = web.get("/account/tokens/").content.decode()
    assert secret not in again
    assert "new-token-secret" not in again
    assert "deploy script" in again

    api_client = Client(HTTP_AUTHORIZATION=f"Token {secret}")
    assert api_client.get("/api/v1/tokens/").status_code == 200


def test_a_token_needs_a_name(web, member):
    response = web.post("/account/tokens/", {"name": ""})
    assert response.status_code == 200
    assert "No token was created" in response.content.decode()
    assert not ApiToken.objects.exists()


def test_revoke_asks_first_then_revokes(web, member):
    token, secret = token_issue(user=member, name="old")
    confirm = web.get(f"/account/tokens/{token.pk}/revoke/")
    assert confirm.status_code == 200
    assert "Revoke token" in confirm.content.decode()
    assert ApiToken.objects.filter(pk=token.pk).exists()  # asking changes nothing

    response = web.post(f"/account/tokens/{token.pk}/revoke/", follow=True)
    assert response.redirect_chain[-1][0] == "/account/tokens/"
    assert "Token “old” revoked" in response.content.decode()
    assert not ApiToken.objects.filter(pk=token.pk).exists()
    assert Client(HTTP_AUTHORIZATION=f"Token {secret}").get("/api/v1/tokens/").status_code == 401


@pytest.mark.parametrize("method", ["get", "post"])
def test_another_users_token_is_missing(web, outsider, method):
    theirs, _ = token_issue(user=outsider, name="not yours")
    response = getattr(web, method)(f"/account/tokens/{theirs.pk}/revoke/")
    assert response.status_code == 404
    assert ApiToken.objects.filter(pk=theirs.pk).exists()
    assert not AuditEvent.objects.filter(action="token.revoke").exists()


def test_csrf_is_required(member):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(member)
    token, _ = token_issue(user=member, name="keep")
    assert browser.post("/account/tokens/", {"name": "forged"}).status_code == 403
    assert browser.post(f"/account/tokens/{token.pk}/revoke/").status_code == 403
    assert list(ApiToken.objects.values_list("name", flat=True)) == ["keep"]
