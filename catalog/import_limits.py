"""How many feed imports one project may have queued or running at once (``IMPORTS_PER_PROJECT``).

An import waits on a server the subscriber names, up to the feed deadline (two minutes by default);
without a limit one project could fill the import queue with slow feeds and retry them at will, and
everyone else's imports would wait behind them. The limit is below the number of import workers, so
another project's import always finds one. Shared feeds (operators') are not limited.
"""

from __future__ import annotations

from django.conf import settings

from catalog.models import Feed
from portal import errors
from portal.models import Project

BUSY = (Feed.ImportStatus.QUEUED, Feed.ImportStatus.IMPORTING)


def import_room_check(*, feed: Feed) -> None:
    """Refuse (``WrongState``) another import of ``feed``'s project while it has its limit queued or running.

    Call inside the transaction that marks the feed queued: the project's row is locked until then,
    so parallel requests of one project are counted one after the other.
    """
    if feed.project_id is None:
        return
    project = Project.objects.select_for_update().filter(pk=feed.project_id).first()
    if project is None:
        return
    limit = settings.IMPORTS_PER_PROJECT
    busy = Feed.objects.filter(project_id=feed.project_id, last_status__in=BUSY).exclude(pk=feed.pk).count()
    if busy >= limit:
        raise errors.WrongState(
            f"project '{project.name}' already has {busy} feed import{'s' if busy != 1 else ''} queued or running "
            f"(at most {limit} at once); try again when one has finished"
        )


__all__ = ["BUSY", "import_room_check"]
