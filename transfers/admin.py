from django.contrib import admin

from portal.admin_tools import ObservedOnlyAdmin
from transfers.models import Upload


@admin.register(Upload)
class UploadAdmin(ObservedOnlyAdmin):
    """Uploads of members' disk images: where each stands and why one failed (written by the upload service only)."""

    list_display = ["__str__", "project", "created_by", "status", "offset", "length", "created_at", "expires_at"]
    list_filter = ["status", "project"]
    search_fields = ["appliance", "version", "filename", "project__name", "created_by__username"]
    list_select_related = ["project", "created_by"]
    date_hierarchy = "created_at"
