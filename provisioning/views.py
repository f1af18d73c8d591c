"""Web pages for stacks. Thin: forms in, services called, selectors read."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import login_required
from django.contrib.messages.storage.base import Message
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_http_methods, require_POST

from portal import errors
from portal.models import Project, Role, RunEnd
from portal.moments import duration_text, moment_text
from portal.scoping import role_in
from portal.web_errors import errors_as_messages
from provisioning import launch_views, quotas, selectors
from provisioning.diagram import tier_diagram
from provisioning.forms import LEAST_GAIN, ExtendLeaseForm, ShelveForm, SnapshotForm
from provisioning.host_page import hosts_page
from provisioning.lease_policy import extendable_until, latest_end
from provisioning.models import BUSY_STATUSES, DELETABLE_STATUSES, Instance, Stack, StackSnapshot, Status
from provisioning.services import lifecycle
from provisioning.templates import TemplateDocument

logger = logging.getLogger(__name__)

# Statuses the worker is still moving a stack out of: its page re-reads itself often.
SETTLING = {Status.PENDING, Status.BUILDING, Status.DELETING, *BUSY_STATUSES}
# How a tier's status reads when its instances differ: the first one present wins (what needs a look first).
TIER_STATUS_ORDER = [
    Status.ERROR,
    Status.DELETING,
    *BUSY_STATUSES,
    Status.BUILDING,
    Status.PENDING,
    Status.STOPPED,
    Status.SHELVED,
    Status.RUNNING,
    Status.DELETED,
]
EVENTS_SHOWN = 200
# Where on the stack page a message about an action shows: next to the controls it came from. The
# action views tag their messages with a place (``extra_tags``); the page's other messages stay on top.
NOTE_PLACES = ("actions", "tiers", "snapshots", "lease")
# Power buttons by the status they apply to (a whole stack's settled status, or one instance's):
# (action, button text).
POWER_BUTTONS = {
    Status.STOPPED: [("start", "Start")],
    Status.RUNNING: [("shutdown", "Shut down"), ("poweroff", "Power off"), ("reboot", "Reboot")],
}
# Stack statuses in which its instances' power may be asked for (as the power service allows).
POWERED = (Status.RUNNING, Status.STOPPED)


@staff_member_required
def host_overview(request: HttpRequest) -> HttpResponse:
    return hosts_page(request)


def _live_updates() -> bool:
    """Pushed nudges reach pages only when workers and web share a channel layer (Redis)."""
    return bool(settings.REDIS_URL)


@login_required
def stack_list(request: HttpRequest) -> HttpResponse:
    """The user's stacks; asked by htmx (the live list), only the table's body."""
    stacks = selectors.stacks_visible_to(request.user).exclude(status=Status.DELETED)
    project = None
    if request.GET.get("project", "").isdigit():
        project = Project.objects.visible_to(request.user).filter(pk=int(request.GET["project"])).first()
        if project is not None:
            stacks = stacks.filter(project=project)
    context: dict[str, Any] = {
        "stacks": stacks,
        "project": project,
        "live_updates": _live_updates(),
    }
    if request.headers.get("HX-Request"):
        response = render(request, "provisioning/_stack_rows.html", context)
    else:
        overview = quotas.quota_overview(request.user)
        context["quotas"] = [entry for entry in overview if project is None or entry.project.pk == project.pk]
        response = render(request, "provisioning/stack_list.html", context)
    # The same address answers a whole page or a table body: caches must keep them apart.
    patch_vary_headers(response, ["HX-Request"])
    return response


@login_required
@require_http_methods(["GET", "POST"])
def stack_launch(request: HttpRequest) -> HttpResponse:
    """One appliance's launch: the dialog's form, its preview, and the launch (``launch_views``)."""
    return launch_views.appliance_launch(request)


@dataclass(frozen=True)
class InstanceRow:
    instance: Instance
    power: list[tuple[str, str]]  # (action, button text) that apply to it now


@dataclass(frozen=True)
class TierView:
    name: str
    status: str
    rows: list[InstanceRow]


def _stored_document(stack: Stack) -> TemplateDocument | None:
    """The stack's template, or None when it no longer passes today's rules (a row stored before
    them, say a tier named 'Web Server'): its page still shows, from its instances alone."""
    if not stack.document:
        return None
    try:
        return TemplateDocument.from_json(stack.document)
    except errors.Invalid as exc:
        logger.warning("stack %s: its stored document does not read any more: %s", stack.pk, exc.detail)
        return None


def _tiers(stack: Stack, document: TemplateDocument | None, *, power: bool) -> list[TierView]:
    """Instances grouped by tier, in the template's order (else as launched), each with one status.

    ``power``: whether the reader may act and the stack is in a status where its instances' power may
    be asked for; each row then carries the power buttons its instance's status calls for.
    """
    by_tier: dict[str, list[Instance]] = {}
    if document is not None:
        for tier in document.tiers:
            by_tier[tier.name] = []
    for instance in stack.instances.all():
        by_tier.setdefault(instance.role, []).append(instance)
    views = []
    for name, instances in by_tier.items():
        present = {instance.status for instance in instances}
        status = next((s for s in TIER_STATUS_ORDER if s in present), Status.PENDING)
        rows = [InstanceRow(i, POWER_BUTTONS.get(Status(i.status), []) if power else []) for i in instances]
        views.append(TierView(name=name, status=status, rows=rows))
    return views


def _refresh_trigger(stack: Stack, live: bool) -> str:
    """How the status part re-reads itself: on each nudge, with a poll behind it (fast while settling)."""
    if stack.status == Status.DELETED:
        return ""
    settling = stack.status in SETTLING
    if live:
        return "stack-changed, every 15s" if settling else "stack-changed, every 60s"
    return "every 2s" if settling else "every 30s"


def _at_lease_end(stack: Stack, settled: str) -> str:
    """What the lease sweep does to the stack when its lease ends: "shelved" or "deleted"."""
    if settled in (Status.RUNNING, Status.STOPPED) and stack.project.at_run_end == RunEnd.SHELVE:
        return "shelved"
    return "deleted"


def _actions_key(stack: Stack, snapshots: list[StackSnapshot], may_act: bool, until: str) -> str:
    """What the actions column shows, in short: the page's script swaps the column in only when it
    changed, so a half-typed snapshot name or an open dialog is not replaced by the same thing."""
    parts = [stack.status, stack.status_before, str(may_act), stack.expires_at.isoformat(), until]
    parts += [f"{snapshot.pk}:{snapshot.status}" for snapshot in snapshots]
    return "|".join(parts)


def _stack_context(request: HttpRequest, pk: int, *, snapshot_form: SnapshotForm | None = None) -> dict[str, Any]:
    stack = selectors.stack_visible_to(request.user, stack_id=pk)
    role = role_in(request.user, stack.project)
    may_act = role is not None and role.rank >= Role.MEMBER.rank
    busy = stack.status in BUSY_STATUSES
    # The status the buttons are for: while a job runs, the one it came from (shown, but disabled).
    settled = (stack.status_before or stack.status) if busy else stack.status
    # Each version's own download: another project's download of the same bytes is not shown here.
    # (A deleted stack's instance may have no version left: its feed was removed since.)
    downloads = {
        instance.appliance_version.pk: instance.appliance_version
        for instance in stack.instances.all()
        if instance.appliance_version is not None and instance.appliance_version.image_state.status == "downloading"
    }
    latest_events = list(stack.events.select_related("actor").order_by("-created_at", "-id")[:EVENTS_SHOWN])
    document = _stored_document(stack)
    live = _live_updates()
    snapshots = list(stack.snapshots.select_related("created_by"))
    until = extendable_until(stack)
    extend_form = ExtendLeaseForm(stack=stack)
    project = stack.project
    return {
        "stack": stack,
        "tiers": _tiers(stack, document, power=may_act and settled in POWERED),
        "endpoints": selectors.stack_endpoints(stack),
        "events": list(reversed(latest_events)),
        # A job that failed puts the stack back where it was: say so at the top, not only in the log.
        "last_failure": latest_events[0] if latest_events and latest_events[0].is_error and not busy else None,
        "downloads": list(downloads.values()),
        "settling": stack.status in SETTLING,
        "refresh_trigger": _refresh_trigger(stack, live),
        "live_updates": live and stack.status != Status.DELETED,
        "may_act": may_act,
        "busy": busy,
        "settled": settled,
        "actionable": stack.status in DELETABLE_STATUSES,
        "shows_actions": stack.status not in (Status.DELETING, Status.DELETED),
        "power_buttons": POWER_BUTTONS.get(Status(settled), []) if settled else [],
        "can_shelve": settled in (Status.RUNNING, Status.STOPPED),
        "can_unshelve": settled == Status.SHELVED,
        "can_snapshot": settled in (Status.RUNNING, Status.STOPPED),
        "snapshots": snapshots,
        "snapshot_form": snapshot_form or SnapshotForm(auto_id="snapshot-%s"),
        "shelve_form": ShelveForm(auto_id="shelve-%s"),
        "lease_expired": stack.expires_at <= timezone.now(),
        "at_lease_end": _at_lease_end(stack, settled),
        "storage_lease": duration_text(project.storage_lease_seconds),
        "max_extension": duration_text(project.max_extension_seconds),
        "extendable_until": until,
        "can_extend_now": until - stack.expires_at >= LEAST_GAIN,
        "at_longest_life": latest_end(stack) - stack.expires_at < LEAST_GAIN,
        "latest_end": latest_end(stack),
        "extend_form": extend_form,
        "actions_key": _actions_key(stack, snapshots, may_act, until.strftime("%Y%m%d%H%M")),
        # A one-appliance stack is a single box: the diagram says something only for a template.
        "diagram": tier_diagram(document) if document and (stack.template_id or len(document.tiers) > 1) else None,
    }


def _page_messages(request: HttpRequest, context: dict[str, Any]) -> None:
    """Messages of an action next to its controls (``notes``), the rest on top (``messages``).

    A place the page does not show now (the stack went away meanwhile) gives its messages to the top.
    The view's ``messages`` shadows the context processor's for this page's base template.
    """
    shown = set(NOTE_PLACES) if context["shows_actions"] else set()
    if context["stack"].status == Status.DELETED:
        shown.discard("tiers")
    notes: dict[str, list[Message]] = {place: [] for place in NOTE_PLACES}
    general: list[Message] = []
    for message in messages.get_messages(request):
        place = next((tag for tag in message.extra_tags.split() if tag in shown), None) if message.extra_tags else None
        (notes[place] if place else general).append(message)
    context["notes"] = notes
    context["messages"] = general


def stack_page(
    request: HttpRequest, pk: int, *, snapshot_form: SnapshotForm | None = None, status: int = 200
) -> HttpResponse:
    """The whole stack page; with ``snapshot_form``, the one just sent, its errors next to its fields."""
    context = _stack_context(request, pk, snapshot_form=snapshot_form)
    _page_messages(request, context)
    return render(request, "provisioning/stack_detail.html", context, status=status)


@login_required
def stack_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return stack_page(request, pk)


@login_required
def stack_status(request: HttpRequest, pk: int) -> HttpResponse:
    """The live part of the stack page, re-read by htmx on each nudge (and polled behind them)."""
    context = _stack_context(request, pk)
    context["fragment"] = True  # also sends the actions column again (hx-swap-oob): it follows the status
    return render(request, "provisioning/_stack_status.html", context)


def note(request: HttpRequest, place: str, text: str, *, error: bool = False) -> None:
    """A message shown next to the page's controls at ``place`` (one of ``NOTE_PLACES``)."""
    (messages.error if error else messages.success)(request, text, extra_tags=place)


@contextmanager
def refusals_noted(request: HttpRequest, place: str, doing: str) -> Iterator[None]:
    """A portal error (the service said no) becomes a message at ``place``: "Could not <doing>: why."

    ``NotFound`` is left to the error page (the middleware's 404), as ``errors_as_messages`` does.
    """
    try:
        yield
    except errors.NotFound:
        raise
    except errors.PortalError as exc:
        note(request, place, f"Could not {doing}: {exc.detail}.", error=True)


def lease_moved_text(stack: Stack, previous_end: datetime) -> str:
    """What a longer lease means, for the message after an extension."""
    added = stack.expires_at - previous_end
    kept = "is kept" if stack.status == Status.SHELVED else "now runs"
    return (
        f"Lease extended by about {_to_the_minute(added)}: {stack.name} {kept} until {moment_text(stack.expires_at)}."
    )


@login_required
@require_POST
def stack_renew_lease(request: HttpRequest, pk: int) -> HttpResponse:
    """Set the lease to end the chosen time from now, as the project's policy allows. Never shortens it."""
    stack = Stack.objects.select_related("project").get_visible(request.user, pk=pk)
    form = ExtendLeaseForm(request.POST, stack=stack)
    if not form.is_valid():
        problems = [str(error) for errors in form.errors.values() for error in errors]
        note(request, "lease", f"The lease was not changed. {' '.join(problems)}", error=True)
        return redirect("stack-detail", pk=pk)
    previous_end = stack.expires_at
    with refusals_noted(request, "lease", "extend the lease"):
        # shorten stays False: should the lease have moved meanwhile, the service refuses an earlier end.
        renewed = lifecycle.stack_renew_lease(
            user=request.user, stack=stack, lease_seconds=form.cleaned_data["lease_seconds"]
        )
        note(request, "lease", lease_moved_text(renewed, previous_end))
    return redirect("stack-detail", pk=pk)


def _to_the_minute(length: timedelta) -> str:
    """A length measured between two clocks, to the nearest minute (the seconds are the clocks' noise)."""
    return duration_text(round(length.total_seconds() / 60) * 60)


@login_required
@require_http_methods(["GET", "POST"])
def stack_delete(request: HttpRequest, pk: int) -> HttpResponse:
    """GET: the confirmation step (what the page's dialog shows, for browsers without scripts); POST: delete."""
    stack = Stack.objects.select_related("project").get_visible(request.user, pk=pk)
    if request.method == "GET":
        if stack.status not in DELETABLE_STATUSES:
            messages.info(request, f"Stack {stack.name} is already {stack.get_status_display().lower()}.")
            return redirect("stack-detail", pk=pk)
        return render(request, "provisioning/stack_delete.html", {"stack": stack})
    with errors_as_messages(request):
        lifecycle.stack_destroy(user=request.user, stack=stack)
        messages.success(
            request, f"Stack {stack.name} is being deleted with its disks and network.", extra_tags="while-deleting"
        )
    return redirect("stack-detail", pk=pk)
