"""The Hosts page's actions: drain, undrain, refresh, evacuate, maintenance (operators only, POST only),
and a host's row alone, which the page re-reads while an evacuation runs.

Thin: the host services do the work and keep the audit trail. Asked by htmx, an action answers the
host's row with what happened written in it; asked by a plain form, it goes back to the Hosts page,
where the same words are shown on that row.

Anyone who is not an operator gets a 404, as for a host that does not exist: the page and its
actions are not there for them.
"""

from __future__ import annotations

from collections.abc import Callable

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.messages.storage.base import Message
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from portal import errors
from portal.scoping import is_operator
from provisioning.host_page import host_row, note_tag
from provisioning.models import Host
from provisioning.services import evacuation, hosts, maintenance


def _host(request: HttpRequest, pk: int) -> Host:
    if not is_operator(request.user):
        raise Http404("no such page")
    host = Host.objects.filter(pk=pk).first()
    if host is None:
        raise Http404("no such host")
    return host


def _answer(request: HttpRequest, host: Host, act: Callable[[Host], str]) -> HttpResponse:
    """Run ``act`` (which returns what it did, in words) and show the outcome on the host's row."""
    try:
        level, text = messages.SUCCESS, act(host)
    except errors.PortalError as exc:
        level, text = messages.ERROR, f"{host.name}: {exc.detail}"
    if request.headers.get("HX-Request"):
        return host_row(request, host.pk, [Message(level, text)])
    messages.add_message(request, level, text, extra_tags=note_tag(host.pk))
    return redirect(reverse("host-overview") + f"#host-{host.pk}")


def _drain(request: HttpRequest) -> Callable[[Host], str]:
    def act(host: Host) -> str:
        hosts.host_drain(user=request.user, host=host)
        return f"{host.name} is draining: its stacks keep running, new stacks go to other hosts."

    return act


def _undrain(request: HttpRequest) -> Callable[[Host], str]:
    def act(host: Host) -> str:
        hosts.host_undrain(user=request.user, host=host)
        if host.enabled and host.healthy:
            return f"{host.name} takes new stacks again."
        return f"{host.name} is no longer draining, but takes no new stacks while it is disabled or unhealthy."

    return act


def _evacuate(request: HttpRequest) -> Callable[[Host], str]:
    def act(host: Host) -> str:
        operation = evacuation.begin_evacuation(user=request.user, host=host)
        return f"Evacuating {host.name} (operation {operation.pk}): its running stacks move to other hosts one by one."

    return act


def _maintenance(request: HttpRequest) -> Callable[[Host], str]:
    def act(host: Host) -> str:
        operation = maintenance.begin_maintenance(user=request.user, host=host)
        return (
            f"{host.name} is draining and being evacuated (operation {operation.pk}); "
            "it enters maintenance once no running stack is left on it."
        )

    return act


def _refresh(host: Host) -> str:
    hosts.host_refresh(host=host)
    if host.healthy:
        return f"{host.name} was read again: healthy."
    if host.maintenance and not host.health_error:
        return f"{host.name} was read again: it does not answer, as expected in maintenance."
    return f"{host.name} was read again: unhealthy: {host.health_error}"


@login_required
@require_POST
def host_drain(request: HttpRequest, pk: int) -> HttpResponse:
    """Place no new stacks on the host; the ones it runs keep running until they end."""
    return _answer(request, _host(request, pk), _drain(request))


@login_required
@require_POST
def host_undrain(request: HttpRequest, pk: int) -> HttpResponse:
    """Let placement put new stacks on the host again."""
    return _answer(request, _host(request, pk), _undrain(request))


@login_required
@require_POST
def host_refresh(request: HttpRequest, pk: int) -> HttpResponse:
    """Read the host's capacity and health again (changes nothing on the host)."""
    return _answer(request, _host(request, pk), _refresh)


@login_required
@require_POST
def host_evacuate(request: HttpRequest, pk: int) -> HttpResponse:
    """Move every running stack off a draining host, one after another."""
    return _answer(request, _host(request, pk), _evacuate(request))


@login_required
@require_POST
def host_maintenance(request: HttpRequest, pk: int) -> HttpResponse:
    """Drain and evacuate the host, then put it in maintenance (its libvirtd may then stop)."""
    return _answer(request, _host(request, pk), _maintenance(request))


@login_required
@require_GET
def host_row_view(request: HttpRequest, pk: int) -> HttpResponse:
    """The host's row as it is now: the page re-reads it while the host's evacuation runs."""
    return host_row(request, _host(request, pk).pk, [])
