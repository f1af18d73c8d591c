"""Admin pages for stacks, templates and flavors (hosts: ``admin_hosts``), writing through the services."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import Model, QuerySet
from django.http import HttpRequest

from portal import errors
from portal.actors import actor_name
from portal.admin_tools import ObservedOnlyAdmin, ObservedOnlyInline, ServiceForm, ServiceFormAdmin
from provisioning import qos
from provisioning.models import (
    Flavor,
    Instance,
    PublishedPort,
    Stack,
    StackEvent,
    StackNetwork,
    StackSnapshot,
    StackTemplate,
)
from provisioning.services import lifecycle, power, shelving, templates


class InstanceInline(ObservedOnlyInline):
    model = Instance
    fields = ["name", "role", "host", "status", "status_reason", "address", "domain_name", "volume_name"]
    readonly_fields = fields


class NetworkInline(ObservedOnlyInline):
    model = StackNetwork
    fields = ["name", "host", "cidr", "released_at"]
    readonly_fields = fields
    show_change_link = False


class EventInline(ObservedOnlyInline):
    model = StackEvent
    fields = ["created_at", "message", "moment", "by", "is_error"]
    readonly_fields = fields

    @admin.display(description="by")
    def by(self, event: StackEvent) -> str:
        return actor_name(event.actor)

    show_change_link = False


class SnapshotInline(ObservedOnlyInline):
    model = StackSnapshot
    fields = ["name", "status", "memory", "size_bytes", "created_by", "created_at", "status_reason"]
    readonly_fields = fields
    show_change_link = False


@admin.register(Stack)
class StackAdmin(ObservedOnlyAdmin):
    """Stacks are launched by their projects; operators delete them with the action (domains and disks go too)."""

    list_display = ["name", "project", "status", "created_by", "created_at", "expires_at", "shelved_at"]
    list_filter = ["status", "project"]
    search_fields = ["name", "project__name", "created_by__username"]
    date_hierarchy = "created_at"
    inlines = [InstanceInline, NetworkInline, SnapshotInline, EventInline]
    actions = ["destroy", "shut_down", "start", "shelve", "unshelve", "extend"]

    def _each(self, request: HttpRequest, queryset: QuerySet[Stack], act: Callable[[Stack], object]) -> None:
        """Act on each selected stack through its service (the same rules as the API); say each refusal."""
        for stack in queryset:
            try:
                act(stack)
            except errors.PortalError as exc:
                messages.warning(request, f"{stack}: {exc.detail}")

    @admin.action(description="Delete the selected stacks (domains and disks)")
    def destroy(self, request: HttpRequest, queryset: QuerySet[Stack]) -> None:
        self._each(
            request,
            queryset,
            lambda s: lifecycle.stack_destroy(user=request.user, stack=s, reason="deleted by operator"),
        )

    @admin.action(description="Shut down the selected stacks (ACPI, then forced)")
    def shut_down(self, request: HttpRequest, queryset: QuerySet[Stack]) -> None:
        self._each(request, queryset, lambda s: power.stack_power(user=request.user, stack=s, action="shutdown"))

    @admin.action(description="Start the selected stacks")
    def start(self, request: HttpRequest, queryset: QuerySet[Stack]) -> None:
        self._each(request, queryset, lambda s: power.stack_power(user=request.user, stack=s, action="start"))

    @admin.action(description="Shelve the selected stacks (memory kept, vCPUs and memory given back)")
    def shelve(self, request: HttpRequest, queryset: QuerySet[Stack]) -> None:
        self._each(request, queryset, lambda s: shelving.stack_shelve(user=request.user, stack=s))

    @admin.action(description="Unshelve the selected stacks")
    def unshelve(self, request: HttpRequest, queryset: QuerySet[Stack]) -> None:
        self._each(request, queryset, lambda s: shelving.stack_unshelve(user=request.user, stack=s))

    @admin.action(description="Extend the selected stacks' leases as far as their policy allows")
    def extend(self, request: HttpRequest, queryset: QuerySet[Stack]) -> None:
        self._each(request, queryset, lambda s: lifecycle.stack_extend(user=request.user, stack=s))


@admin.register(Instance)
class InstanceAdmin(ObservedOnlyAdmin):
    list_display = ["name", "stack", "role", "host", "status", "vcpus", "memory_mib"]

    def get_readonly_fields(self, request: HttpRequest, obj: Model | None = None) -> list[str]:
        # The VNC password is the proxy's alone: not even operators see it.
        return [name for name in super().get_readonly_fields(request, obj) if name != "vnc_password"]

    list_filter = ["status", "host", "role"]
    search_fields = ["name", "domain_name", "stack__name"]


@admin.register(PublishedPort)
class PublishedPortAdmin(ObservedOnlyAdmin):
    list_display = ["host", "host_port", "guest_port", "instance"]
    list_filter = ["host"]


class TemplateForm(ServiceForm):
    """Templates are validated by the template services; refusals show on the form with their paths."""

    class Meta:
        model = StackTemplate
        fields = ["project", "name", "description", "source"]

    def save_through_service(self, cleaned: dict[str, Any]) -> Model:
        if self.instance.pk is None:
            return templates.template_create(
                user=self.request.user,
                project=cleaned.get("project"),
                name=cleaned["name"],
                source=cleaned["source"],
                description=cleaned.get("description", ""),
            )
        current = StackTemplate.objects.get(pk=self.instance.pk)
        return templates.template_update(
            user=self.request.user,
            template=current,
            name=cleaned["name"],
            source=cleaned["source"],
            description=cleaned.get("description", ""),
        )


@admin.register(StackTemplate)
class StackTemplateAdmin(ServiceFormAdmin):
    form = TemplateForm
    list_display = ["name", "project", "description", "updated_at"]
    list_filter = ["project"]
    search_fields = ["name", "description"]
    readonly_fields = ["document", "created_by", "created_at", "updated_at"]

    def get_readonly_fields(self, request: HttpRequest, obj: Model | None = None) -> list[str]:
        # The project is chosen once: moving a template between projects would change who may launch it.
        return [*self.readonly_fields, "project"] if obj is not None else list(self.readonly_fields)

    def delete_model(self, request: HttpRequest, obj: StackTemplate) -> None:
        templates.template_delete(user=request.user, template=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[StackTemplate]) -> None:
        for template in queryset:
            templates.template_delete(user=request.user, template=template)


class FlavorForm(forms.ModelForm):
    class Meta:
        model = Flavor
        fields = ["project", "name", "vcpus", "memory_mib", "disk_gib", *qos.QOS_FIELDS]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        for name in (*qos.LIMIT_FIELDS, "cpu_shares"):
            problem = qos.limit_problem(name, cleaned.get(name))
            if problem:
                self.add_error(name, problem)
        return cleaned


@admin.register(Flavor)
class FlavorAdmin(admin.ModelAdmin):
    """Named sizes for templates: shared (no project) or a project's own. Operator settings, like quotas.

    Its quality of service is copied into each instance at launch: a change applies to later launches.
    """

    form = FlavorForm
    list_display = ["name", "project", "vcpus", "memory_mib", "disk_gib", "dedicated_cpus", "limits"]
    list_filter = ["project", "dedicated_cpus"]
    search_fields = ["name"]
    fieldsets = [
        (None, {"fields": ["project", "name", "vcpus", "memory_mib", "disk_gib"]}),
        (
            "Quality of service (applies to stacks launched after a change)",
            {"fields": list(qos.QOS_FIELDS)},
        ),
    ]

    @admin.display(description="Limits")
    def limits(self, flavor: Flavor) -> str:
        return qos.describe(qos.flavor_qos(flavor)) or "none"


# Registered from their own modules; imported here because Django discovers only ``admin.py``.
from provisioning import admin_hosts  # noqa: E402, F401
