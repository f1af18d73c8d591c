"""Emptying a host: ``hosts/{id}/evacuate/`` and its maintenance."""

from django.urls import path

from provisioning.api.evacuation import HostEvacuateView, HostMaintenanceView

urlpatterns = [
    path("hosts/<int:pk>/evacuate/", HostEvacuateView.as_view(), name="host-evacuate"),
    path("hosts/<int:pk>/maintenance/", HostMaintenanceView.as_view(), name="host-maintenance"),
]
