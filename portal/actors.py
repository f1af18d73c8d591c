"""One way to name who did something, on pages, in the admin and in the API: the person's user name,
or "the portal" when nobody asked (a lease that ran out, a schedule, a worker's retry)."""

from __future__ import annotations

from django.contrib.auth.base_user import AbstractBaseUser

PORTAL_ACTOR = "the portal"


def actor_name(user: AbstractBaseUser | None) -> str:
    return user.get_username() if user is not None else PORTAL_ACTOR
