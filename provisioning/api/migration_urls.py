"""Moving instances and stacks between hosts: ``instances/{id}/migrate/``, ``stacks/{id}/migrate/``."""

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
