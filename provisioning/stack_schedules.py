"""A stack's weekly schedule: when it should be up (running) and when set aside (shelved).

A schedule is a time zone and a few windows, each a set of weekdays and an "up" and a "down" time
of day in that zone::

    {"time_zone": "Europe/Paris", "windows": [{"days": ["mon", "tue", "wed", "thu", "fri"],
                                                "up": "08:00", "down": "19:00"}]}

A window whose "down" is not after its "up" runs over midnight (up 22:00, down 06:00 on "fri"
means Friday 22:00 to Saturday 06:00). The stack is wanted up while any window covers the moment.
Times are local wall-clock times: across a daylight-saving change the window still opens at 08:00.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from portal import errors

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_WINDOWS = 14  # two a day is plenty; a list a tenant can grow has a limit
_TIME = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])")
_KNOWN_ZONES = frozenset(available_timezones())


@dataclass(frozen=True)
class Window:
    days: frozenset[int]  # 0 = Monday
    up: time
    down: time

    def covers(self, local: datetime) -> bool:
        moment = local.time().replace(second=0, microsecond=0, tzinfo=None)
        if self.up < self.down:
            return local.weekday() in self.days and self.up <= moment < self.down
        # Over midnight: from "up" on one of its days until "down" on the next day.
        yesterday = (local.weekday() - 1) % 7
        return (local.weekday() in self.days and moment >= self.up) or (yesterday in self.days and moment < self.down)


@dataclass(frozen=True)
class Schedule:
    zone: ZoneInfo
    windows: tuple[Window, ...]

    def wants_up(self, now: datetime) -> bool:
        local = now.astimezone(self.zone)
        return any(window.covers(local) for window in self.windows)

    def next_change(self, now: datetime, *, horizon: timedelta = timedelta(days=8)) -> datetime | None:
        """The next minute at which ``wants_up`` changes (for pages: "shelved at 19:00"), or None."""
        current = self.wants_up(now)
        probe = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
        end = now + horizon
        while probe <= end:
            if self.wants_up(probe) != current:
                return probe
            probe += timedelta(minutes=1)
        return None


def parse_schedule(document: object) -> Schedule:
    """A validated schedule from its JSON form; ``errors.Invalid`` naming every problem by its path."""
    problems: dict[str, list[str]] = {}

    def problem(path: str, message: str) -> None:
        problems.setdefault(path, []).append(message)

    if not isinstance(document, dict) or set(document) - {"time_zone", "windows"}:
        raise errors.Invalid.for_field("schedule", "a schedule is an object with 'time_zone' and 'windows'")
    zone_name = document.get("time_zone", "UTC")
    zone = ZoneInfo("UTC")
    if not isinstance(zone_name, str) or zone_name not in _KNOWN_ZONES:
        problem("time_zone", "must be an IANA time zone such as 'Europe/Paris' or 'UTC'")
    else:
        try:
            zone = ZoneInfo(zone_name)
        except (ZoneInfoNotFoundError, ValueError):
            problem("time_zone", "must be an IANA time zone such as 'Europe/Paris' or 'UTC'")
    raw_windows = document.get("windows")
    windows: list[Window] = []
    if not isinstance(raw_windows, list) or not raw_windows:
        problem("windows", "give at least one window: {'days': [...], 'up': 'HH:MM', 'down': 'HH:MM'}")
        raw_windows = []
    elif len(raw_windows) > MAX_WINDOWS:
        problem("windows", f"at most {MAX_WINDOWS} windows")
        raw_windows = []
    for index, raw in enumerate(raw_windows):
        window = _window(raw, f"windows[{index}]", problem)
        if window is not None:
            windows.append(window)
    if problems:
        first_path, first = next(iter(problems.items()))
        raise errors.Invalid(
            f"schedule {first_path}: {first[0]}", fields={f"schedule.{k}": v for k, v in problems.items()}
        )
    return Schedule(zone=zone, windows=tuple(windows))


def _window(raw: object, path: str, problem: Callable[[str, str], None]) -> Window | None:
    if not isinstance(raw, dict) or set(raw) != {"days", "up", "down"}:
        problem(path, "a window has exactly 'days', 'up' and 'down'")
        return None
    days = raw["days"]
    if not isinstance(days, list) or not days or any(day not in DAYS for day in days):
        problem(f"{path}.days", f"a list of days among {', '.join(DAYS)}")
        return None
    up, down = _clock(raw["up"]), _clock(raw["down"])
    if up is None:
        problem(f"{path}.up", "a time of day as HH:MM (24 h)")
    if down is None:
        problem(f"{path}.down", "a time of day as HH:MM (24 h)")
    if up is None or down is None:
        return None
    if up == down:
        problem(path, "'up' and 'down' must differ")
        return None
    return Window(days=frozenset(DAYS.index(day) for day in days), up=up, down=down)


def _clock(value: object) -> time | None:
    if not isinstance(value, str):
        return None
    match = _TIME.fullmatch(value)
    return time(int(match.group(1)), int(match.group(2))) if match else None
