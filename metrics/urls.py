"""``/metrics``: Prometheus' text format, for scrapers."""

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
