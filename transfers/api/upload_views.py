"""``/api/v1/uploads/``: disk images sent into a project's own catalog over tus 1.0.0, resumable.

- ``POST /api/v1/uploads/`` creates an upload (tus ``creation``): ``Upload-Length`` and
  ``Upload-Metadata`` with ``project`` (its id), ``appliance`` (identifier), ``version``, and
  optionally ``title``, ``filename``, ``port`` (the port the image's service listens on, which a
  one-click launch publishes) and ``role`` (the tier name such a launch gives it). It answers 201
  with ``Location: /api/v1/uploads/{id}/``.
- ``HEAD`` on that address says how many bytes arrived (``Upload-Offset``); ``PATCH`` appends bytes
  at that offset (``application/offset+octet-stream``, at most ``UPLOAD_CHUNK_BYTES`` per request,
  optionally with ``Upload-Checksum``); ``DELETE`` removes the upload (tus ``termination``).
- ``GET`` on it (JSON) says where it stands: ``receiving``, ``processing`` once the last byte is in
  (the file is checked and converted like a downloaded image), then ``ready`` with the version made,
  or ``failed`` with the reason. ``GET /api/v1/uploads/`` lists the caller's projects' uploads.
- ``OPTIONS`` answers the server's tus version, extensions, size limit and checksum algorithms.

The tus requests carry ``Tus-Resumable: 1.0.0`` and are authenticated like the rest of the API (a
token; or the session with its CSRF token in ``X-CSRFToken``, as the upload page sends it). They
are not in the OpenAPI schema, whose request bodies are JSON: the tus protocol describes them.
"""

from __future__ import annotations

import io
import re
from typing import Any

from django.conf import settings
from django.db.models import QuerySet
from django.urls import reverse
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import generics, status
from rest_framework.request import Request
from rest_framework.response import Response

from portal import errors
from transfers import tus, uploads
from transfers.api.upload_serializers import UploadFilter, UploadSerializer
from transfers.models import Upload
from transfers.upload_selectors import upload_of, uploads_visible_to

_DIGITS = re.compile(r"[0-9]{1,19}")


class TusEndpoint(generics.GenericAPIView):
    """Every answer of the upload endpoints says which tus version it speaks; a 412 says which it would."""

    def finalize_response(self, request: Request, response: Response, *args: Any, **kwargs: Any) -> Response:
        response = super().finalize_response(request, response, *args, **kwargs)
        response["Tus-Resumable"] = tus.VERSION
        if response.status_code == tus.VersionUnsupported.status:
            response["Tus-Version"] = tus.VERSION
        return response

    # DRF's own options() takes DRF's Request too (its stubs ignore the same mismatch with Django's View).
    def options(self, request: Request, *args: Any, **kwargs: Any) -> Response:  # type: ignore[override]
        headers = tus.discovery_headers(max_size=settings.IMAGE_MAX_BYTES)
        return Response(status=status.HTTP_204_NO_CONTENT, headers=headers)


@extend_schema_view(
    get=extend_schema(summary="List uploads"),
    post=extend_schema(summary="Start an upload"),
)
class UploadListView(TusEndpoint, generics.ListAPIView):
    """The uploads of the caller's projects (where they are a member), newest first."""

    serializer_class = UploadSerializer
    filterset_class = UploadFilter

    def get_queryset(self) -> QuerySet[Upload]:
        return uploads_visible_to(self.request.user)

    @extend_schema(exclude=True)
    def post(self, request: Request) -> Response:
        tus.check_version(request.headers.get("Tus-Resumable"))
        if request.headers.get("Upload-Defer-Length") is not None:
            raise errors.Invalid.for_field("Upload-Defer-Length", "give the file's size in Upload-Length")
        length = tus.parse_number(request.headers.get("Upload-Length"), header="Upload-Length")
        if _body_length(request) and _is_offset_body(request):  # creation-with-upload, which is not offered
            raise errors.Invalid("send the file's bytes in PATCH requests once the upload is created")
        metadata = tus.parse_metadata(request.headers.get("Upload-Metadata"))
        upload = uploads.upload_create(user=request.user, length=length, metadata=metadata)
        headers = {
            "Location": reverse("api:upload-detail", args=[upload.pk]),
            "Upload-Expires": tus.expires_header(upload.expires_at),
        }
        return Response(UploadSerializer(upload).data, status=status.HTTP_201_CREATED, headers=headers)


@extend_schema_view(
    get=extend_schema(summary="Get an upload"),
    patch=extend_schema(summary="Send the next part of an upload"),
    delete=extend_schema(summary="Cancel an upload"),
)
class UploadDetailView(TusEndpoint, generics.RetrieveAPIView):
    """One upload: where it stands, and (once ready) the appliance version it became."""

    serializer_class = UploadSerializer
    queryset = Upload.objects.none()  # the model, for the schema's path parameter; rows come from upload_of

    def get_object(self) -> Upload:
        return upload_of(self.request.user, self.kwargs["pk"])

    def head(self, request: Request, pk: str) -> Response:
        tus.check_version(request.headers.get("Tus-Resumable"))
        upload = self.get_object()
        headers = {
            "Upload-Offset": str(uploads.upload_offset(upload)),
            "Upload-Length": str(upload.length),
            "Upload-Metadata": tus.encode_metadata(_metadata_of(upload)),
            "Cache-Control": "no-store",
        }
        if upload.status == Upload.Status.RECEIVING:
            headers["Upload-Expires"] = tus.expires_header(upload.expires_at)
        return Response(status=status.HTTP_200_OK, headers=headers)

    @extend_schema(exclude=True)
    def patch(self, request: Request, pk: str) -> Response:
        tus.check_version(request.headers.get("Tus-Resumable"))
        upload = self.get_object()
        tus.check_content_type(request.META.get("CONTENT_TYPE"))
        offset = tus.parse_number(request.headers.get("Upload-Offset"), header="Upload-Offset")
        length = _body_length(request)
        if length is None:
            raise tus.LengthRequired("a PATCH must say its body's size in Content-Length")
        checksum = tus.parse_checksum(request.headers.get("Upload-Checksum"))
        stream = (request.stream if length else None) or io.BytesIO()
        upload = uploads.upload_append(upload=upload, offset=offset, length=length, stream=stream, checksum=checksum)
        headers = {"Upload-Offset": str(upload.offset), "Upload-Expires": tus.expires_header(upload.expires_at)}
        return Response(status=status.HTTP_204_NO_CONTENT, headers=headers)

    @extend_schema(exclude=True)
    def delete(self, request: Request, pk: str) -> Response:
        tus.check_version(request.headers.get("Tus-Resumable"))
        uploads.upload_terminate(user=request.user, upload=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


def _body_length(request: Request) -> int | None:
    """Content-Length as a number; None when absent (a refused malformed one is a 400)."""
    raw = request.META.get("CONTENT_LENGTH")
    if not raw:
        return None
    if not _DIGITS.fullmatch(raw.strip()):
        raise errors.Invalid.for_field("Content-Length", "Content-Length must be a whole number of bytes")
    return int(raw)


def _is_offset_body(request: Request) -> bool:
    return (request.META.get("CONTENT_TYPE") or "").split(";")[0].strip().lower() == tus.OFFSET_CONTENT_TYPE


def _metadata_of(upload: Upload) -> dict[str, str]:
    fields = {
        "project": str(upload.project_id),
        "appliance": upload.appliance,
        "version": upload.version,
        "title": upload.title,
        "filename": upload.filename,
        "port": str(upload.service_port or ""),
        "role": upload.role,
    }
    return {key: value for key, value in fields.items() if value}


__all__ = ["UploadDetailView", "UploadListView"]
