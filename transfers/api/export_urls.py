"""The API routes of exports (see transfers/api/urls.py)."""

from django.urls import path

from transfers.api import export_views as views

urlpatterns = [
    path("instances/<int:pk>/export/", views.InstanceExportView.as_view(), name="instance-export"),
    path("stacks/<int:pk>/export/", views.StackExportView.as_view(), name="stack-export"),
    path("exports/", views.ExportListView.as_view(), name="export-list"),
    path("exports/<int:pk>/", views.ExportDetailView.as_view(), name="export-detail"),
]
