"""One-click lease extensions from a mail: a single-use secret that acts as its recipient on one stack.

The secret is 32 random bytes and only its SHA-256 is stored, so the table alone extends nothing.
A link acts only on the stack it was made for, as the person it was mailed to, through the same
``lifecycle.stack_extend`` as the stack page (which checks that person's role, the stack's state
and the project's policy, and never shortens a lease). Every link of the same person, stack and
lease end counts as one: once any of them is used, all answer 410 Gone. A link also ends, unused,
a storage lease after the lease end it was made for, and in any case seven days after it was made.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from notices.models import ExtendLink, Notification
from portal import audit, errors
from portal.scoping import Account
from provisioning.models import Stack
from provisioning.services import lifecycle

SECRET_BYTES = 32
LONGEST_LINK_LIFE = timedelta(days=7)


class LinkGone(errors.PortalError):
    """The link was used already, or has ended: it will never work again."""

    code = "gone"
    status = 410


def digest_of(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def extend_link_issue(
    *, notification: Notification | None, user: Account, stack: Stack, lease_end: datetime
) -> tuple[ExtendLink, str]:
    """A new link for ``user`` to extend ``stack`` past ``lease_end``, and its secret (kept nowhere)."""
    secret = secrets.token_urlsafe(SECRET_BYTES)
    now = timezone.now()
    storage_end = lease_end + timedelta(seconds=stack.project.storage_lease_seconds)
    link = ExtendLink.objects.create(
        digest=digest_of(secret),
        user=user,
        stack=stack,
        lease_end=lease_end,
        notification=notification,
        expires_at=min(storage_end, now + LONGEST_LINK_LIFE),
    )
    return link, secret


def extend_link_find(secret: str) -> ExtendLink:
    """The link ``secret`` names (``NotFound`` if none), refused with ``LinkGone`` if it no longer works."""
    link = ExtendLink.objects.select_related("user", "stack__project").filter(digest=digest_of(secret)).first()
    if link is None:
        raise errors.NotFound("no such link")
    _check_usable(link, now=timezone.now())
    return link


def extend_link_use(*, secret: str) -> Stack:
    """Extend the link's stack as its recipient, then spend the link (and its siblings). Raises the
    lifecycle's refusals (the longest life reached, a stack being deleted...) and leaves the link unused."""
    with transaction.atomic():
        # The row lock makes two clicks at once one extension and one 410.
        link = (
            ExtendLink.objects.select_for_update()
            .select_related("user", "stack__project")
            .filter(digest=digest_of(secret))
            .first()
        )
        if link is None:
            raise errors.NotFound("no such link")
        now = timezone.now()
        _check_usable(link, now=now)
        try:
            stack = lifecycle.stack_extend(user=link.user, stack=link.stack)
        except errors.NotFound:
            # The recipient left the project (or was deactivated): the link no longer speaks for anyone.
            raise errors.PermissionDenied(
                f"{link.user.get_username()} may no longer extend stacks of project '{link.stack.project.name}'"
            ) from None
        ExtendLink.objects.filter(
            user=link.user, stack=link.stack, lease_end=link.lease_end, used_at__isnull=True
        ).update(used_at=now)
        audit.record(
            actor=link.user,
            action="notice.extend_link_use",
            target=stack,
            project=stack.project,
            lease_end=link.lease_end.isoformat(),
            expires_at=stack.expires_at.isoformat(),
        )
    return stack


def _check_usable(link: ExtendLink, *, now: datetime) -> None:
    if link.used_at is not None:
        raise LinkGone("this link has been used already; each link extends a lease once")
    if ExtendLink.objects.filter(
        user_id=link.user_id, stack_id=link.stack_id, lease_end=link.lease_end, used_at__isnull=False
    ).exists():
        raise LinkGone("a link for this lease end has been used already; each extends a lease once")
    if link.expires_at <= now:
        raise LinkGone("this link has ended; extend the stack from its page in the portal")
