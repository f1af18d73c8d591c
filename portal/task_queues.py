"""Which django-q2 cluster runs which task, so that no tenant's work can hold up the portal's upkeep.

Each cluster has a queue in the broker and workers of its own (``settings.TASK_CLUSTERS``):

- ``CONTROL``: lease expiry, teardowns, the watchdogs, host refresh and reconciling, and the schedules
  that start them. A tenant can add little here: a teardown per stack its quota allows.
- ``BUILDS``: stack builds (which wait for their images without holding a worker).
- ``DOWNLOADS``: appliance image downloads, and ``IMPORTS``: feed imports. Both wait on servers
  tenants name, so each project may have only a few of them going at once
  (``DOWNLOADS_PER_PROJECT``, ``IMPORTS_PER_PROJECT``).

Every task is queued through ``enqueue`` with its cluster named: django-q2 would otherwise put it on
the queue of whichever cluster's worker happens to queue it, so a teardown queued by a build would
wait behind builds.
"""

from __future__ import annotations

from enum import StrEnum

from django.conf import settings
from django_q.tasks import async_task


class Queue(StrEnum):
    CONTROL = "control"
    BUILDS = "builds"
    DOWNLOADS = "downloads"
    IMPORTS = "imports"


def cluster_name(queue: Queue) -> str:
    """The django-q2 cluster (and broker queue) of ``queue`` in this deployment."""
    return str(settings.TASK_CLUSTERS[queue.value])


def cluster_names() -> list[str]:
    """Every cluster this portal needs running, control first."""
    return [cluster_name(queue) for queue in Queue]


def enqueue(func: str, *args: object, queue: Queue, task_name: str) -> str:
    """Queue ``func(*args)`` on ``queue``'s cluster; returns the task id."""
    return str(async_task(func, *args, task_name=task_name, cluster=cluster_name(queue)))


__all__ = ["Queue", "cluster_name", "cluster_names", "enqueue"]
