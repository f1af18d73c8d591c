"""``GET /api/v1/projects/{id}/usage/?from=&to=``: what each stack of a project held and cost, per day.

Everyone in the project reads it (viewers too); to anyone else the project does not exist (404). The
answer is a JSON list, or CSV (``Accept: text/csv`` or ``?format=csv``) with the same columns. Numbers
are decimal strings with six decimals; the cost is in ``settings.CURRENCY``. Rows are at most a sample
(a minute) behind. Errors answer in the API's JSON error body whatever was asked for.
"""

from __future__ import annotations

import csv
import io
from decimal import ROUND_HALF_UP
from typing import Any

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import generics, serializers
from rest_framework.renderers import BaseRenderer, BrowsableAPIRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from portal.api.schema import PortalAutoSchema
from portal.models import Project
from usage.periods import UsagePeriod, usage_period
from usage.selectors import project_usage_records

# The columns of a row, in the order of the CSV header.
COLUMNS = (
    "date",
    "stack_id",
    "stack_name",
    "user",
    "vcpu_hours",
    "memory_gib_hours",
    "disk_gib_hours",
    "snapshot_gib_hours",
    "cost",
)
# A spreadsheet reads a cell that starts with one of these as a formula: such text gets a leading "'".
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _number(**kwargs: Any) -> serializers.DecimalField:
    return serializers.DecimalField(max_digits=20, decimal_places=6, rounding=ROUND_HALF_UP, **kwargs)


class UsageRecordSerializer(serializers.Serializer):
    date = serializers.DateField(help_text="The day (UTC)")
    stack_id = serializers.IntegerField(source="kept_stack_id", help_text="Kept when the stack is gone")
    stack_name = serializers.CharField()
    user = serializers.CharField(source="username", help_text="Who launched the stack")
    vcpu_hours = _number(help_text="vCPUs held while not shelved, times hours")
    memory_gib_hours = _number(help_text="GiB of memory held while not shelved, times hours")
    disk_gib_hours = _number(help_text="GiB of instance disks held, times hours")
    snapshot_gib_hours = _number(help_text="GiB of snapshot space held, times hours")
    cost = _number(help_text="In the portal's currency (PORTAL_CURRENCY)")


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    return f"'{text}" if text.startswith(_FORMULA_STARTS) else text


class UsageCsvRenderer(BaseRenderer):
    """Rows as CSV: a header of ``COLUMNS``, then one line per row."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None) -> bytes:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(COLUMNS)
        for row in data or []:
            writer.writerow([_cell(row[column]) for column in COLUMNS])
        return out.getvalue().encode(self.charset)


class UsageSchema(PortalAutoSchema):
    """Rows as JSON or CSV, errors as JSON only (see ``ProjectUsageView.finalize_response``)."""

    def _get_response_for_code(
        self, serializer: Any, status_code: str, media_types: Any = None, direction: Any = "response"
    ) -> dict[str, Any]:
        if int(status_code) >= 400:
            media_types = [JSONRenderer.media_type]
        return super()._get_response_for_code(serializer, status_code, media_types, direction)


def csv_filename(project: Project, period: UsagePeriod) -> str:
    return f"usage-project-{project.pk}-{period.start.isoformat()}-{period.end.isoformat()}.csv"


@extend_schema_view(
    get=extend_schema(summary="Get a project's usage and cost"),
)
class ProjectUsageView(generics.GenericAPIView):
    """Usage and cost of a project's stacks, one row per stack and day (UTC)."""

    serializer_class = UsageRecordSerializer
    queryset = Project.objects.none()  # the model, for the schema's path parameter; rows come from the project
    pagination_class = None  # bounded by the period (at most 366 days) and the selector's row limit
    renderer_classes = [JSONRenderer, BrowsableAPIRenderer, UsageCsvRenderer]  # DRF's two, and CSV
    http_method_names = ["get", "head", "options"]
    schema = UsageSchema()

    @extend_schema(
        parameters=[
            OpenApiParameter("from", OpenApiTypes.DATE, description="First day (UTC); default: the 1st of to's month"),
            OpenApiParameter("to", OpenApiTypes.DATE, description="Last day (UTC), included; default: today"),
        ],
        responses={
            (200, JSONRenderer.media_type): UsageRecordSerializer(many=True),
            (200, UsageCsvRenderer.media_type): OpenApiResponse(
                OpenApiTypes.STR, description="A header line of the columns, then one line per row"
            ),
        },
    )
    def get(self, request: Request, pk: int) -> Response:
        project = Project.objects.get_visible(request.user, pk=pk)  # outsiders: 404
        period = usage_period(start_text=request.query_params.get("from"), end_text=request.query_params.get("to"))
        records = project_usage_records(project=project, period=period)
        response = Response(UsageRecordSerializer(records, many=True).data)
        if isinstance(getattr(request, "accepted_renderer", None), UsageCsvRenderer):
            response["Content-Disposition"] = f'attachment; filename="{csv_filename(project, period)}"'
        response["X-Currency"] = settings.CURRENCY
        return response

    def finalize_response(self, request: Request, response: Response, *args: Any, **kwargs: Any) -> Response:
        # An error body, or what OPTIONS says of the view, is a JSON object, whatever format the client
        # asked the rows in: only rows have a CSV form.
        not_rows = response.status_code >= 400 or request.method == "OPTIONS"
        if not_rows and isinstance(getattr(request, "accepted_renderer", None), UsageCsvRenderer):
            request.accepted_renderer = JSONRenderer()
            request.accepted_media_type = JSONRenderer.media_type
        return super().finalize_response(request, response, *args, **kwargs)
