"""Web pages for stacks. Thin: forms in, services called, selectors read."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_http_methods, require_POST

from catalog.selectors import appliance_versions_visible_to
from portal import errors
from portal.models import Project, Role
from portal.moments import moment_text
from portal.scoping import role_in
from portal.web_errors import errors_as_messages, errors_on
from provisioning import quotas, selectors
from provisioning.diagram import tier_diagram
from provisioning.forms import ExtendLeaseForm, LaunchForm, lease_limit
from provisioning.models import DELETABLE_STATUSES, Instance, Stack, Status
from provisioning.services import launch, lifecycle
from provisioning.templates import TemplateDocument

logger = logging.getLogger(__name__)

# Statuses the worker is still moving a stack out of: its page re-reads itself often.
SETTLING = {Status.PENDING, Status.BUILDING, Status.DELETING}
# How a tier's status reads when its instances differ: the first one present wins.
TIER_STATUS_ORDER = [Status.ERROR, Status.DELETING, Status.BUILDING, Status.PENDING, Status.RUNNING, Status.DELETED]
EVENTS_SHOWN = 200


@staff_member_required
def host_overview(request: HttpRequest) -> HttpResponse:
    hosts = selectors.host_capacity()
    # What the chart's script reads of each host; the table under it shows every field.
    chart_fields = [
        *("name", "uri", "healthy", "enabled", "instances"),
        *("vcpus_used", "vcpus_capacity", "memory_used_mib", "memory_capacity_mib"),
    ]
    chart = [{field: host[field] for field in chart_fields} for host in hosts]
    # Chart.js fills its box; give each host's pair of bars room to be read.
    context = {"hosts": hosts, "chart": chart, "chart_height_rem": 5 + 3 * len(hosts)}
    return render(request, "provisioning/hosts.html", context)


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
def stack_launch(request: HttpRequest) -> HttpResponse:
    versions = appliance_versions_visible_to(request.user).order_by("appliance__title", "-published_at")
    initial = {}
    if "version" in request.GET:
        initial["appliance_version"] = request.GET["version"]
    form = LaunchForm(request.POST or None, user=request.user, versions=versions, initial=initial)
    if request.method == "POST":
        if form.is_valid():
            with errors_on(form):
                stack = launch.stack_launch(user=request.user, **form.cleaned_data)
                messages.success(request, f"Stack {stack.name} is being built.")
                return redirect("stack-detail", pk=stack.pk)
        messages.error(request, "The stack was not launched: the form says why.")
    return render(request, "provisioning/launch.html", {"form": form})


@dataclass(frozen=True)
class TierView:
    name: str
    status: str
    instances: list[Instance]


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


def _tiers(stack: Stack, document: TemplateDocument | None) -> list[TierView]:
    """Instances grouped by tier, in the template's order (else as launched), each with one status."""
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
        views.append(TierView(name=name, status=status, instances=instances))
    return views


def _refresh_trigger(stack: Stack, live: bool) -> str:
    """How the status part re-reads itself: on each nudge, with a poll behind it (fast while settling)."""
    if stack.status == Status.DELETED:
        return ""
    settling = stack.status in SETTLING
    if live:
        return "stack-changed, every 15s" if settling else "stack-changed, every 60s"
    return "every 2s" if settling else "every 30s"


def _stack_context(request: HttpRequest, pk: int) -> dict[str, Any]:
    stack = selectors.stack_visible_to(request.user, stack_id=pk)
    role = role_in(request.user, stack.project)
    may_act = role is not None and role.rank >= Role.MEMBER.rank
    # Each version's own download: another project's download of the same bytes is not shown here.
    downloads = {
        instance.appliance_version.pk: instance.appliance_version
        for instance in stack.instances.all()
        if instance.appliance_version.image_state.status == "downloading"
    }
    latest_events = list(stack.events.order_by("-created_at", "-id")[:EVENTS_SHOWN])
    document = _stored_document(stack)
    live = _live_updates()
    return {
        "stack": stack,
        "tiers": _tiers(stack, document),
        "endpoints": selectors.stack_endpoints(stack),
        "events": list(reversed(latest_events)),
        "downloads": list(downloads.values()),
        "settling": stack.status in SETTLING,
        "refresh_trigger": _refresh_trigger(stack, live),
        "live_updates": live and stack.status != Status.DELETED,
        "may_act": may_act,
        "actionable": stack.status in DELETABLE_STATUSES,
        "lease_expired": stack.expires_at <= timezone.now(),
        "lease_limit": lease_limit(stack),
        "extend_form": ExtendLeaseForm(stack=stack),
        # A one-appliance stack is a single box: the diagram says something only for a template.
        "diagram": tier_diagram(document) if document and (stack.template_id or len(document.tiers) > 1) else None,
    }


@login_required
def stack_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return render(request, "provisioning/stack_detail.html", _stack_context(request, pk))


@login_required
def stack_status(request: HttpRequest, pk: int) -> HttpResponse:
    """The live part of the stack page, re-read by htmx on each nudge (and polled behind them)."""
    context = _stack_context(request, pk)
    context["fragment"] = True  # also removes the page's actions once the stack is going away
    return render(request, "provisioning/_stack_status.html", context)


@login_required
@require_POST
def stack_renew_lease(request: HttpRequest, pk: int) -> HttpResponse:
    """Extend the lease: add the chosen time to its current end. Never shortens it."""
    stack = Stack.objects.select_related("project").get_visible(request.user, pk=pk)
    form = ExtendLeaseForm(request.POST, stack=stack)
    if not form.is_valid():
        problems = [str(error) for errors in form.errors.values() for error in errors]
        messages.error(request, f"The lease was not changed. {' '.join(problems)}")
        return redirect("stack-detail", pk=pk)
    previous_end = stack.expires_at
    with errors_as_messages(request):
        # shorten stays False: should the lease have moved meanwhile, the service refuses an earlier end.
        renewed = lifecycle.stack_renew_lease(
            user=request.user, stack=stack, lease_seconds=form.cleaned_data["lease_seconds"]
        )
        added = renewed.expires_at - previous_end
        messages.success(
            request,
            f"Lease extended by about {_minutes(added.total_seconds())}: {renewed.name} now runs until "
            f"{moment_text(renewed.expires_at)}.",
        )
    return redirect("stack-detail", pk=pk)


def _minutes(seconds: float) -> str:
    minutes = round(seconds / 60)
    hours, rest = divmod(minutes, 60)
    if hours and rest:
        return f"{hours} h {rest} min"
    return f"{hours} h" if hours else f"{rest} min"


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
        messages.success(request, f"Stack {stack.name} is being deleted with its disks and network.")
    return redirect("stack-detail", pk=pk)
