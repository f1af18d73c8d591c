"""A budget of failed sign-ins per client address and per account, shared by every process.

Every way to sign in with a password (the sign-in page, the admin's, the API token endpoint, and
whatever calls ``django.contrib.auth.authenticate`` later) goes through ``ThrottledModelBackend``,
so one rule covers them all:

- Only failures count. A successful sign-in gives back the place it took, so people and scripts
  that sign in often are never slowed down; a success does not wipe earlier failures either (an
  attacker who owns one account could otherwise sign in to it between guesses at others).
- Two budgets: per client address (``portal.client_address``: one guesser trying many accounts)
  and per account (a botnet spreading its guesses on one account over many addresses). Usernames
  are compared casefolded, so ``Mateo`` and ``mateo`` share one budget. IPv6 clients are counted
  per /64, the block one customer usually gets.
- The window slides: at most ``limit`` failures in any ``SIGN_IN_WINDOW_SECONDS``. A refused
  attempt costs nothing, so the budget comes back as the oldest failure ages out, and the answer
  says exactly when (``Retry-After``).
- Once a budget is spent, attempts are refused *before* the password is checked, right one or not:
  answering differently to the right password would turn the refusal into an oracle. The price:
  while one account is under attack its owner waits too, but never longer than the window (a
  sliding limit, not a lockout that needs an operator to lift).
- The place is taken before the password is checked, atomically (``cache.add`` of one key per
  place: a unique row in the database cache, ``SET NX`` in Redis), so a burst of parallel guesses
  gets no more than the budget, even across processes.

The counters live in the ``shared`` cache: Redis when ``REDIS_URL`` is set, otherwise a table in
the database (``manage.py createcachetable``), so every web process sees the same budgets.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
import time
import unicodedata
from dataclasses import dataclass
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.core.cache import caches
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest

from portal.client_address import client_address
from portal.scoping import Account

CACHE_ALIAS = "shared"
_WAIT_ATTRIBUTE = "_portal_sign_in_wait"


class SignInThrottled(PermissionDenied):
    """Too many failed sign-ins; ``wait`` is how many seconds until the next attempt may be made.

    A ``PermissionDenied``, so ``authenticate()`` stops at once and answers "no user" on any path
    that does not know about throttling (it also sends ``user_login_failed``).
    """

    def __init__(self, wait: int) -> None:
        super().__init__(wait_message(wait))
        self.wait = wait


def wait_message(wait: int) -> str:
    minutes = max(1, math.ceil(wait / 60))
    return f"Too many failed sign-ins. Try again in {minutes} minute{'s' if minutes > 1 else ''}."


@dataclass(frozen=True)
class _Budget:
    key: str
    limit: int

    def places(self) -> list[str]:
        return [f"{self.key}:{place}" for place in range(self.limit)]


def _address_budget(address: str) -> _Budget:
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        who = "unknown"  # every request whose address cannot be told shares one budget
    else:
        is_v6 = isinstance(parsed, ipaddress.IPv6Address)
        who = str(ipaddress.IPv6Network((parsed, 64), strict=False)) if is_v6 else str(parsed)
    return _Budget(f"sign-in:address:{who}", settings.SIGN_IN_FAILURES_PER_ADDRESS)


def _account_budget(username: str) -> _Budget:
    folded = unicodedata.normalize("NFKC", username).strip().casefold()
    # Hashed: a cache key must be short and plain whatever the name holds.
    digest = hashlib.sha256(folded.encode()).hexdigest()[:32]
    return _Budget(f"sign-in:account:{digest}", settings.SIGN_IN_FAILURES_PER_ACCOUNT)


def _take_place(budget: _Budget, window: int) -> str | int:
    """The key of a place taken in ``budget``, or the seconds until one frees up."""
    cache = caches[CACHE_ALIAS]
    places = budget.places()
    held: dict[str, Any] = cache.get_many(places)  # place -> when it frees up (a timestamp)
    now = time.time()
    for place in places:
        if place not in held and cache.add(place, now + window, timeout=window):
            return place
    # Every place is held (or another process took the free ones first).
    frees_at = min((float(value) for value in held.values()), default=now + window)
    return max(1, math.ceil(frees_at - now))


@dataclass
class Attempt:
    """The places one sign-in attempt holds until it is known whether the password was right."""

    places: list[str]

    def succeeded(self) -> None:
        """A sign-in that worked costs nothing: give its places back."""
        if self.places:
            caches[CACHE_ALIAS].delete_many(self.places)
            self.places = []


def attempt_begin(*, address: str | None, username: str) -> Attempt:
    """Take a place in the address's and the account's budgets, or raise ``SignInThrottled``.

    ``address`` is None when there is no request (a management command, the test client's
    ``login()``): then only the account's budget applies.
    """
    window = settings.SIGN_IN_WINDOW_SECONDS
    budgets = [_account_budget(username)] if address is None else [_address_budget(address), _account_budget(username)]
    taken: list[str] = []
    waits: list[int] = []
    for budget in budgets:
        outcome = _take_place(budget, window)
        if isinstance(outcome, str):
            taken.append(outcome)
        else:
            waits.append(outcome)
    if waits:
        Attempt(taken).succeeded()  # refused before the password is checked: the attempt costs nothing
        raise SignInThrottled(max(waits))
    return Attempt(taken)


def throttled_wait(request: object) -> int | None:
    """Seconds to wait if a sign-in in this request was refused by the throttle, else None."""
    wait = getattr(request, _WAIT_ATTRIBUTE, None)
    return wait if isinstance(wait, int) else None


class ThrottledModelBackend(ModelBackend):
    """Django's username and password check, inside the sign-in budgets.

    A refusal is noted on the request (``throttled_wait``), so the views can answer 429 with
    ``Retry-After`` instead of "wrong password".
    """

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> Account | None:
        if username is None:
            username = kwargs.get(get_user_model().USERNAME_FIELD)
        if username is None or password is None:
            return None
        address = client_address(request) if request is not None else None
        try:
            attempt = attempt_begin(address=address, username=str(username))
        except SignInThrottled as exc:
            if request is not None:
                setattr(request, _WAIT_ATTRIBUTE, exc.wait)
            raise
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if user is not None:
            attempt.succeeded()
        return user

    async def aauthenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> Account | None:
        # ModelBackend's async version does not go through authenticate(): route it there, or
        # an async view signing people in would skip the budgets.
        return await sync_to_async(self.authenticate)(request, username=username, password=password, **kwargs)
