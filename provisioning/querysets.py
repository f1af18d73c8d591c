"""The querysets of provisioning's models: each says once where its rows' project is (see portal.querysets)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from portal.querysets import ProjectScopedQuerySet

if TYPE_CHECKING:  # the quoted model names in the subscripts below, for the type checker
    from provisioning.models import (  # noqa: F401
        ConsoleTicket,
        Flavor,
        Instance,
        PublishedPort,
        Stack,
        StackEvent,
        StackNetwork,
        StackTemplate,
    )


class StackQuerySet(ProjectScopedQuerySet["Stack"]):
    project_path = "project"


class InstanceQuerySet(ProjectScopedQuerySet["Instance"]):
    project_path = "stack__project"


class PublishedPortQuerySet(ProjectScopedQuerySet["PublishedPort"]):
    project_path = "instance__stack__project"


class FlavorQuerySet(ProjectScopedQuerySet["Flavor"]):
    project_path = "project"
    unowned_is_shared = True


class StackTemplateQuerySet(ProjectScopedQuerySet["StackTemplate"]):
    project_path = "project"
    unowned_is_shared = True


class StackNetworkQuerySet(ProjectScopedQuerySet["StackNetwork"]):
    project_path = "stack__project"


class StackEventQuerySet(ProjectScopedQuerySet["StackEvent"]):
    project_path = "stack__project"


class ConsoleTicketQuerySet(ProjectScopedQuerySet["ConsoleTicket"]):
    project_path = "instance__stack__project"
