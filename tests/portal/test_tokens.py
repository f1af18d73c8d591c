"""API tokens: issued for a password, stored only as a digest, refused when wrong, expired or orphaned."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from portal.models import ApiToken


@pytest.fixture
def issue(api):
    def issue_for(user, password="pw"):
        return api().post("/api/v1/auth/token/", {"username": user.username, "password": password}, format="json")

    return issue_for


def bearer(api, secret):
    client = api()
    client.credentials(HTTP_AUTHORIZATION=f"Token {secret}")
    return client


def test_password_for_token_then_token_for_api(member, api, issue):
    response = issue(member)
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"token", "expires_at"}
    assert bearer(api, body["token"]).get("/api/v1/stacks/").status_code == 200


def test_only_a_digest_is_stored(member, issue):
    secret = issue(member).json()["token"]
    token = ApiToken.objects.get()
    assert secret not in {token.digest, token.prefix, token.name}
    assert token.prefix == secret[:8]
    assert len(token.digest) == 64


def test_wrong_password_gets_no_token(member, issue):
    assert issue(member, password="nope").status_code == 400
    assert not ApiToken.objects.exists()


@pytest.mark.parametrize("header", ["Token", "Token a b", "Token not-a-real-token"])
def test_malformed_or_unknown_tokens_are_401(api, db, header):
    client = api()
    client.credentials(HTTP_AUTHORIZATION=header)
    response = client.get("/api/v1/stacks/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


def test_expired_token_is_refused(member, api, issue):
    secret = issue(member).json()["token"]
    ApiToken.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert bearer(api, secret).get("/api/v1/stacks/").status_code == 401


def test_token_of_a_deactivated_user_is_refused(member, api, issue):
    secret = issue(member).json()["token"]
    member.is_active = False
    member.save()
    assert bearer(api, secret).get("/api/v1/stacks/").status_code == 401


def test_use_is_recorded(member, api, issue):
    secret = issue(member).json()["token"]
    bearer(api, secret).get("/api/v1/projects/")
    assert ApiToken.objects.get().last_used_at is not None


def test_users_list_and_revoke_only_their_own_tokens(member, outsider, api, issue):
    from portal.models import AuditEvent

    mine = issue(member).json()["token"]
    issue(outsider, password="pw")
    client = bearer(api, mine)
    listed = client.get("/api/v1/tokens/").json()["results"]
    assert [token["prefix"] for token in listed] == [mine[:8]]
    assert "digest" not in listed[0]
    theirs = ApiToken.objects.exclude(user=member).get()
    assert client.delete(f"/api/v1/tokens/{theirs.pk}/").status_code == 404
    assert client.delete(f"/api/v1/tokens/{listed[0]['id']}/").status_code == 204
    assert client.get("/api/v1/projects/").status_code == 401  # the revoked token no longer works
    assert set(AuditEvent.objects.values_list("action", flat=True)) == {"token.issue", "token.revoke"}
