"""Issuing and checking API tokens. A leaked database row cannot be replayed: only digests are kept."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from portal import audit
from portal.models import ApiToken
from portal.scoping import Account, User

# Writing last_used_at on every request would turn each API read into a write.
_LAST_USED_GRANULARITY = timedelta(minutes=1)


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def token_issue(*, user: Account, name: str = "") -> tuple[ApiToken, str]:
    """Create a token for ``user``; return it with its secret, which is not stored anywhere."""
    secret = secrets.token_urlsafe(32)
    with transaction.atomic():
        token = ApiToken.objects.create(
            user=user,
            name=name[:100],
            prefix=secret[:8],
            digest=_digest(secret),
            expires_at=timezone.now() + timedelta(days=settings.API_TOKEN_DAYS),
        )
        audit.record(actor=user, action="token.issue", target=token)
    return token, secret


def token_revoke(*, actor: User, token: ApiToken) -> None:
    """Delete a token (its owner through the API, or an operator in the admin); it stops working at once."""
    with transaction.atomic():
        audit.record(actor=actor, action="token.revoke", target=token)
        token.delete()


def tokens_revoke_all(*, user: Account, reason: str, actor: User | None = None) -> int:
    """Delete every token of ``user`` at once (each audited as ``token.revoke`` with ``reason``); return how many."""
    with transaction.atomic():
        tokens = list(ApiToken.objects.select_for_update().filter(user=user))
        for token in tokens:
            audit.record(actor=actor, action="token.revoke", target=token, reason=reason)
        ApiToken.objects.filter(pk__in=[token.pk for token in tokens]).delete()
    return len(tokens)


def token_check(secret: str) -> ApiToken | None:
    """The live token behind ``secret``, or None if it is unknown, expired or its user is inactive."""
    token = ApiToken.objects.select_related("user").filter(digest=_digest(secret)).first()
    now = timezone.now()
    if token is None or token.expires_at <= now or not token.user.is_active:
        return None
    if token.last_used_at is None or now - token.last_used_at > _LAST_USED_GRANULARITY:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token
