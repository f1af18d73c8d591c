"""No database transaction (or row lock) is held across a libvirt call: a slow host blocks no one else."""

from __future__ import annotations

import threading
from contextlib import contextmanager

import pytest
from django.db import DatabaseError, connection, transaction

from provisioning.models import Stack, Status
from provisioning.services import build, cleanup, lifecycle
from provisioning.services.launch import stack_launch


class SlowHost:
    """Wraps a driver; the named call waits until the test lets it go, so the test can look meanwhile."""

    def __init__(self, driver, call: str, entered: threading.Event, release: threading.Event) -> None:
        self._driver, self._call, self._entered, self._release = driver, call, entered, release

    def __getattr__(self, name):
        real = getattr(self._driver, name)
        if name != self._call:
            return real

        def slow(*args, **kwargs):
            self._entered.set()
            assert self._release.wait(timeout=20), "the test never released the host"
            return real(*args, **kwargs)

        return slow


def _slow_driver_for(real_driver_for, call: str, entered: threading.Event, release: threading.Event):
    @contextmanager
    def driver_for(host):
        with real_driver_for(host) as driver:
            yield SlowHost(driver, call, entered, release)

    return driver_for


def _stack_row_is_free(stack_id: int) -> bool:
    """Whether another transaction could lock the stack row right now (it would not wait)."""
    try:
        with transaction.atomic():
            Stack.objects.select_for_update(nowait=True).get(pk=stack_id)
        return True
    except DatabaseError:
        return False


def _in_thread(work) -> threading.Thread:
    def run():
        try:
            work()
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


@pytest.mark.django_db(transaction=True)
def test_starting_a_domain_holds_no_lock_on_the_stack(member, project, test_host, ready_version, monkeypatch):
    monkeypatch.setattr("django_q.conf.Conf.SYNC", False)  # the build runs below, in a thread of ours
    stack = stack_launch(user=member, project=project, name="slow", appliance_version=ready_version, lease_seconds=600)
    entered, release = threading.Event(), threading.Event()
    monkeypatch.setattr(build, "driver_for", _slow_driver_for(build.driver_for, "define_and_start", entered, release))
    worker = _in_thread(lambda: build.stack_build(stack=Stack.objects.get(pk=stack.pk)))
    try:
        assert entered.wait(timeout=20)
        assert _stack_row_is_free(stack.pk)
    finally:
        release.set()
        worker.join(timeout=30)
    assert Stack.objects.get(pk=stack.pk).status == Status.RUNNING


@pytest.mark.django_db(transaction=True)
def test_destroying_domains_holds_no_lock_on_the_stack(member, project, test_host, ready_version, monkeypatch):
    stack = stack_launch(user=member, project=project, name="slow", appliance_version=ready_version, lease_seconds=600)
    monkeypatch.setattr("django_q.conf.Conf.SYNC", False)
    lifecycle.stack_destroy(user=member, stack=stack)
    entered, release = threading.Event(), threading.Event()
    monkeypatch.setattr(cleanup, "driver_for", _slow_driver_for(cleanup.driver_for, "destroy_domain", entered, release))
    worker = _in_thread(lambda: lifecycle.stack_teardown(stack=Stack.objects.get(pk=stack.pk)))
    try:
        assert entered.wait(timeout=20)
        assert _stack_row_is_free(stack.pk)
    finally:
        release.set()
        worker.join(timeout=30)
    assert Stack.objects.get(pk=stack.pk).status == Status.DELETED
