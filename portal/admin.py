from django.contrib import admin

from portal.models import ApiToken, AuditEvent, Membership, Project


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


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Tokens are issued through the API; here operators see them and revoke them by deleting."""

    list_display = ["prefix", "user", "name", "created_at", "last_used_at", "expires_at"]
    list_filter = ["user"]
    search_fields = ["prefix", "user__username", "name"]
    readonly_fields = ["user", "name", "prefix", "created_at", "last_used_at", "expires_at"]
    exclude = ["digest"]

    def has_add_permission(self, request):
        return False
