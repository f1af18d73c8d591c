"""Pages show moments in the reader's own time zone.

The browser reports its IANA zone in the ``tz`` cookie (set by ``static/js/portal.js`` from
``Intl.DateTimeFormat``); anything that is not a known zone is ignored and UTC stays.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import unquote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from django.http import HttpRequest, HttpResponse
from django.utils import timezone

TIME_ZONE_COOKIE = "tz"
_KNOWN_ZONES = frozenset(available_timezones())


def zone_from_cookie(value: str | None) -> ZoneInfo | None:
    if not value:
        return None
    value = unquote(value)  # the script writes it URI-encoded: "Europe%2FParis"
    if value not in _KNOWN_ZONES:
        return None
    try:
        return ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        return None


class UserTimeZoneMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        zone = zone_from_cookie(request.COOKIES.get(TIME_ZONE_COOKIE))
        if zone is None:
            timezone.deactivate()
        else:
            timezone.activate(zone)
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()
