from django import forms
from django.contrib import admin, messages
from django.forms.models import model_to_dict

from provisioning import hosts, services
from provisioning.models import Host, HostImage, Instance, PublishedPort, Stack, StackEvent
from provisioning.reconciler import reconcile_host


class HostAdminForm(forms.ModelForm):
    """Connects to the host before saving, so a wrong URI is refused instead of stored."""

    def clean(self):
        cleaned = super().clean()
        if not self.errors:
            probe = Host(**{**model_to_dict(self.instance, exclude=["id"]), **cleaned})
            hosts.host_probe(host=probe)
            self.observed = {field: getattr(probe, field) for field in Host.OBSERVED_FIELDS}
        return cleaned


@admin.register(Host)
class HostAdmin(admin.ModelAdmin):
    form = HostAdminForm
    list_display = ["name", "uri", "domain_type", "enabled", "healthy", "cpus", "memory_mib", "last_checked_at"]
    list_filter = ["enabled", "healthy", "domain_type"]
    search_fields = ["name", "uri", "hostname"]
    readonly_fields = Host.OBSERVED_FIELDS
    actions = ["refresh", "reconcile"]

    def save_model(self, request, obj, form, change):
        for field, value in form.observed.items():
            setattr(obj, field, value)
        super().save_model(request, obj, form, change)

    @admin.action(description="Remove leftovers no instance claims")
    def reconcile(self, request, queryset):
        for host in queryset:
            result = reconcile_host(host=host)
            names = ", ".join(f"{item.kind} {item.name}" for item in result.removed) or "nothing"
            messages.info(request, f"{host}: removed {names}")
            for problem in result.failed:
                messages.error(request, f"{host}: {problem}")

    @admin.action(description="Re-read capacity and health")
    def refresh(self, request, queryset):
        for host in queryset:
            hosts.host_refresh(host=host)
        messages.info(request, "Hosts refreshed.")


@admin.register(HostImage)
class HostImageAdmin(admin.ModelAdmin):
    list_display = ["volume_name", "host", "image", "state", "capacity_bytes", "uploaded_at"]
    list_filter = ["host", "state"]


class InstanceInline(admin.TabularInline):
    model = Instance
    extra = 0
    fields = ["name", "role", "host", "status", "status_reason", "domain_name", "volume_name"]
    readonly_fields = fields
    can_delete = False


class EventInline(admin.TabularInline):
    model = StackEvent
    extra = 0
    readonly_fields = ["created_at", "message", "is_error"]
    can_delete = False


@admin.register(Stack)
class StackAdmin(admin.ModelAdmin):
    list_display = ["name", "project", "status", "created_by", "created_at", "expires_at"]
    list_filter = ["status", "project"]
    search_fields = ["name", "project__name", "created_by__username"]
    date_hierarchy = "created_at"
    inlines = [InstanceInline, EventInline]
    actions = ["destroy"]

    @admin.action(description="Delete the selected stacks (domains and disks)")
    def destroy(self, request, queryset):
        for stack in queryset:
            try:
                services.stack_destroy(user=request.user, stack=stack, reason="deleted by operator")
            except services.StackStateError as exc:
                messages.warning(request, f"{stack}: {exc}")


@admin.register(Instance)
class InstanceAdmin(admin.ModelAdmin):
    list_display = ["name", "stack", "role", "host", "status", "vcpus", "memory_mib"]
    list_filter = ["status", "host", "role"]
    search_fields = ["name", "domain_name", "stack__name"]


@admin.register(PublishedPort)
class PublishedPortAdmin(admin.ModelAdmin):
    list_display = ["host", "host_port", "guest_port", "instance"]
    list_filter = ["host"]
