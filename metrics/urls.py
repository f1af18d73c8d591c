"""``/metrics``: Prometheus' text format (or OpenMetrics, when asked), for scrapers."""

from django.urls import URLPattern, path

from metrics.prometheus import metrics_view

urlpatterns: list[URLPattern] = [path("metrics", metrics_view, name="metrics")]
