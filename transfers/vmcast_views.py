"""The project's VMcast over HTTP: the feed and its images, opened by the token in the path alone.

No session is asked for or made: other portals fetch these. A wrong, old, revoked or other
project's token answers the same 404 as a project that does not exist. Both answers carry an
ETag (the feed's: the digest of its bytes; an image's: its sha256) so a subscriber that has them
already gets a 304 and nothing else; they are marked private, as their URL holds a credential.
"""

from __future__ import annotations

from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.utils.cache import get_conditional_response
from django.utils.http import http_date
from django.views.decorators.http import require_safe

from portal.models import Project
from transfers.vmcast_producer import (
    IMAGE_MEDIA_TYPE,
    MEDIA_TYPE,
    project_for_token,
    render_project_feed,
    served_digest,
    served_version,
)

# Caches on the way may not keep it (the URL is a credential); clients revalidate with the ETag.
CACHE_CONTROL = "private, no-cache"


def _project(project_id: int, token: str) -> Project:
    project = project_for_token(project_id=project_id, token=token)
    if project is None:
        raise Http404("no such feed")
    return project


@require_safe
def vmcast_feed(request: HttpRequest, project_id: int, token: str) -> HttpResponseBase:
    """The feed. Its enclosures point back at the address it was fetched from: whatever reached
    the feed reaches the images."""
    project = _project(project_id, token)
    feed = render_project_feed(project=project, base_url=f"{request.scheme}://{request.get_host()}")
    response = HttpResponse(feed.body, content_type=MEDIA_TYPE)
    response["ETag"] = feed.etag
    response["Cache-Control"] = CACHE_CONTROL
    last_modified = int(feed.last_modified.timestamp()) if feed.last_modified else None
    if last_modified is not None:
        response["Last-Modified"] = http_date(last_modified)
    return get_conditional_response(request, etag=feed.etag, last_modified=last_modified, response=response) or response


@require_safe
def vmcast_image(request: HttpRequest, project_id: int, token: str, version_id: int) -> HttpResponseBase:
    """One listed version's cached qcow2, streamed with its length; 304 when the client holds it."""
    project = _project(project_id, token)
    version = served_version(project, version_id)
    if version is None or version.image is None:
        raise Http404("no such image")
    try:
        etag = f'"{served_digest(version.image)}"'
        handle = open(version.image.path, "rb")  # noqa: SIM115 - FileResponse closes it
    except OSError:
        raise Http404("no such image") from None
    unchanged = get_conditional_response(request, etag=etag)
    if unchanged is not None:
        handle.close()
        unchanged["ETag"] = etag
        unchanged["Cache-Control"] = CACHE_CONTROL
        return unchanged
    name = f"{version.appliance.identifier}-{version.version}.qcow2"
    # FileResponse sets Content-Length from the open file, and streams it in blocks.
    response = FileResponse(handle, content_type=IMAGE_MEDIA_TYPE, filename=name)
    response["ETag"] = etag
    response["Cache-Control"] = CACHE_CONTROL
    return response
