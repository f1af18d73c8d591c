"""The period a usage report covers: ``from`` and ``to``, ISO dates (UTC days), both included.

Read the same way by the API and the page. Left out, ``to`` is today (UTC) and ``from`` the first day
of ``to``'s month, so the default is this month so far. A period is at most ``MAX_DAYS`` long.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from portal import errors

MAX_DAYS = 366
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


@dataclass(frozen=True)
class UsagePeriod:
    start: date
    end: date  # included

    @property
    def days(self) -> list[date]:
        return [self.start + timedelta(days=n) for n in range((self.end - self.start).days + 1)]


def today_utc() -> date:
    return datetime.now(UTC).date()


def _date(name: str, text: str) -> date:
    try:
        if _ISO_DATE.fullmatch(text):
            return date.fromisoformat(text)
    except ValueError:
        pass
    raise errors.Invalid.for_field(name, f"{name} must be a date written YYYY-MM-DD, e.g. 2026-01-31")


def usage_period(*, start_text: str | None, end_text: str | None, today: date | None = None) -> UsagePeriod:
    """The period the query asks for; ``errors.Invalid`` naming the field (``from`` or ``to``) otherwise."""
    # Left out, a bound takes its default; given empty ("?to="), it is a date that is not one.
    end = _date("to", end_text) if end_text is not None else (today or today_utc())
    start = _date("from", start_text) if start_text is not None else end.replace(day=1)
    if start > end:
        raise errors.Invalid.for_field("from", f"from ({start}) must not be after to ({end})")
    days = (end - start).days + 1
    if days > MAX_DAYS:
        message = f"a period may be at most {MAX_DAYS} days long; {start} to {end} is {days}"
        raise errors.Invalid.for_field("to", message)
    return UsagePeriod(start=start, end=end)
