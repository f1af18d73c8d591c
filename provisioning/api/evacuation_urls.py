"""Emptying a host: ``hosts/{id}/evacuate/`` and its maintenance."""

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
