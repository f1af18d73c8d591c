"""The stack page's "Move to another host" panel (operators only): GET draws it, POST starts the move.

The panel is loaded by htmx into its place on the stack page (``_stack_move.html`` draws both the
placeholder and the panel), so the page itself reads no host list for people who may not move
stacks. A POST calls the migration service with the chosen host, or none for placement's choice;
the answer is the panel again with what happened written in it, and the stack's status (moving,
then running on its new host) follows on the page as for any other job.
"""

from __future__ import annotations

from contextlib import suppress

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.messages.storage.base import Message
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from portal import errors
from portal.scoping import is_operator
from provisioning.drivers import DriverError
from provisioning.models import Host, Stack, Status
from provisioning.services import migration
from provisioning.services.stack_jobs import stack_host

MOVABLE = (Status.RUNNING,)


def _stack(request: HttpRequest, pk: int) -> Stack:
    if not is_operator(request.user):
        raise Http404("no such page")
    return Stack.objects.select_related("project").get_visible(request.user, pk=pk)


def _targets(stack: Stack) -> list[Host]:
    """Hosts an operator may pick: those placement could use, other than the stack's own."""
    usable = Host.objects.filter(enabled=True, healthy=True, draining=False, maintenance=False)
    with suppress(DriverError):  # no instance on a host: nothing to exclude
        usable = usable.exclude(pk=stack_host(stack).pk)
    return list(usable.order_by("name"))


def _panel(request: HttpRequest, stack: Stack, notes: list[Message]) -> HttpResponse:
    context = {"stack": stack, "move_panel": True, "targets": _targets(stack), "movable": stack.status in MOVABLE}
    return render(request, "provisioning/_stack_move.html", context | {"notes": notes})


@login_required
@require_http_methods(["GET", "POST"])
def stack_move(request: HttpRequest, pk: int) -> HttpResponse:
    stack = _stack(request, pk)
    if request.method == "GET":
        if not request.headers.get("HX-Request"):
            return redirect("stack-detail", pk=stack.pk)
        return _panel(request, stack, [])
    level, text = messages.SUCCESS, ""
    try:
        target = _chosen(request)
        operation = migration.begin_stack_migration(user=request.user, stack=stack, target=target)
        where = operation.target_host.name if operation.target_host is not None else "the host placement chose"
        text = f"Moving {stack.name} to {where} (operation {operation.pk}); it keeps running while it moves."
    except errors.NotFound:
        raise
    except errors.PortalError as exc:
        level, text = messages.ERROR, f"Could not move {stack.name}: {exc.detail}."
    stack.refresh_from_db()
    if request.headers.get("HX-Request"):
        return _panel(request, stack, [Message(level, text)])
    messages.add_message(request, level, text)
    return redirect("stack-detail", pk=stack.pk)


def _chosen(request: HttpRequest) -> Host | None:
    """The host picked in the form; empty for placement's choice."""
    value = request.POST.get("host", "").strip()
    if not value:
        return None
    host = Host.objects.filter(pk=int(value)).first() if value.isdigit() else None
    if host is None:
        raise errors.Invalid("no such host")
    return host
