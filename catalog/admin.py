from django.contrib import admin, messages

from catalog import services
from catalog.models import Appliance, ApplianceVersion, CachedImage, Feed


@admin.register(Feed)
class FeedAdmin(admin.ModelAdmin):
    list_display = ["__str__", "url", "project", "last_status", "last_import_at", "last_item_count"]
    list_filter = ["last_status", "project"]
    search_fields = ["url", "title"]
    readonly_fields = ["last_status", "last_error", "last_import_at", "last_item_count", "created_at"]
    actions = ["import_now"]

    @admin.action(description="Import the selected feeds again")
    def import_now(self, request, queryset):
        for feed in queryset:
            services.feed_queue_import(feed=feed)
        messages.info(request, f"Queued {queryset.count()} import(s).")


class VersionInline(admin.TabularInline):
    model = ApplianceVersion
    extra = 0
    fields = ["version", "disk_format", "size_bytes", "min_vcpus", "min_ram_mib", "service_port", "published_at"]
    readonly_fields = fields
    can_delete = False


@admin.register(Appliance)
class ApplianceAdmin(admin.ModelAdmin):
    list_display = ["title", "identifier", "role", "feed"]
    list_filter = ["role", "feed"]
    search_fields = ["title", "identifier"]
    inlines = [VersionInline]


@admin.register(ApplianceVersion)
class ApplianceVersionAdmin(admin.ModelAdmin):
    list_display = ["appliance", "version", "disk_format", "size_bytes", "service_port", "published_at"]
    list_filter = ["disk_format", "arch", "appliance__feed"]
    search_fields = ["appliance__title", "version"]


@admin.register(CachedImage)
class CachedImageAdmin(admin.ModelAdmin):
    list_display = ["sha256", "status", "source_format", "size_bytes", "virtual_size_bytes", "updated_at"]
    list_filter = ["status", "source_format"]
    search_fields = ["sha256"]
    readonly_fields = ["updated_at"]
