"""What guests and hosts used: ``instances/{id}/metrics/`` and ``hosts/{id}/metrics/``."""

from django.urls import path

from metrics.api import HostMetricsView, InstanceMetricsView

urlpatterns = [
    path("instances/<int:pk>/metrics/", InstanceMetricsView.as_view(), name="instance-metrics"),
    path("hosts/<int:pk>/metrics/", HostMetricsView.as_view(), name="host-metrics"),
]
