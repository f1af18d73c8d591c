"""The Hosts page's actions (POST only, operators only), a host's row, and a stack's move."""

from __future__ import annotations

from django.urls import path

from provisioning import host_views as views
from provisioning import move_views

urlpatterns = [
    path("hosts/<int:pk>/drain/", views.host_drain, name="host-drain"),
    path("hosts/<int:pk>/undrain/", views.host_undrain, name="host-undrain"),
    path("hosts/<int:pk>/refresh/", views.host_refresh, name="host-refresh"),
    path("hosts/<int:pk>/evacuate/", views.host_evacuate, name="host-evacuate"),
    path("hosts/<int:pk>/maintenance/", views.host_maintenance, name="host-maintenance"),
    path("hosts/<int:pk>/row/", views.host_row_view, name="host-row"),
    path("stacks/<int:pk>/move/", move_views.stack_move, name="stack-move"),
]
