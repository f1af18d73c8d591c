"""What a signed-in person does to their own account: a new password, or ending their other sessions.

Both hinge on the HMAC of the password hash that Django keeps in every session (``_auth_user_hash``):
a session whose HMAC no longer matches the account's is ended on its next request, by the pages,
the API's session authentication and websocket connects alike (see ``portal.signals``). So:

- A new password ends every other session by itself; the session that asked is re-signed with
  ``update_session_auth_hash`` and stays. Its API tokens are revoked too (``portal.signals``).
- Ending the other sessions while keeping the password stores the *same* password under a fresh
  salt: the hash changes, so does the HMAC, and every other session ends exactly as after a new
  password, with no session row scanned (the table has no user column), no extra model and no
  per-request check. The hash is written with an update that sends no ``post_save``: the password
  is not new, so the account's API tokens stay (they are listed and revoked on their own page).

Both ask for the current password, inside the sign-in budgets of ``portal.sign_in_throttle``: a
stolen session cookie alone can neither change the password nor sign its owner out, and guesses at
the current password here cost the same as guesses on the sign-in page.
"""

from __future__ import annotations

from django.contrib.auth import update_session_auth_hash
from django.contrib.auth.hashers import make_password
from django.http import HttpRequest

from portal import audit
from portal.client_address import client_address
from portal.scoping import Account
from portal.sign_in_throttle import SignInThrottled, attempt_begin


class WrongPassword(Exception):
    """The current password given is not the account's."""


def current_password_check(*, request: HttpRequest, account: Account, password: str) -> None:
    """Raise ``WrongPassword``, or ``SignInThrottled`` once too many wrong ones were tried."""
    attempt = attempt_begin(address=client_address(request), username=account.get_username())
    if not account.check_password(password):
        raise WrongPassword  # the place taken stays taken: a failure counts
    attempt.succeeded()


def password_change(*, request: HttpRequest, account: Account, new_password: str) -> None:
    """Set a new password (already validated), keep this session and end every other one."""
    account.set_password(new_password)
    account.save()  # portal.signals revokes the account's API tokens
    update_session_auth_hash(request, account)
    audit.record(actor=account, action="account.password_change", target=account)


def other_sessions_end(*, request: HttpRequest, account: Account, password: str) -> None:
    """End every session of the account but this one; ``password`` is the current one, already checked."""
    account.password = make_password(password)
    Account.objects.filter(pk=account.pk).update(password=account.password)
    update_session_auth_hash(request, account)
    audit.record(actor=account, action="account.sessions_end", target=account)


__all__ = ["SignInThrottled", "WrongPassword", "current_password_check", "other_sessions_end", "password_change"]
