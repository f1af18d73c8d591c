"""Samples in the admin: operators look them up; only the sampler writes them."""

from __future__ import annotations

from django.contrib import admin

from metrics.models import HostSample, InstanceSample
from portal.admin_tools import ObservedOnlyAdmin


@admin.register(InstanceSample)
class InstanceSampleAdmin(ObservedOnlyAdmin):
    list_display = ["sampled_at", "instance", "host", "running", "cpu_percent", "memory_used_mib"]
    list_filter = ["running", "host"]
    search_fields = ["instance__name", "instance__domain_name", "instance__stack__name"]
    date_hierarchy = "sampled_at"
    list_select_related = ["instance", "host"]


@admin.register(HostSample)
class HostSampleAdmin(ObservedOnlyAdmin):
    list_display = ["sampled_at", "host", "cpu_percent", "memory_free_mib", "memory_mib", "domains"]
    list_filter = ["host"]
    date_hierarchy = "sampled_at"
    list_select_related = ["host"]
