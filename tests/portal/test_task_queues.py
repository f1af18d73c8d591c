"""Which queue each task is put on, and that every queue's name is the deployment's own."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django_q.models import OrmQ

from catalog.services import feed_subscribe
from provisioning.services import lifecycle
from provisioning.services.launch import stack_launch
from tests.worker_process import ROOT


def _clusters(deployment: str) -> list[str]:
    env = {**os.environ, "PORTAL_DEPLOYMENT": deployment, "DJANGO_SETTINGS_MODULE": "tests.settings"}
    env.pop("PORTAL_TASK_QUEUE", None)
    command = [sys.executable, "manage.py", "workers", "--list"]
    listed = subprocess.run(command, env=env, cwd=ROOT, check=True, capture_output=True, text=True)
    return listed.stdout.split()


def test_every_queue_is_named_after_its_deployment_and_no_two_deployments_share_one():
    lab = _clusters("lab-1")
    assert lab == ["lab-1", "lab-1.builds", "lab-1.downloads", "lab-1.imports"]
    # Names alone must not let a deployment called like another's queue take that queue's tasks.
    assert not set(lab) & set(_clusters("lab-1-builds"))


@pytest.fixture
def queued_for_workers(monkeypatch):
    from django_q.conf import Conf

    monkeypatch.setattr(Conf, "SYNC", False)


def _where(func: str) -> set[str]:
    return {task.key for task in OrmQ.objects.all() if task.func() == func}


def test_tenants_work_never_lands_on_the_control_queue(
    queued_for_workers, settings, member, project, test_host, ready_version, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        stack = stack_launch(
            user=member, project=project, name="web", appliance_version=ready_version, lease_seconds=600
        )
        feed_subscribe(user=member, url="https://feeds.example.org/feed.xml", project=project)
    assert _where("provisioning.tasks.build_stack") == {f"{settings.DEPLOYMENT_NAME}.builds"}
    assert _where("catalog.tasks.import_feed") == {f"{settings.DEPLOYMENT_NAME}.imports"}
    with django_capture_on_commit_callbacks(execute=True):
        lifecycle.stack_destroy(user=member, stack=stack)
    assert _where("provisioning.tasks.teardown_stack") == {settings.DEPLOYMENT_NAME}  # the control cluster's
