"""The catalog in the Django admin: operators see everything and change it only through the services.

Appliances, their versions and cached images are the portal's own state, written by feed imports
and image downloads (a hand edit would be overwritten by the next import, unaudited), so they are
read-only here. Feeds are subscribed, re-imported and removed by the catalog services, with their
rules and audit events.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Model, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse

from catalog import services
from catalog.forms import FeedSubscribeForm
from catalog.models import Appliance, ApplianceVersion, CachedImage, Feed, ImageDelivery
from catalog.selectors import live_stacks_using
from portal import errors
from portal.admin_tools import ObservedOnlyAdmin
from portal.web_errors import errors_on

# At most this many live stacks are named per feed on the delete page.
LIVE_STACKS_SHOWN = 20


@admin.register(Feed)
class FeedAdmin(admin.ModelAdmin):
    list_display = ["__str__", "display_url", "format", "project", "last_status", "last_import_at", "last_item_count"]
    list_filter = ["last_status", "format", "project"]
    search_fields = ["url", "title"]
    actions = ["import_now"]
    # The page of one feed (view only: see has_change_permission) shows the URL without its credentials.
    fields = [
        "display_url",
        "title",
        "format",
        "project",
        "created_by",
        "created_at",
        "last_status",
        "last_error",
        "last_import_at",
        "last_item_count",
        # The validators sent back at the next import: an unchanged feed then answers 304.
        "etag",
        "last_modified",
    ]
    readonly_fields = fields

    @admin.display(description="URL")
    def display_url(self, feed: Feed) -> str:
        return feed.display_url

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        # Another URL or project is another subscription: remove this one and subscribe anew.
        return False

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context: dict | None = None) -> HttpResponse:
        """Subscribing goes through ``feed_subscribe``, with the catalog page's form and rules."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = FeedSubscribeForm(request.POST or None, user=request.user)
        if request.method == "POST" and form.is_valid():
            with errors_on(form):
                feed = services.feed_subscribe(user=request.user, **form.cleaned_data)
                self.message_user(request, f"Subscribed to {feed.display_url}; the import runs in the background.")
                return redirect(reverse("admin:catalog_feed_change", args=[feed.pk]))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Subscribe to a feed",
            "form": form,
            **(extra_context or {}),
        }
        return TemplateResponse(request, "catalog/admin/feed_subscribe.html", context)

    def delete_model(self, request: HttpRequest, obj: Feed) -> None:
        services.feed_unsubscribe(user=request.user, feed=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Feed]) -> None:
        for feed in queryset:
            services.feed_unsubscribe(user=request.user, feed=feed)

    def get_deleted_objects(self, objs: Any, request: HttpRequest) -> tuple[Any, Any, set[str], Any]:
        # A feed's appliances and versions go with it through the service; that their own admins
        # refuse deleting them one by one must not block that.
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        cascaded = {str(Appliance._meta.verbose_name), str(ApplianceVersion._meta.verbose_name)}
        # The service refuses while a live stack uses a feed: Django's "cannot delete" page names them.
        in_use = [
            f"Stack {stack.name} (project {stack.project.name}), launched from {feed}"
            for feed in objs
            for stack in live_stacks_using(feed)[:LIVE_STACKS_SHOWN]
        ]
        return deleted, counts, perms_needed - cascaded, [*protected, *in_use]

    @admin.action(description="Import the selected feeds again")
    def import_now(self, request: HttpRequest, queryset: QuerySet[Feed]) -> None:
        queued = 0
        for feed in queryset:
            try:
                services.feed_queue_import(feed=feed)
                queued += 1
            except errors.WrongState as refused:  # the project's import limit: say so, go on with the rest
                messages.warning(request, f"{feed}: {refused.detail}")
        messages.info(request, f"Queued {queued} import(s).")


class VersionInline(admin.TabularInline):
    model = ApplianceVersion
    extra = 0
    readonly_fields = (
        "version",
        "withdrawn",
        "checksum_source",
        "package",
        "disk_format",
        "size_bytes",
        "min_vcpus",
        "min_ram_mib",
        "service_port",
        "published_at",
    )
    fields = readonly_fields

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


@admin.register(Appliance)
class ApplianceAdmin(ObservedOnlyAdmin):
    list_display = ["title", "identifier", "role", "feed"]
    list_filter = ["role", "feed"]
    search_fields = ["title", "identifier"]
    inlines = [VersionInline]


@admin.register(ApplianceVersion)
class ApplianceVersionAdmin(ObservedOnlyAdmin):
    list_display = [
        "appliance",
        "version",
        "withdrawn",
        "checksum_source",
        "disk_format",
        "size_bytes",
        "service_port",
        "published_at",
    ]
    list_filter = ["withdrawn", "checksum_source", "package", "disk_format", "arch", "appliance__feed"]
    search_fields = ["appliance__title", "version"]
    exclude = ["image_url"]

    def get_readonly_fields(self, request: HttpRequest, obj: Model | None = None) -> list[str]:
        # The image URL as shown, without the credentials it may carry.
        shown = {"image_url": "display_image_url"}
        return [shown.get(name, name) for name in super().get_readonly_fields(request, obj)]

    @admin.display(description="image URL")
    def display_image_url(self, version: ApplianceVersion) -> str:
        return version.display_image_url


@admin.register(CachedImage)
class CachedImageAdmin(ObservedOnlyAdmin):
    list_display = ["sha256", "source_format", "status", "size_bytes", "virtual_size_bytes", "last_used_at"]
    list_filter = ["status", "source_format"]
    search_fields = ["sha256"]


@admin.register(ImageDelivery)
class ImageDeliveryAdmin(ObservedOnlyAdmin):
    """Each version's own download: where it stands and why it failed (written by the download task only)."""

    list_display = ["version", "status", "bytes_done", "bytes_total", "requested_at", "finished_at"]
    list_filter = ["status"]
    search_fields = ["version__appliance__title", "version__version"]
    list_select_related = ["version__appliance"]
