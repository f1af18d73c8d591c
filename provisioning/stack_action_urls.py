"""The stack page's actions after launch: power, shelve, snapshots, extend (POST only)."""

from __future__ import annotations

from django.urls import path, register_converter

from provisioning import stack_action_views as views
from provisioning.services.power import ACTIONS


class PowerAction:
    """One of the power service's actions; any other word is no address at all (404)."""

    regex = "|".join(ACTIONS)

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(PowerAction, "power_action")

urlpatterns = [
    path("stacks/<int:pk>/power/<power_action:action>/", views.stack_power, name="stack-power"),
    path(
        "stacks/<int:pk>/instances/<int:instance_id>/power/<power_action:action>/",
        views.instance_power,
        name="instance-power",
    ),
    path("stacks/<int:pk>/shelve/", views.stack_shelve, name="stack-shelve"),
    path("stacks/<int:pk>/unshelve/", views.stack_unshelve, name="stack-unshelve"),
    path("stacks/<int:pk>/extend/", views.stack_extend, name="stack-extend"),
    path("stacks/<int:pk>/snapshots/", views.snapshot_create, name="stack-snapshot-create"),
    path("stacks/<int:pk>/snapshots/<int:snapshot_id>/revert/", views.snapshot_revert, name="stack-snapshot-revert"),
    path("stacks/<int:pk>/snapshots/<int:snapshot_id>/delete/", views.snapshot_delete, name="stack-snapshot-delete"),
]
