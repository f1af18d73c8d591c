"""The page that uploads a disk image into a project's own catalog (``/catalog/upload/``).

The page itself only sets the scene: the bytes go from the browser to the tus endpoint of the API
(``/api/v1/uploads/``) through tus-js-client (``static/js/upload.js``), with the session and its
CSRF token, in parts of ``UPLOAD_CHUNK_BYTES``. Below the form, the latest uploads of the reader's
projects and where they stand; an unfinished one can be deleted there (say, to send it again from
another browser, which does not know where the first one stopped).
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from catalog.models import Appliance, Feed
from catalog.paging import page_of
from portal.models import Project, Role
from portal.web_errors import errors_as_messages
from provisioning.name_rules import TIER_NAME
from transfers import uploads
from transfers.upload_selectors import upload_of, uploads_visible_to

UPLOADS_PER_PAGE = 10
# Identifiers offered while typing: the project's own appliances, a new version of one being the usual case.
SUGGESTED_APPLIANCES = 200
# Stands for the appliance's id in the link the page's script completes once a version is ready.
_APPLIANCE_ID_SLOT = 2147483647


@login_required
def upload_new(request: HttpRequest) -> HttpResponse:
    projects = list(Project.objects.visible_to(request.user, min_role=Role.MEMBER).order_by("name"))
    asked = request.GET.get("project", "")
    chosen = next((project for project in projects if str(project.pk) == asked), projects[0] if projects else None)
    suggestions = (
        Appliance.objects.filter(feed__project__in=projects, feed__format=Feed.Format.LOCAL)
        .order_by("identifier")
        .values_list("identifier", flat=True)
        .distinct()[:SUGGESTED_APPLIANCES]
    )
    rows = uploads_visible_to(request.user).order_by("-created_at")
    context = {
        "projects": projects,
        "chosen": chosen,
        "suggestions": list(suggestions) if projects else [],
        "uploads": page_of(request, rows, per_page=UPLOADS_PER_PAGE, label="Upload pages", fragment="uploads"),
        "endpoint": reverse("api:upload-list"),
        "chunk_bytes": settings.UPLOAD_CHUNK_BYTES,
        "max_bytes": settings.IMAGE_MAX_BYTES,
        "appliance_url": reverse("appliance-detail", args=[_APPLIANCE_ID_SLOT]),
        "appliance_id_slot": _APPLIANCE_ID_SLOT,
        "max_port": uploads.MAX_PORT,
        "tier_rule": TIER_NAME.rule,
    }
    return render(request, "transfers/upload_new.html", context)


@login_required
@require_POST
def upload_delete(request: HttpRequest, pk: uuid.UUID) -> HttpResponse:
    upload = upload_of(request.user, pk)  # another project's: 404
    with errors_as_messages(request):
        uploads.upload_terminate(user=request.user, upload=upload)
        messages.success(request, f"The upload of {upload.appliance} {upload.version} was deleted.")
    return redirect("upload-new")


__all__ = ["upload_delete", "upload_new"]
