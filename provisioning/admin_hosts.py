"""Admin pages for hosts: registered, changed and drained through the host services, read-only base volumes."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import Model, QuerySet
from django.http import HttpRequest

from portal.admin_tools import ObservedOnlyAdmin, ServiceForm, ServiceFormAdmin
from provisioning import qos
from provisioning.host_sizes import disk_sum, memory_sum, state_words, vcpu_sum
from provisioning.models import Host, HostImage
from provisioning.services import hosts
from provisioning.services.reconcile import reconcile_host


class HostForm(ServiceForm):
    """Connects to the host before saving, so a wrong URI is refused instead of stored."""

    class Meta:
        model = Host
        fields = list(Host.SETTABLE_FIELDS)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        for name in ("disk_bytes_sec_ceiling", "disk_iops_sec_ceiling", "net_kib_sec_ceiling"):
            problem = qos.limit_problem(name, cleaned.get(name))
            if problem:
                self.add_error(name, problem)
        cpu_set = cleaned.get("dedicated_cpu_set")
        problem = cpu_set and qos.cpu_set_problem(cpu_set, host_cpus=self.instance.cpus)
        if problem:
            self.add_error("dedicated_cpu_set", problem)
        return cleaned

    def save_through_service(self, cleaned: dict[str, Any]) -> Model:
        settable = {field: cleaned[field] for field in Host.SETTABLE_FIELDS if field in cleaned}
        if self.instance.pk is None:
            return hosts.host_register(user=self.request.user, **settable)
        current = Host.objects.get(pk=self.instance.pk)
        return hosts.host_update(user=self.request.user, host=current, **settable)


@admin.register(Host)
class HostAdmin(ServiceFormAdmin):
    form = HostForm
    list_display = [
        "name",
        "uri",
        "domain_type",
        "enabled",
        "draining",
        "healthy",
        "takes_launches",
        "vcpus_to_place",
        "memory_to_place",
        "disk_to_place",
        "dedicated_cpus_free",
        "last_checked_at",
    ]
    list_filter = ["enabled", "draining", "healthy", "domain_type"]
    search_fields = ["name", "uri", "hostname"]
    # Draining is changed with the drain and undrain actions (audited), not on the form.
    readonly_fields = [
        "draining",
        *Host.OBSERVED_FIELDS,
        "vcpus_to_place",
        "memory_to_place",
        "disk_to_place",
        "dedicated_cpus_free",
    ]
    actions = ["refresh", "repair", "reconcile", "drain", "undrain"]

    # Physical size and overcommit side by side, as on the Hosts page: "2 CPUs" here and "8 vCPUs"
    # there must not read as two different hosts.
    @admin.display(description="New stacks")
    def takes_launches(self, host: Host) -> str:
        return state_words(host)

    @admin.display(description="virtual CPUs to place")
    def vcpus_to_place(self, host: Host) -> str:
        return vcpu_sum(host)

    @admin.display(description="Memory to place")
    def memory_to_place(self, host: Host) -> str:
        return memory_sum(host)

    @admin.display(description="Disk to place")
    def disk_to_place(self, host: Host) -> str:
        return disk_sum(host)

    @admin.display(description="Dedicated CPUs free")
    def dedicated_cpus_free(self, host: Host) -> str:
        if not host.pk or not host.dedicated_cpu_set.strip():
            return "none set"
        free = qos.free_dedicated_cpus(host)
        return f"{len(free)} of {len(qos.parse_cpu_set(host.dedicated_cpu_set))} ({qos.cpu_list(free) or 'none'})"

    @admin.action(description="Drain: keep their stacks, place no new ones")
    def drain(self, request: HttpRequest, queryset: QuerySet[Host]) -> None:
        for host in queryset:
            hosts.host_drain(user=request.user, host=host)
        messages.info(request, f"Draining {', '.join(host.name for host in queryset)}.")

    @admin.action(description="Undrain: place new stacks again")
    def undrain(self, request: HttpRequest, queryset: QuerySet[Host]) -> None:
        for host in queryset:
            hosts.host_undrain(user=request.user, host=host)
        messages.info(request, f"No longer draining {', '.join(host.name for host in queryset)}.")

    @admin.action(description="Remove leftovers no instance claims and idle base images")
    def reconcile(self, request: HttpRequest, queryset: QuerySet[Host]) -> None:
        for host in queryset:
            result = reconcile_host(host=host)
            names = ", ".join(f"{item.kind} {item.name}" for item in result.removed) or "nothing"
            messages.info(request, f"{host}: removed {names}")
            for problem in result.failed:
                messages.error(request, f"{host}: {problem}")

    @admin.action(description="Re-read capacity and health")
    def refresh(self, request: HttpRequest, queryset: QuerySet[Host]) -> None:
        for host in queryset:
            hosts.host_refresh(host=host)
        messages.info(request, "Hosts refreshed.")

    @admin.action(description="Repair: set the storage pool up again (define, build, start)")
    def repair(self, request: HttpRequest, queryset: QuerySet[Host]) -> None:
        for host in queryset:
            repaired = hosts.host_repair(user=request.user, host=host)
            if repaired.healthy:
                messages.info(request, f"{host}: healthy")
            else:
                messages.error(request, f"{host}: {repaired.health_error}")


@admin.register(HostImage)
class HostImageAdmin(ObservedOnlyAdmin):
    list_display = ["volume_name", "host", "image", "state", "capacity_bytes", "uploaded_at"]
    list_filter = ["host", "state"]
