"""Asking for a capture: what can be checked at once is, then the stack is held for the job.

A member of the stack's project may capture a stack that is running, stopped or shelved and not
busy, under an appliance prefix and a version that name nothing yet. The stack is then busy
("snapshotting": nothing else may start or stop it) until its disks are read.
"""

from __future__ import annotations

from portal.models import Project, Role
from portal.scoping import Account, User, require_role
from provisioning.models import Stack, Status
from provisioning.services import stack_jobs
from provisioning.services.stack_jobs import StackAction
from transfers.capture_checks import check_format, check_names_free
from transfers.capture_sources import tier_sources
from transfers.models import Capture

CAPTURE = StackAction(
    "capture",
    Status.SNAPSHOTTING,  # like a snapshot, it holds the stack still while its disks are read
    (Status.RUNNING, Status.STOPPED, Status.SHELVED),
    "transfers.capture_tasks.capture_stack",
)


def capture_create(*, user: User, stack: Stack, appliance_prefix: str, version: str) -> Capture:
    """Accept a capture of ``stack``; the job copies its disks in the background.

    ``stack`` is one the caller may see (the view looked it up so); members and owners may capture it.
    """
    require_role(user, stack.project, Role.MEMBER)
    check_format(appliance_prefix, version)
    made: list[Capture] = []

    def prepare(locked: Stack) -> tuple[int]:
        project = Project.objects.select_for_update().get(pk=locked.project_id)  # one capture request at a time
        sources = tier_sources(locked)
        check_names_free(
            project=project,
            stack=locked,
            prefix=appliance_prefix,
            version=version,
            tiers=[source.tier.name for source in sources],
        )
        capture = Capture.objects.create(
            project=project,
            created_by=user if isinstance(user, Account) else None,
            stack=locked,
            source_name=locked.name,
            appliance_prefix=appliance_prefix,
            version=version,
            bytes_total=sum(source.disk_bytes() for source in sources),
        )
        made.append(capture)
        return (capture.pk,)

    stack_jobs.begin(
        user=user, stack=stack, action=CAPTURE, check=prepare, appliance_prefix=appliance_prefix, version=version
    )
    return made[0]
