"""Resizing a stack's tier: ``stacks/{id}/resize/``."""

from django.urls import URLPattern, path

from provisioning.api.resize import StackResizeView

urlpatterns: list[URLPattern] = [path("stacks/<int:pk>/resize/", StackResizeView.as_view(), name="stack-resize")]
