"""Real django-q2 clusters: tenants' slow work cannot hold up upkeep, and portals sharing a Redis
keep to their own queues."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
import redis
from django.utils import timezone
from django_q.tasks import async_task

from catalog.models import Feed
from catalog.services import feed_subscribe
from portal import errors
from portal.models import RunEnd
from provisioning.models import Stack, Status
from tests.catalog.hostile_servers import DripServer
from tests.polling import wait_for
from tests.worker_process import ROOT, database_url, running_worker

pytestmark = pytest.mark.django_db(transaction=True)

QUEUE_REDIS_URL = os.environ.get("PORTAL_TEST_QUEUE_REDIS_URL", "redis://127.0.0.1:6379/14")


def _worker_env(**extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": database_url(),
        "PORTAL_TASKS_SYNC": "0",
        **extra,
    }
    for name in ("Q_CLUSTER_NAME", "PORTAL_TASK_QUEUE", "PORTAL_CHANNEL_PREFIX"):
        env.pop(name, None)
    if "REDIS_URL" not in extra:
        env.pop("REDIS_URL", None)
    return env


def test_a_projects_slow_feeds_cannot_hold_up_lease_expiry(member, project, tmp_path, monkeypatch):
    """A tenant subscribes feeds whose server never answers; an expired stack is still torn down at once."""
    from django_q.conf import Conf

    monkeypatch.setattr(Conf, "SYNC", False)  # imports wait for the workers, as in production
    refused: list[str] = []
    log = tmp_path / "workers.log"
    # The silent server (it accepts every connection and never says a word) goes first at the end, so
    # the hanging import fails and the workers stop at once.
    with running_worker(log_path=log, env=_worker_env()), DripServer(b"") as silent:
        for number in range(4):
            try:
                feed_subscribe(user=member, url=f"{silent.base_url}/feed-{number}.xml", project=project)
            except errors.WrongState as exc:
                refused.append(exc.detail)
        wait_for(
            lambda: Feed.objects.filter(last_status=Feed.ImportStatus.IMPORTING).exists(),
            timeout=60,
            what=f"an import to hang on the silent server (log: {log})",
        )
        project.at_run_end = RunEnd.DELETE
        project.save(update_fields=["at_run_end"])
        expired = Stack.objects.create(
            project=project,
            name="expired",
            created_by=member,
            status=Status.RUNNING,
            expires_at=timezone.now() - timedelta(minutes=1),
        )
        async_task("provisioning.tasks.expire_leases")  # what the schedule queues every minute
        wait_for(
            lambda: Stack.objects.get(pk=expired.pk).status == Status.DELETED,
            timeout=15,
            what=f"the expired stack's teardown while imports hang (log: {log})",
        )
    # The project could not queue more imports than its limit, and was told why.
    assert len(refused) == 3
    assert all("already has 1 feed import queued or running (at most 1 at once)" in r for r in refused), refused
    assert Feed.objects.filter(project=project).count() == 1  # a refused subscription leaves nothing behind


ENQUEUE = (
    "import sys, django; django.setup(); from django_q.tasks import async_task; "
    "[async_task('tests.task_probe.note', sys.argv[1], f'{sys.argv[2]}{n}') for n in range(int(sys.argv[3]))]"
)


def test_two_portals_on_one_redis_each_run_only_their_own_tasks(tmp_path):
    """Each portal's worker takes only its own portal's tasks (signed with a key the other does not have)."""
    notes = tmp_path / "notes.txt"
    notes.touch()
    suffix = secrets.token_hex(3)
    portals = {f"qa{suffix}": "a", f"qb{suffix}": "b"}
    envs = {
        deployment: _worker_env(
            REDIS_URL=QUEUE_REDIS_URL,
            PORTAL_DEPLOYMENT=deployment,
            DJANGO_SECRET_KEY=secrets.token_urlsafe(30),
            PORTAL_CONTROL_WORKERS="1",
        )
        for deployment in portals
    }
    broker = redis.Redis.from_url(QUEUE_REDIS_URL)
    try:
        for deployment, tag in portals.items():
            subprocess.run(
                [sys.executable, "-c", ENQUEUE, str(notes), tag, "4"],
                env=envs[deployment],
                cwd=ROOT,
                check=True,
                timeout=60,
                capture_output=True,
            )
        expected = {f"{deployment} {tag}{n}" for deployment, tag in portals.items() for n in range(4)}
        first, second = portals
        # The control cluster of each (named after the deployment): the one every unnamed task goes to.
        with (
            running_worker(log_path=tmp_path / "a.log", env=envs[first], command=("qcluster",)),
            running_worker(log_path=tmp_path / "b.log", env=envs[second], command=("qcluster",)),
        ):
            try:
                wait_for(lambda: len(_lines(notes)) >= len(expected), timeout=40, what="every task to run")
            finally:
                seen = _lines(notes)
        assert seen == expected, (seen, Path(tmp_path / "a.log").read_text()[-2000:])
    finally:
        for deployment in portals:
            for key in broker.scan_iter(f"django_q:{deployment}*"):
                broker.delete(key)
        broker.close()


def _lines(path: Path) -> set[str]:
    return set(path.read_text().splitlines())
