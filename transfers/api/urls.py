"""The API's routes for images in and out, included ahead of the router by ``portal.api.urls``."""

from django.urls import include, path

urlpatterns = [
    path("", include("transfers.api.upload_urls")),
    path("", include("transfers.api.export_urls")),
    path("", include("transfers.api.capture_urls")),
]
