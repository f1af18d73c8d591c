"""What the stack-life benchmarks (unshelve, snapshot) share: actions on a launched stack through the
portal's API, timed; what to say when one goes wrong; the run, with their default number of rounds.

An action (shelve, unshelve, snapshot, revert) answers 202 at once and a worker job does the rest;
the job owns the stack while its status is busy (``BUSY_STATUSES``). ``act`` posts the action and
polls the stack until it has settled again. A stack that settles elsewhere than expected, writes an
error event, or stays busy stops the run with its status, ``status_reason`` and the events since the
call (``StackEvent``), never a silent retry: those are the portal's findings the benchmark reports.
"""

from __future__ import annotations

import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from benchmarks import vm_bench as bench  # configures Django first
from portal.models import Project
from provisioning.models import BUSY_STATUSES, Stack, Status
from tests.polling import TimedOut, wait_for

# Busy statuses last seconds here; a job that holds a stack this long is stuck.
ACTION_TIMEOUT_SECONDS = 600
# The benchmark's project lets stacks live this long and its stacks' leases are renewed to
# ``LONG_LEASE`` after launch: a lease that ran out mid-run would shelve or delete a stack under it.
LONG_LIFE = timedelta(hours=6)
LONG_LEASE = timedelta(hours=5)


class StackTrouble(SystemExit):
    """The portal did not do what the benchmark asked; the message says what the stack shows."""


@dataclass(frozen=True)
class Acted:
    started: float  # time.perf_counter() at the call
    posted_at: float  # wall clock of the call, to compare with the events' timestamps
    seconds: float  # the call -> the stack settled
    body: dict[str, Any]  # the stack's API body once settled
    answer: dict[str, Any]  # what the POST answered (the stack, or the snapshot it made)


def stack_url(stack_id: int) -> str:
    return f"/api/v1/stacks/{stack_id}/"


def give_long_life(portal: bench.Portal) -> None:
    """Let the benchmark's stacks live for the whole run (an operator's policy setting on the project)."""
    Project.objects.filter(pk=portal.project.pk).update(max_lease_seconds=int(LONG_LIFE.total_seconds()))


def renew_lease(portal: bench.Portal, stack_id: int) -> None:
    response = portal.client.post(
        f"{stack_url(stack_id)}lease/", {"lease": int(LONG_LEASE.total_seconds())}, format="json"
    )
    if response.status_code != 200:
        raise StackTrouble(
            f"renewing the lease of stack {stack_id} answered {response.status_code}: {response.content!r}"
        )


def act(portal: bench.Portal, stack_id: int, path: str, payload: dict[str, Any] | None, *, settles_in: Status) -> Acted:
    """POST ``path`` (relative to the stack's URL) and poll until the stack settles; it must be in ``settles_in``."""
    posted_at = time.time()
    started = time.perf_counter()
    response = portal.client.post(f"{stack_url(stack_id)}{path}", payload or {}, format="json")
    if response.status_code != 202:
        raise StackTrouble(
            f"POST {path} answered {response.status_code}: {response.content!r}\n{trouble(stack_id, posted_at)}"
        )
    body = settled(portal, stack_id, since=posted_at, what=path)
    seconds = time.perf_counter() - started
    errors = Stack.objects.get(pk=stack_id).events.filter(is_error=True, created_at__gte=_moment(posted_at))
    if body["status"] != settles_in or errors.exists():
        raise StackTrouble(f"after POST {path} (expected {settles_in}):\n{trouble(stack_id, posted_at)}")
    return Acted(started=started, posted_at=posted_at, seconds=seconds, body=body, answer=response.json())


def settled(portal: bench.Portal, stack_id: int, *, since: float, what: str) -> dict[str, Any]:
    """Poll the stack's API until no job owns it; its body then."""

    def done() -> dict[str, Any] | None:
        body = portal.client.get(stack_url(stack_id)).json()
        return None if body["status"] in BUSY_STATUSES else body

    try:
        body: dict[str, Any] | None = wait_for(
            done, timeout=ACTION_TIMEOUT_SECONDS, interval=bench.API_POLL_SECONDS, what=what
        )
    except TimedOut as exc:
        raise StackTrouble(f"{exc}\n{trouble(stack_id, since)}") from None
    assert body is not None  # wait_for returns only what is truthy
    return body


@dataclass(frozen=True)
class PageSeen:
    at: float  # time.perf_counter() when the page first showed the chain
    changes: tuple[tuple[float, str], ...]  # (perf_counter, what the page did from then on)

    def story(self, started: float) -> str:
        """What the page did after ``started`` (perf_counter), e.g. "no answer at 0.0 s, the chain at 7.1 s"."""
        return ", ".join(f"{state} at {moment - started:.1f} s" for moment, state in self.changes)


def page_seen(stack_id: int, url: str, expected: str, *, since: float) -> PageSeen:
    """Poll web's page like ``bench.wait_for_page`` until it shows ``expected``, noting each change of what
    it does on the way (no answer, an answer without the chain, the chain); the stack's side of the
    story if the chain never comes."""
    changes: list[tuple[float, str]] = []

    def shows_chain() -> bool:
        text = _page_text(url)
        state = "no answer" if text is None else "the chain" if expected in text else "a page without the chain"
        if not changes or changes[-1][1] != state:
            changes.append((time.perf_counter(), state))
        return state == "the chain"

    try:
        wait_for(shows_chain, timeout=bench.BUILD_TIMEOUT_SECONDS, interval=bench.PAGE_POLL_SECONDS, what=url)
    except TimedOut as exc:
        raise StackTrouble(f"{exc} to show {expected!r}\n{trouble(stack_id, since)}") from None
    return PageSeen(at=changes[-1][0], changes=tuple(changes))


def _page_text(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=bench.PAGE_TIMEOUT_SECONDS) as response:
            return str(response.read().decode(errors="replace"))
    except OSError:
        return None


def trouble(stack_id: int, since: float) -> str:
    """The stack's status, its reason, and its events from ``since`` (wall clock) on, timed from then."""
    stack = Stack.objects.get(pk=stack_id)
    lines = [f"stack {stack.pk} ({stack.name}) is {stack.status}: {stack.status_reason or '(no reason given)'}"]
    lines += ["events since the call:", *timeline(stack_id, since)]
    lines.append(f"worker log: {bench.WORK / 'worker.log'}")
    return "\n".join(lines)


def timeline(stack_id: int, since: float) -> list[str]:
    """The stack's events from ``since`` (wall clock) on, in seconds after it; errors marked."""
    events = Stack.objects.get(pk=stack_id).events.filter(created_at__gte=_moment(since)).order_by("created_at", "id")
    return [
        f"  {event.created_at.timestamp() - since:7.3f} s  {'ERROR ' if event.is_error else ''}{event.message}"
        + (f" {event.moment.isoformat()}" if event.moment else "")
        for event in events
    ]


def delete_all(portal: bench.Portal, *, strict: bool) -> None:
    """Delete, through the API, every stack of the benchmark's project that is not deleted yet.

    A stack a job still owns is waited for first (a busy stack cannot be deleted). A deletion that
    fails is said; ``strict`` (between rounds) then stops the run, otherwise (the final clean-up) it
    is left to ``bench.remove_everything``, which removes whatever stays on the host.
    """
    since = time.time()
    stack_ids = Stack.objects.filter(project=portal.project).exclude(status=Status.DELETED).values_list("pk", flat=True)
    failed = []
    for stack_id in stack_ids:
        try:
            _delete(portal, stack_id, since=since)
        except (StackTrouble, TimedOut) as exc:
            print(f"could not delete stack {stack_id} through the API: {exc}\n{trouble(stack_id, since)}", flush=True)
            failed.append(stack_id)
    if failed and strict:
        raise StackTrouble(f"stacks {failed} were not deleted: the next figures would share the host with them")


def _delete(portal: bench.Portal, stack_id: int, *, since: float) -> None:
    settled(portal, stack_id, since=since, what=f"stack {stack_id} to settle before its deletion")
    response = portal.client.delete(stack_url(stack_id))
    if response.status_code != 202:
        raise StackTrouble(f"DELETE answered {response.status_code}: {response.content!r}")

    def ended() -> str | None:
        status = portal.client.get(stack_url(stack_id)).json()["status"]
        return status if status in (Status.DELETED, Status.ERROR) else None

    status = wait_for(
        ended, timeout=ACTION_TIMEOUT_SECONDS, interval=bench.API_POLL_SECONDS, what=f"stack {stack_id} deleted"
    )
    if status != Status.DELETED:
        raise StackTrouble(f"its deletion ended in {status}")


def _moment(wall_clock: float) -> datetime:
    return datetime.fromtimestamp(wall_clock, tz=UTC)


def run(description: str, rounds_body: Callable[[bench.Portal, int, bool], None], *, default_rounds: int) -> None:
    """``bench.run`` (set-up, worker, clean-up) with ``default_rounds`` when ``--rounds`` is not given."""
    if not any(arg == "--rounds" or arg.startswith("--rounds=") for arg in sys.argv[1:]):
        sys.argv[1:1] = ["--rounds", str(default_rounds)]  # bench.run's own default is 5
    bench.run(description, rounds_body)
