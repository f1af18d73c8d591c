"""What guests and hosts used: ``instances/{id}/metrics/``."""

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
