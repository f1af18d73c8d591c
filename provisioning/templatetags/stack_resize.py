"""What the stack page's "Resize a tier" panel shows (``templates/provisioning/_stack_resize.html``).

``{% stack_resize_panel as resize %}`` reads the page's ``stack`` and ``request``: the tiers with their
sizes and the instances waiting for a restart, the quota left, where each kind of change applies,
and the form (the one just sent, with its errors, when the resize view sent the page again).
Everything comes from the database: the page never asks a host.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django import template
from django.urls import reverse

from portal import scoping
from portal.models import Role
from provisioning.models import Instance, Status
from provisioning.quotas import QuotaLine, project_usage
from provisioning.resize_limits import live_vcpu_room
from provisioning.resize_views import ResizeForm
from provisioning.services.resize import RESIZE

register = template.Library()

_SHOWN_QUOTAS = ("vcpus", "memory_mib", "disk_gib")


@dataclass(frozen=True)
class TierSize:
    name: str
    instances: list[Instance]
    live_vcpus: int  # the most vCPUs its instances take while running, as their domains were defined

    @property
    def first(self) -> Instance:
        return self.instances[0]

    @property
    def waiting(self) -> list[Instance]:
        return [i for i in self.instances if i.restart_needed]


@dataclass(frozen=True)
class QuotaLeft:
    line: QuotaLine

    @property
    def left(self) -> int:
        return max(0, self.line.limit - self.line.used)


@register.simple_tag(takes_context=True)
def stack_resize_panel(context: template.Context) -> dict[str, Any] | None:
    stack, request = context.get("stack"), context.get("request")
    if stack is None or request is None or stack.status in (Status.DELETING, Status.DELETED):
        return None
    action = reverse("stack-resize", args=[stack.pk])
    instances = list(stack.instances.exclude(status=Status.DELETED).select_related("host").order_by("id"))
    tiers: dict[str, list[Instance]] = {}
    for instance in instances:
        tiers.setdefault(instance.role, []).append(instance)
    role = scoping.role_in(request.user, stack.project)
    sent = getattr(request, "resize_form", None)
    return {
        "action": action,
        "tiers": [TierSize(name, members, min(_live_vcpus(i) for i in members)) for name, members in tiers.items()],
        "quota": [QuotaLeft(line) for line in project_usage(stack.project) if line.key in _SHOWN_QUOTAS],
        "may_resize": role is not None and role.rank >= Role.MEMBER.rank,
        "resizable": stack.status in RESIZE.allowed_from,
        "running": stack.status == Status.RUNNING,
        "form": sent if sent is not None else ResizeForm(stack=stack),
    }


def _live_vcpus(instance: Instance) -> int:
    if instance.host is None:
        return instance.vcpus
    return live_vcpu_room(instance=instance, host=instance.host)
