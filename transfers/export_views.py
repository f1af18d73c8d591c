"""Exports on the web: the stack page's export panel, an export's live status, and the download.

The panel (``stacks/<id>/exports/``) answers htmx with itself (the stack page loads it in place) and
anyone else with a page of its own; its forms ask for an instance's disk or the whole stack as an
OVA. Each export under way re-reads its own small status fragment (``exports/<id>/status/``) every
second until it is done. Thin: stacks and exports are found among those the reader may see
(another project's answer 404), the service decides who may export and when, and says why not.

The download (``exports/<id>/download/<secret>/<file>``) is a signed URL: whoever holds it gets the
file until the export expires (410 Gone after), signed in or not, so ``curl`` and download managers
can fetch it; a wrong secret, or an export not ready, answers 404. The file is streamed with its
length and its SHA-256 (``Repr-Digest``, and the older ``Digest``).
"""

from __future__ import annotations

import base64

from django.contrib.auth.decorators import login_required
from django.http import FileResponse, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_http_methods

from portal import errors, scoping
from portal.models import Role
from provisioning.models import Instance, Stack, Status
from provisioning.views import note
from transfers import exports
from transfers.export_selectors import export_of, recent_stack_exports
from transfers.models import Export, JobStatus

_SECRET_LENGTH = 64


def progress_percent(export: Export) -> int | None:
    """How far an export under way is, in percent; None before it knows its total."""
    if export.bytes_total <= 0:
        return None
    return min(100, export.bytes_done * 100 // export.bytes_total)


def _row_context(export: Export) -> dict[str, object]:
    return {
        "export": export,
        "percent": progress_percent(export),
        "active": export.status in exports.UNFINISHED,
        "expired": exports.is_expired(export),
        "download_url": None,
    }


def _row(export: Export) -> dict[str, object]:
    context = _row_context(export)
    if export.status == JobStatus.READY and not context["expired"]:
        secret = exports.download_secret(export)
        context["download_url"] = reverse("export-download", args=[export.pk, secret, exports.file_name(export)])
    return context


def _panel(
    request: HttpRequest, stack: Stack, *, notice: str = "", problem: str = "", status: int = 200
) -> HttpResponse:
    role = scoping.role_in(request.user, stack.project)
    may_export = role is not None and role.rank >= Role.MEMBER.rank
    rows = [_row(export) for export in recent_stack_exports(request.user, stack)]
    context = {
        "stack": stack,
        "notice": notice,
        "problem": problem,
        "rows": rows,
        "may_export": may_export,
        "exportable": stack.status in exports.EXPORTABLE and stack.moving_from_id is None,
        "instances": list(stack.instances.exclude(status=Status.DELETED).order_by("pk")),
        "disk_formats": [(str(f), f.label) for f in exports.DISK_FORMATS],
    }
    fragment = bool(request.headers.get("HX-Request"))
    template = "transfers/_export_panel.html" if fragment else "transfers/stack_exports.html"
    response = render(request, template, context)
    patch_vary_headers(response, ["HX-Request"])
    return response


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def stack_exports(request: HttpRequest, pk: int) -> HttpResponse:
    """The panel; a POST asks for an export: ``what=ova``, or ``what=disk`` with ``instance`` and ``format``."""
    stack = Stack.objects.select_related("project").get_visible(request.user, pk=pk)
    if request.method != "POST":
        return _panel(request, stack)
    notice = problem = ""
    try:
        made = _ask(request, stack)
        notice = f"Exporting {made.source_name} as {made.get_format_display()}: it is listed below until it is ready."
    except errors.NotFound:
        raise
    except errors.PortalError as exc:
        problem = f"Could not export: {exc.detail}"
    if not request.headers.get("HX-Request"):
        note(request, "actions", problem or notice, error=bool(problem))
        return redirect("stack-detail", pk=stack.pk)
    return _panel(request, stack, notice=notice, problem=problem)


def _ask(request: HttpRequest, stack: Stack) -> Export:
    what = request.POST.get("what", "")
    if what == "ova":
        return exports.export_stack(user=request.user, stack=stack)
    if what != "disk":
        raise errors.Invalid("choose a disk or the whole stack to export")
    instance_id = request.POST.get("instance", "")
    instance = (
        Instance.objects.filter(stack=stack, pk=int(instance_id)).select_related("stack__project").first()
        if instance_id.isdigit() and len(instance_id) <= 18
        else None
    )
    if instance is None:
        raise errors.NotFound("no such instance in this stack")
    return exports.export_instance(user=request.user, instance=instance, fmt=request.POST.get("format", ""))


@login_required
@require_http_methods(["GET", "HEAD"])
def export_status(request: HttpRequest, pk: int) -> HttpResponse:
    """One export's row: while it is under way it asks for itself again every second."""
    export = export_of(request.user, pk)
    return render(request, "transfers/_export_row.html", _row(export))


@require_http_methods(["GET", "HEAD"])
def export_download(request: HttpRequest, pk: int, secret: str, filename: str) -> FileResponse:
    """The finished file, to whoever holds the signed URL (see the module)."""
    export = Export.objects.filter(pk=pk).first()
    if export is None or len(secret) != _SECRET_LENGTH:
        raise errors.NotFound("no such export")
    path = exports.downloadable_file(export, secret)  # NotFound, or Gone once expired
    response = FileResponse(path.open("rb"), as_attachment=True, filename=exports.file_name(export))
    response["Content-Type"] = "application/octet-stream"
    digest = base64.b64encode(bytes.fromhex(export.sha256)).decode()
    response["Repr-Digest"] = f"sha-256=:{digest}:"
    response["Digest"] = f"SHA-256={digest}"
    response["Cache-Control"] = "private, no-store"
    response["Referrer-Policy"] = "no-referrer"
    return response
