"""Web routes for uploads, exports, captures and the projects' own VMcasts."""

from django.urls import include, path

urlpatterns = [
    path("", include("transfers.upload_urls")),
    path("", include("transfers.export_urls")),
    path("", include("transfers.capture_urls")),
]
