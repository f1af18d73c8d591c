"""Web pages for stacks. Thin: forms in, services called, selectors read."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from catalog.selectors import appliance_versions_visible_to
from portal.web_errors import errors_as_messages, errors_on
from provisioning import quotas, selectors
from provisioning.diagram import tier_diagram
from provisioning.forms import LaunchForm, LeaseForm
from provisioning.models import Stack, Status
from provisioning.services import launch, lifecycle
from provisioning.templates import TemplateDocument

TERMINAL = {Status.RUNNING, Status.DELETED, Status.ERROR}


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


@login_required
def stack_list(request: HttpRequest) -> HttpResponse:
    stacks = selectors.stacks_visible_to(request.user).exclude(status=Status.DELETED)
    context = {"stacks": stacks, "quotas": quotas.quota_overview(request.user)}
    return render(request, "provisioning/stack_list.html", context)


@login_required
def stack_launch(request: HttpRequest) -> HttpResponse:
    versions = appliance_versions_visible_to(request.user).order_by("appliance__title", "-published_at")
    initial = {}
    if "version" in request.GET:
        initial["appliance_version"] = request.GET["version"]
    form = LaunchForm(request.POST or None, user=request.user, versions=versions, initial=initial)
    if request.method == "POST" and form.is_valid():
        with errors_on(form):
            stack = launch.stack_launch(user=request.user, **form.cleaned_data)
            messages.success(request, f"Stack {stack.name} is being built.")
            return redirect("stack-detail", pk=stack.pk)
    return render(request, "provisioning/launch.html", {"form": form})


def _stack_context(request: HttpRequest, pk: int) -> dict:
    stack = selectors.stack_visible_to(request.user, stack_id=pk)
    image_progress = [
        instance.appliance_version.image
        for instance in stack.instances.all()
        if instance.appliance_version.image.status == "downloading"
    ]
    return {
        "stack": stack,
        "endpoints": selectors.stack_endpoints(stack),
        "events": stack.events.all()[:200],
        "downloads": image_progress,
        "polling": stack.status not in TERMINAL,
        # Pushed nudges reach the page only when workers and web share a channel layer (Redis).
        "live_updates": bool(settings.REDIS_URL),
        "lease_form": LeaseForm(),
        "diagram": tier_diagram(TemplateDocument.from_json(stack.document)) if stack.document else None,
    }


@login_required
def stack_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return render(request, "provisioning/stack_detail.html", _stack_context(request, pk))


@login_required
def stack_status(request: HttpRequest, pk: int) -> HttpResponse:
    """The live part of the stack page, polled by htmx until the stack settles."""
    return render(request, "provisioning/_stack_status.html", _stack_context(request, pk))


@login_required
@require_POST
def stack_renew_lease(request: HttpRequest, pk: int) -> HttpResponse:
    stack = Stack.objects.get_visible(request.user, pk=pk)
    form = LeaseForm(request.POST)
    if not form.is_valid():
        messages.error(request, "choose one of the offered leases")
        return redirect("stack-detail", pk=pk)
    with errors_as_messages(request):
        renewed = lifecycle.stack_renew_lease(user=request.user, stack=stack, **form.cleaned_data)
        messages.success(request, f"Lease renewed: {renewed.name} runs until {renewed.expires_at:%Y-%m-%d %H:%M %Z}.")
    return redirect("stack-detail", pk=pk)


@login_required
@require_POST
def stack_delete(request: HttpRequest, pk: int) -> HttpResponse:
    stack = Stack.objects.get_visible(request.user, pk=pk)
    with errors_as_messages(request):
        lifecycle.stack_destroy(user=request.user, stack=stack)
        messages.success(request, f"Stack {stack.name} is being deleted with its disks and network.")
    return redirect("stack-detail", pk=pk)
