"""A feed's state as its subscriber reads it: what is happening to it now, and why it failed if it did.

Imports run in a worker, so a subscription or a retry is followed by "waiting" and "fetching" until
the worker is done; the feed list shows these live (its row polls while ``live``).
"""

from __future__ import annotations

from dataclasses import dataclass

from catalog.feed_problems import FeedProblem, explain_feed_error
from catalog.models import Feed

Status = Feed.ImportStatus


@dataclass(frozen=True)
class FeedState:
    status: str  # the feed's ImportStatus, for the badge's colour
    label: str  # short, on the badge
    sentence: str  # what it means, next to the badge
    live: bool  # a worker is at it: the row follows it
    problem: FeedProblem | None = None


def feed_state(feed: Feed) -> FeedState:
    if feed.format == Feed.Format.LOCAL:
        return FeedState(Status.OK, "Ready", "Uploaded and captured images of the project.", live=False)
    if feed.last_status == Status.QUEUED:
        return FeedState(Status.QUEUED, "Waiting", "Waiting for a worker to fetch the feed…", live=True)
    if feed.last_status == Status.IMPORTING:
        return FeedState(Status.IMPORTING, "Fetching", "Fetching the feed and reading its appliances…", live=True)
    if feed.last_status == Status.ERROR:
        problem = explain_feed_error(feed.last_error or "")
        return FeedState(Status.ERROR, "Failed", "The last fetch failed.", live=False, problem=problem)
    if feed.last_status == Status.OK:
        count = feed.last_item_count
        sentence = f"Imported: {count} appliance version{'s' if count != 1 else ''}."
        return FeedState(Status.OK, "Imported", sentence, live=False)
    return FeedState(Status.NEVER, "Not fetched yet", "Not fetched yet: retry it to fetch it now.", live=False)
