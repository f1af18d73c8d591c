"""The console pages: an instance's screen (noVNC) and its serial console (xterm.js).

The pages hold no secret: their script asks the API for a fresh ticket each time it connects.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse

from portal.models import Role
from portal.scoping import require_role
from provisioning.models import Instance

TEMPLATES = {"vnc": "provisioning/console_vnc.html", "serial": "provisioning/console_serial.html"}


def _page(request: HttpRequest, pk: int, kind: str) -> HttpResponse:
    instance = Instance.objects.select_related("stack__project").get_visible(request.user, pk=pk)
    require_role(request.user, instance.stack.project, Role.MEMBER)
    context = {
        "instance": instance,
        "stack": instance.stack,
        "kind": kind,
        "ticket_url": reverse("api:instance-console", args=[instance.pk]),
        "log_url": reverse("api:instance-console-log", args=[instance.pk]),
    }
    return render(request, TEMPLATES[kind], context)


@login_required
def instance_screen(request: HttpRequest, pk: int) -> HttpResponse:
    return _page(request, pk, "vnc")


@login_required
def instance_serial(request: HttpRequest, pk: int) -> HttpResponse:
    return _page(request, pk, "serial")
