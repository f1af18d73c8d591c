"""Resizing a stack's tier: ``stacks/{id}/resize/``."""

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
