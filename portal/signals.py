"""What follows a password change, wherever it happens (the admin, Django's password-change view,
``set_password()`` and ``save()`` in any code): the account's API tokens are revoked.

Its sessions need nothing from here. Django keeps an HMAC of the password hash in each session
(``_auth_user_hash``) and ends any session whose HMAC no longer matches on its next request: web
pages, the API's session authentication and websocket connects (Channels checks it too). Its own
password-change views (the admin's included) re-sign the session they run in with
``update_session_auth_hash``, so only that one survives. That works with every session backend;
deleting session rows would need a scan of all sessions (the table has no user column) and would
add nothing. tests/portal/test_sessions.py proves each path.

A password change is ``set_password()`` (Django notes the raw password until the save) or a newly
unusable password. Not a change: a hash rewritten at sign-in because the hasher's settings moved
on (the password is the same), and saves that do not write the password (``last_login``).
"""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_save, pre_save
from django.dispatch import receiver

from portal.scoping import Account
from portal.tokens import tokens_revoke_all

_CHANGED = "_portal_password_changed"


@receiver(pre_save, sender=Account, dispatch_uid="portal.password_change_noted")
def _note_password_change(
    sender: type[Account], instance: Account, raw: bool, update_fields: frozenset[str] | None, **kwargs: Any
) -> None:
    if raw or instance.pk is None or (update_fields is not None and "password" not in update_fields):
        return
    if getattr(instance, "_password", None) is not None:  # set_password() since the last save
        changed = True
    elif not instance.has_usable_password():
        stored = Account.objects.filter(pk=instance.pk).values_list("password", flat=True).first()
        changed = stored is not None and stored != instance.password
    else:
        changed = False
    setattr(instance, _CHANGED, changed)


@receiver(post_save, sender=Account, dispatch_uid="portal.password_change_revokes_tokens")
def _revoke_after_password_change(sender: type[Account], instance: Account, created: bool, **kwargs: Any) -> None:
    if created or not getattr(instance, _CHANGED, False):
        return
    setattr(instance, _CHANGED, False)
    # In the saving transaction: if the new password is rolled back, so is the revocation.
    tokens_revoke_all(user=instance, reason="password changed")
