"""Admin pages for hosts and stacks. Every change goes through a service; owned state is read-only."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from portal import errors
from portal.admin_tools import ObservedOnlyAdmin, ObservedOnlyInline
from provisioning.models import Instance, PublishedPort, Stack, StackEvent
from provisioning.services import lifecycle


class InstanceInline(ObservedOnlyInline):
    model = Instance
    fields = ["name", "role", "host", "status", "status_reason", "domain_name", "volume_name"]
    readonly_fields = fields


class EventInline(ObservedOnlyInline):
    model = StackEvent
    fields = ["created_at", "message", "is_error"]
    readonly_fields = fields
    show_change_link = False


@admin.register(Stack)
class StackAdmin(ObservedOnlyAdmin):
    """Stacks are launched by their projects; operators delete them with the action (domains and disks go too)."""

    list_display = ["name", "project", "status", "created_by", "created_at", "expires_at"]
    list_filter = ["status", "project"]
    search_fields = ["name", "project__name", "created_by__username"]
    date_hierarchy = "created_at"
    inlines = [InstanceInline, EventInline]
    actions = ["destroy"]

    @admin.action(description="Delete the selected stacks (domains and disks)")
    def destroy(self, request: HttpRequest, queryset: QuerySet[Stack]) -> None:
        for stack in queryset:
            try:
                lifecycle.stack_destroy(user=request.user, stack=stack, reason="deleted by operator")
            except errors.PortalError as exc:
                messages.warning(request, f"{stack}: {exc.detail}")


@admin.register(Instance)
class InstanceAdmin(ObservedOnlyAdmin):
    list_display = ["name", "stack", "role", "host", "status", "vcpus", "memory_mib"]
    list_filter = ["status", "host", "role"]
    search_fields = ["name", "domain_name", "stack__name"]


@admin.register(PublishedPort)
class PublishedPortAdmin(ObservedOnlyAdmin):
    list_display = ["host", "host_port", "guest_port", "instance"]
    list_filter = ["host"]


# Registered from their own modules; imported here because Django discovers only ``admin.py``.
from provisioning import admin_hosts  # noqa: E402, F401
