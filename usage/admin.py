"""Usage records in the admin: operators look them up; only the sampler writes them."""

from __future__ import annotations

from django.contrib import admin

from portal.admin_tools import ObservedOnlyAdmin
from usage.models import UsageRecord


@admin.register(UsageRecord)
class UsageRecordAdmin(ObservedOnlyAdmin):
    list_display = ["date", "project", "stack_name", "username", "vcpu_hours", "memory_gib_hours", "cost"]
    list_filter = ["project"]
    search_fields = ["stack_name", "username"]
    date_hierarchy = "date"
