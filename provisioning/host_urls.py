"""The Hosts page's actions (POST only, operators only)."""

from __future__ import annotations

from django.urls import path

from provisioning import host_views as views

urlpatterns = [
    path("hosts/<int:pk>/drain/", views.host_drain, name="host-drain"),
    path("hosts/<int:pk>/undrain/", views.host_undrain, name="host-undrain"),
    path("hosts/<int:pk>/refresh/", views.host_refresh, name="host-refresh"),
]
