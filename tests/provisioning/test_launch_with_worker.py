"""Parallel launches while a real worker (``manage.py workers``) polls its queues and builds what they accept.

This runs on PostgreSQL and on SQLite (scripts/test.sh runs the launch modules on both). On SQLite
every writer takes the one database lock in turn: the launches, the worker's builds, and each
cluster's broker polling it several times a second. A writer that cannot get the lock waits (the
busy timeout) rather than failing, so none of them may end with "database is locked", and the
quota still holds.
"""

from __future__ import annotations

from collections import Counter

import pytest
from django.db import connection

from provisioning.models import Instance, PublishedPort, Stack, Status
from provisioning.services.launch import stack_launch
from tests.polling import wait_for
from tests.provisioning.placement_support import in_parallel
from tests.worker_process import running_worker, worker_env

BUILD_SECONDS = 90


@pytest.fixture
def worker(transactional_db, monkeypatch, tmp_path):
    """Every cluster of the portal, on the test database; tasks are queued through the ORM broker."""
    from django_q.conf import Conf

    monkeypatch.setattr(Conf, "SYNC", False)
    # Few processes: two cores run this, and what is tested is that writers take turns.
    env = worker_env(
        PORTAL_CONTROL_WORKERS="1", PORTAL_WORKERS="2", PORTAL_DOWNLOAD_WORKERS="1", PORTAL_IMPORT_WORKERS="1"
    )
    log = tmp_path / "worker.log"
    with running_worker(log_path=log, env=env) as process:
        yield process, log
    connection.close()


@pytest.mark.django_db(transaction=True)
def test_parallel_launches_while_a_worker_builds_keep_the_quota_and_every_write_lands(
    worker, member, project, test_host, ready_version
):
    """Ten one-tier launches at once against a quota of four instances; the worker builds the four."""
    process, log = worker
    project.max_instances = 4
    project.save()

    def attempt(n: int) -> str:
        stack_launch(user=member, project=project, name=f"burst-{n}", appliance_version=ready_version)
        return "ok"

    assert in_parallel(10, attempt) == Counter({"ok": 4, "quota_exceeded": 6})
    accepted = Stack.objects.filter(project=project)
    assert accepted.count() == 4
    assert Instance.objects.count() == 4

    def built() -> bool:
        assert process.poll() is None, log.read_text()[-3000:]
        return not accepted.filter(status__in=[Status.PENDING, Status.BUILDING]).exists()

    wait_for(built, timeout=BUILD_SECONDS, what="the worker to build the accepted stacks")
    outcomes = dict(accepted.values_list("name", "status_reason"))
    assert set(accepted.values_list("status", flat=True)) == {Status.RUNNING}, outcomes
    ports = list(PublishedPort.objects.values_list("host_port", flat=True))
    assert len(ports) == len(set(ports)) == 4
    assert "database is locked" not in log.read_text()
