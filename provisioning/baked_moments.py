"""Events written before moments were data carry their moment in the text, in the server's zone
("lease renewed until 2026-12-04 23:09:50 UTC"): pages showed it as is, under a lease shown in the
reader's zone. ``unbake_event_moments`` moves such a moment out of the text into ``moment``, where
pages and the API render it for their reader; a data migration runs it once over old rows.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

# What the old code wrote: "%Y-%m-%d %H:%M:%S %Z" (or without the seconds), in UTC, at the text's end.
BAKED = re.compile(r"^(?P<text>.*?)\s+(?P<moment>\d{4}-\d{2}-\d{2} \d{2}:\d{2}(?::\d{2})?) UTC\.?$")


def unbake(message: str) -> tuple[str, datetime] | None:
    """The message without its trailing UTC moment, and the moment; None if it carries none."""
    found = BAKED.match(message)
    if found is None:
        return None
    text, written = found["text"], found["moment"]
    layout = "%Y-%m-%d %H:%M:%S" if written.count(":") == 2 else "%Y-%m-%d %H:%M"
    try:
        moment = datetime.strptime(written, layout).replace(tzinfo=UTC)
    except ValueError:
        return None
    return text, moment


def unbake_event_moments(stack_events: Any) -> int:
    """Over ``stack_events`` (the StackEvent model, or the migration's historical one): every row with
    no ``moment`` whose text ends in one gets it as data. Returns how many rows changed."""
    changed = 0
    rows = stack_events.objects.filter(moment__isnull=True, message__endswith="UTC").only("pk", "message")
    for row in rows.iterator():
        parts = unbake(row.message)
        if parts is None:
            continue
        text, moment = parts
        stack_events.objects.filter(pk=row.pk).update(message=text, moment=moment)
        changed += 1
    return changed
