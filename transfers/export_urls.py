"""Web routes of exports (see transfers/urls.py)."""

from django.urls import path

from transfers import export_views

urlpatterns = [
    path("stacks/<int:pk>/exports/", export_views.stack_exports, name="stack-exports"),
    path("exports/<int:pk>/status/", export_views.export_status, name="export-status"),
    path(
        "exports/<int:pk>/download/<str:secret>/<str:filename>",
        export_views.export_download,
        name="export-download",
    ),
]
