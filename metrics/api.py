"""``GET /api/v1/instances/{id}/metrics/?since=`` and ``GET /api/v1/hosts/{id}/metrics/?since=``.

An instance's samples are read by everyone in its project (viewers too); to anyone else it does not
exist (404). A host's are read by operators only. ``since`` is a moment in ISO 8601 (an hour ago when
left out); the answer holds the samples taken then or later, oldest first, at most
``history.MAX_SERIES`` of them, and ``next`` (a link to the samples after the last one) when more
follow. An instance's answer also sums up its whole period, every page of it: the peak and average
of its CPU, memory in use, and disk and network rates.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view, inline_serializer
from rest_framework import generics, permissions, serializers
from rest_framework.request import Request
from rest_framework.response import Response

from metrics import history
from metrics.models import HostSample, InstanceSample
from provisioning.models import Host, Instance

SINCE = OpenApiParameter(
    "since",
    OpenApiTypes.DATETIME,
    description="The first moment (ISO 8601; without an offset, UTC). Default: an hour ago",
)
_RESOLUTION = timedelta(microseconds=1)  # the database's: the moment after a sample


class InstanceSampleSerializer(serializers.ModelSerializer):
    host = serializers.CharField(source="host.name", read_only=True, default=None)

    class Meta:
        model = InstanceSample
        fields = [
            "sampled_at",
            "host",
            "running",
            "vcpus",
            "cpu_percent",
            "memory_mib",
            "memory_used_mib",
            "disk_read_bytes_sec",
            "disk_write_bytes_sec",
            "net_rx_bytes_sec",
            "net_tx_bytes_sec",
            "cpu_time_ns",
            "disk_read_bytes",
            "disk_write_bytes",
            "net_rx_bytes",
            "net_tx_bytes",
        ]
        read_only_fields = fields


class HostSampleSerializer(serializers.ModelSerializer):
    class Meta:
        model = HostSample
        fields = [
            "sampled_at",
            "cpus",
            "cpu_percent",
            "memory_mib",
            "memory_free_mib",
            "domains",
            "load_1m",
            "cpu_busy_ns",
            "cpu_total_ns",
        ]
        read_only_fields = fields


def _figure(name: str) -> serializers.Serializer:
    return inline_serializer(
        name=f"MetricsSummary_{name}",
        fields={
            "peak": serializers.FloatField(allow_null=True),
            "average": serializers.FloatField(allow_null=True),
        },
    )


_PAGE_FIELDS: dict[str, serializers.Field] = {
    "since": serializers.DateTimeField(),
    "next": serializers.URLField(allow_null=True, help_text="The samples after these, when there are more"),
}
INSTANCE_METRICS = inline_serializer(
    name="InstanceMetrics",
    fields={
        **_PAGE_FIELDS,
        "summary": inline_serializer(
            name="InstanceMetricsSummary",
            fields={name: _figure(name) for name in history.SUMMARY_FIELDS},
            help_text="Peak and average over every sample since `since` (null: none had the figure)",
        ),
        "samples": InstanceSampleSerializer(many=True),
    },
)
HOST_METRICS = inline_serializer(
    name="HostMetrics", fields={**_PAGE_FIELDS, "samples": HostSampleSerializer(many=True)}
)


def _page(request: Request, rows: list[Any], *, since: datetime) -> tuple[list[Any], dict[str, object]]:
    """The rows of this answer (one fetched past the page tells there are more) and the paging fields."""
    page, more = rows[: history.MAX_SERIES], len(rows) > history.MAX_SERIES
    next_url = None
    if more:
        query = request.query_params.copy()
        query["since"] = (page[-1].sampled_at + _RESOLUTION).isoformat()
        next_url = request.build_absolute_uri(f"{request.path}?{query.urlencode()}")
    return page, {"since": since, "next": next_url}


@extend_schema_view(get=extend_schema(summary="Get an instance's recent CPU, memory, disk and network figures"))
class InstanceMetricsView(generics.GenericAPIView):
    """What one instance used, one sample a minute, with its peaks and averages."""

    queryset = Instance.objects.none()  # the model, for the schema's path parameter
    pagination_class = None  # paged by moment: see ``next``
    http_method_names = ["get", "head", "options"]

    @extend_schema(parameters=[SINCE], responses=INSTANCE_METRICS)
    def get(self, request: Request, pk: int) -> Response:
        instance = Instance.objects.get_visible(request.user, pk=pk)  # outsiders: 404
        since = history.parse_since(request.query_params.get("since"))
        rows = history.instance_series(instance=instance, since=since, limit=history.MAX_SERIES + 1)
        page, paging = _page(request, rows, since=since)
        return Response(
            {
                **paging,
                "summary": history.instance_summary(instance=instance, since=since),
                "samples": InstanceSampleSerializer(page, many=True).data,
            }
        )


@extend_schema_view(get=extend_schema(summary="Get a host's recent CPU and memory load (operators)"))
class HostMetricsView(generics.GenericAPIView):
    """A host's load, one sample a minute; for operators."""

    queryset = Host.objects.none()
    pagination_class = None
    permission_classes = [permissions.IsAdminUser]
    http_method_names = ["get", "head", "options"]

    @extend_schema(parameters=[SINCE], responses=HOST_METRICS)
    def get(self, request: Request, pk: int) -> Response:
        host = generics.get_object_or_404(Host.objects.all(), pk=pk)
        since = history.parse_since(request.query_params.get("since"))
        rows = history.host_series(host=host, since=since, limit=history.MAX_SERIES + 1)
        page, paging = _page(request, rows, since=since)
        return Response({**paging, "samples": HostSampleSerializer(page, many=True).data})
