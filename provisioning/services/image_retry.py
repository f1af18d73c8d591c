"""Downloading a version's image again after its download failed, asked for from the catalog.

A failed download is not retried by itself: the catalog offers no Launch for the version (its
reason shown instead) until someone who may launch it asks for a new download here. The download
then runs like any other (``image_waits``): in a task of its own, within the project's download
limit, resuming any build that waits for it.
"""

from __future__ import annotations

from catalog.models import ApplianceVersion
from portal import audit, errors
from portal.models import Role
from portal.scoping import User, project_ids_for, require_role
from provisioning.services.image_waits import image_download_queue


def image_download_retry(*, user: User, version: ApplianceVersion) -> str:
    """Queue a new download of ``version``'s failed image; return why it waits instead ("" when queued).

    Whoever may launch the version may ask: a member of its feed's project, or of any project for
    the shared catalog (a launch would download it just the same).
    """
    project = version.appliance.feed.project
    if project is not None:
        require_role(user, project, Role.MEMBER)
    elif not project_ids_for(user, min_role=Role.MEMBER).exists():
        raise errors.PermissionDenied("downloading an image needs the member role in a project")
    if version.image_state.status != ApplianceVersion.ImageStatus.ERROR:
        raise errors.WrongState(f"the image of {version} has not failed: there is nothing to retry")
    wait = image_download_queue(version)
    audit.record(actor=user, action="image.retry", target=version, project=project)
    return wait
