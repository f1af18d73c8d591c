"""How many image downloads one project may have queued or running at once (``DOWNLOADS_PER_PROJECT``).

A download waits on the server a project's feed names, for up to the image deadline (a quarter of
an hour by default). Without a limit, one project launching a few stacks of slow images would hold
every download worker and everyone else's launches would wait behind it. The limit is below the
number of download workers. A project over it queues no more downloads: its builds stay pending,
saying why, and go on when one of its downloads ends. Images of shared feeds (operators') are not
limited.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from catalog.image_room import STALE_DOWNLOAD
from catalog.models import ApplianceVersion, ImageDelivery
from portal.models import Project


def download_room_wait(*, version: ApplianceVersion) -> str:
    """Why ``version``'s download must wait for the project's others ("" when it may be queued now).

    Call inside the transaction that queues the download: the project's row stays locked until then,
    so parallel builds of one project are counted one after the other.
    """
    project_id = version.appliance.feed.project_id
    if project_id is None:
        return ""
    project = Project.objects.select_for_update().filter(pk=project_id).first()
    if project is None:
        return ""
    now = timezone.now()
    # Claims a dead worker left (as image_cache.image_request judges them) hold no place.
    live = Q(status=ImageDelivery.Status.DOWNLOADING, updated_at__gte=now - STALE_DOWNLOAD) | Q(
        status=ImageDelivery.Status.QUEUED,
        requested_at__gte=now - timedelta(seconds=settings.WORKER_GONE_AFTER_SECONDS),
    )
    if ImageDelivery.objects.filter(live, version=version).exists():
        return ""  # under way already: it holds its place
    busy = (
        ImageDelivery.objects.filter(live, version__appliance__feed__project_id=project_id)
        .exclude(version=version)
        .count()
    )
    limit = settings.DOWNLOADS_PER_PROJECT
    if busy < limit:
        return ""
    return (
        f"project '{project.name}' already has {busy} image download{'s' if busy != 1 else ''} queued or "
        f"running (at most {limit} at once); this one starts when one of them ends"
    )


__all__ = ["download_room_wait"]
