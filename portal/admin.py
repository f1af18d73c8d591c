from django.contrib import admin

from portal.models import AuditEvent, Membership, Project


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 1
    autocomplete_fields = ["user"]


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ["name", "max_instances", "max_vcpus", "max_memory_mib", "created_at"]
    search_fields = ["name"]
    inlines = [MembershipInline]


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "project", "role", "created_at"]
    list_filter = ["role", "project"]
    search_fields = ["user__username", "project__name"]
    autocomplete_fields = ["user", "project"]


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ["created_at", "actor", "project", "action", "target"]
    list_filter = ["action", "project"]
    search_fields = ["target", "actor__username"]
    date_hierarchy = "created_at"
    readonly_fields = ["created_at", "actor", "project", "action", "target", "detail"]

    def has_add_permission(self, request):
        return False
