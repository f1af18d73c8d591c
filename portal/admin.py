"""Admin pages for tenancy. Memberships and tokens change only through their services."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import Model, QuerySet
from django.http import HttpRequest

from portal import errors, services, tokens
from portal.admin_tools import ObservedOnlyInline, ServiceForm, ServiceFormAdmin
from portal.audit_display import AuditEventDisplay
from portal.models import ApiToken, AuditEvent, Membership, Project, Role


class MembershipInline(ObservedOnlyInline):
    """Members shown on their project; added, changed and removed on the Memberships page (with the rules)."""

    model = Membership
    fields = ["user", "role", "created_at"]
    readonly_fields = fields


class ProjectForm(ServiceForm):
    """Projects are made and their quotas changed through the project services (operators only, audited)."""

    class Meta:
        model = Project
        fields = list(services.PROJECT_FIELDS)

    def save_through_service(self, cleaned: dict[str, Any]) -> Model:
        values = {field: cleaned[field] for field in services.PROJECT_FIELDS if field in cleaned}
        if self.instance.pk is None:
            return services.project_create(actor=self.request.user, **values)
        current = Project.objects.get(pk=self.instance.pk)
        return services.project_update(actor=self.request.user, project=current, **values)


@admin.register(Project)
class ProjectAdmin(ServiceFormAdmin):
    form = ProjectForm
    list_display = [
        "name",
        "max_stacks",
        "max_instances",
        "max_vcpus",
        "max_memory_mib",
        "max_disk_gib",
        "max_lease_seconds",
        "created_at",
    ]
    search_fields = ["name"]
    inlines = [MembershipInline]


class MembershipForm(ServiceForm):
    class Meta:
        model = Membership
        fields = ["project", "user", "role"]

    def save_through_service(self, cleaned: dict[str, Any]) -> Model:
        return services.membership_set(
            actor=self.request.user,
            project=cleaned["project"],
            username=cleaned["user"].get_username(),
            role=Role(cleaned["role"]),
        )

    def validate_unique(self) -> None:
        pass  # adding an existing member changes their role, as the service does


@admin.register(Membership)
class MembershipAdmin(ServiceFormAdmin):
    form = MembershipForm
    list_display = ["user", "project", "role", "created_at"]
    list_filter = ["role", "project"]
    search_fields = ["user__username", "project__name"]
    autocomplete_fields = ["user", "project"]
    actions = ["remove"]

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False  # removal is the "remove" action: the last-owner rule can refuse it

    @admin.action(description="Remove the selected members from their projects")
    def remove(self, request: HttpRequest, queryset: QuerySet[Membership]) -> None:
        for membership in queryset.select_related("project", "user"):
            try:
                services.membership_remove(
                    actor=request.user, project=membership.project, username=membership.user.get_username()
                )
            except errors.PortalError as exc:
                messages.error(request, f"{membership}: {exc.detail}")
            else:
                messages.info(request, f"Removed {membership.user} from {membership.project}.")


@admin.register(AuditEvent)
class AuditEventAdmin(AuditEventDisplay, admin.ModelAdmin):
    list_display = ["created_at", "actor_name", "project", "action", "target"]
    list_filter = ["action", "project"]
    search_fields = ["target", "actor__username"]
    date_hierarchy = "created_at"
    readonly_fields = fields = ["created_at", "actor_name", "project", "action", "target", "detail_text"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False  # the audit trail is append-only


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Tokens are issued through the API; here operators see them and revoke them by deleting."""

    list_display = ["prefix", "user", "name", "created_at", "last_used_at", "expires_at"]
    list_filter = ["user"]
    search_fields = ["prefix", "user__username", "name"]
    readonly_fields = ["user", "name", "prefix", "created_at", "last_used_at", "expires_at"]
    exclude = ["digest"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def delete_model(self, request: HttpRequest, obj: ApiToken) -> None:
        tokens.token_revoke(actor=request.user, token=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        for token in queryset:
            tokens.token_revoke(actor=request.user, token=token)
