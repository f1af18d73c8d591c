"""Operators look at what was told and delivered; nobody edits it by hand."""

from __future__ import annotations

from django.contrib import admin
from django.utils.html import format_html

from notices.models import ExtendLink, LeaseWarning, Notification, WebhookAttempt, WebhookDelivery
from portal.admin_tools import ObservedOnlyAdmin, ObservedOnlyInline
from portal.moments import duration_text


@admin.register(Notification)
class NotificationAdmin(ObservedOnlyAdmin):
    list_display = ["created_at", "user", "project", "event", "stack_name", "moment", "read_at", "mailed_at"]
    list_filter = ["event", "project"]
    search_fields = ["user__username", "stack_name", "project__name"]
    date_hierarchy = "created_at"


@admin.register(LeaseWarning)
class LeaseWarningAdmin(ObservedOnlyAdmin):
    list_display = ["created_at", "stack", "expires_at", "warned_before", "sent"]
    search_fields = ["stack__name"]

    @admin.display(description="Warned before the end", ordering="offset_seconds")
    def warned_before(self, warning: LeaseWarning) -> str:
        return duration_text(warning.offset_seconds)


@admin.register(ExtendLink)
class ExtendLinkAdmin(ObservedOnlyAdmin):
    list_display = ["created_at", "user", "stack", "lease_end", "expires_at", "used_at"]
    search_fields = ["user__username", "stack__name"]

    def get_readonly_fields(self, request, obj=None):  # type: ignore[no-untyped-def]
        # The digest alone extends nothing, but operators have no use for it either.
        return [name for name in super().get_readonly_fields(request, obj) if name != "digest"]

    def get_fields(self, request, obj=None):  # type: ignore[no-untyped-def]
        return self.get_readonly_fields(request, obj)


class WebhookAttemptInline(ObservedOnlyInline):
    model = WebhookAttempt
    fields = ("number", "started_at", "duration_ms", "response_code", "error")
    readonly_fields = ("number", "started_at", "duration_ms", "response_code", "error")
    show_change_link = False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ObservedOnlyAdmin):
    list_display = ["created_at", "project", "event", "status", "attempts", "last_response_code", "next_attempt_at"]
    list_filter = ["status", "event"]
    search_fields = ["project__name", "url"]
    inlines = [WebhookAttemptInline]

    def get_readonly_fields(self, request, obj=None):  # type: ignore[no-untyped-def]
        return [*[name for name in super().get_readonly_fields(request, obj) if name != "body"], "body_text"]

    @admin.display(description="Body (the exact bytes sent)")
    def body_text(self, delivery: WebhookDelivery) -> str:
        # Machine text (the JSON sent, with its ISO moments), marked as code rather than prose.
        return format_html("<pre><code>{}</code></pre>", bytes(delivery.body).decode("ascii", errors="replace"))
