"""Moving instances and stacks between hosts: ``instances/{id}/migrate/``, ``stacks/{id}/migrate/``."""

from django.urls import URLPattern, path

from provisioning.api.migration import InstanceMigrateView, StackMigrateView

urlpatterns: list[URLPattern] = [
    path("stacks/<int:pk>/migrate/", StackMigrateView.as_view(), name="stack-migrate"),
    path("instances/<int:pk>/migrate/", InstanceMigrateView.as_view(), name="instance-migrate"),
]
