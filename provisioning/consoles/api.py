"""``POST /api/v1/instances/{id}/console/``: a ticket for an instance's VNC or serial console;
``GET /api/v1/instances/{id}/console-log/``: the end of what its serial console wrote."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from portal.api.validation import StrictRequestSerializer
from provisioning.api.instance_power import POWER_ACTIONS, InstancePowerActions
from provisioning.consoles import tickets
from provisioning.consoles.backlog import BACKLOG_BYTES, console_backlog
from provisioning.models import ConsoleTicket, Instance


class ConsoleRequestSerializer(StrictRequestSerializer):
    kind = serializers.ChoiceField(choices=ConsoleTicket.Kind.choices)


class ConsoleTicketSerializer(serializers.Serializer):
    url = serializers.CharField(help_text="The websocket to open, within a minute, once; it carries the ticket")
    expires_at = serializers.DateTimeField()


class ConsoleLogSerializer(serializers.Serializer):
    text = serializers.CharField(
        help_text="The serial console's last output as plain text (terminal control sequences taken out)"
    )
    truncated = serializers.BooleanField(
        help_text=f"Older output was left out: this is the log's last {BACKLOG_BYTES} bytes"
    )
    size_bytes = serializers.IntegerField(help_text="How much the host's log of this console holds in all")
    available = serializers.BooleanField(help_text="False when the host could not be asked or keeps no log")
    reason = serializers.CharField(help_text="Why the log is not available; empty when it is")


def console_url(request: Request, issued: tickets.IssuedTicket) -> str:
    """The socket's URL on the host the request came to, ``wss://`` when the request came over TLS."""
    scheme = "wss" if request.is_secure() else "ws"
    return f"{scheme}://{request.get_host()}/ws/consoles/{issued.kind}/?ticket={issued.ticket}"


@extend_schema_view(
    console=extend_schema(summary="Open a console (a one-time ticket)"),
    console_log=extend_schema(summary="Read the end of an instance's serial console log"),
    start=extend_schema(summary="Start one instance"),
    shutdown=extend_schema(summary="Shut one instance down"),
    poweroff=extend_schema(summary="Power one instance off"),
    reboot=extend_schema(summary="Reboot one instance"),
)
class InstanceViewSet(InstancePowerActions, viewsets.GenericViewSet):
    """Instances of the caller's projects (listed with their stacks): their consoles and their power."""

    # An instance that is not running has no console; a stack busy with a job takes no power action.
    conflict_actions = ("console", *POWER_ACTIONS)
    serializer_class = ConsoleRequestSerializer  # what OPTIONS describes for POST

    def get_queryset(self) -> QuerySet[Instance]:
        return Instance.objects.visible_to(self.request.user).select_related("stack__project", "host")

    @extend_schema(request=ConsoleRequestSerializer, responses={201: ConsoleTicketSerializer})
    @action(detail=True, methods=["post"])
    def console(self, request: Request, pk: str | None = None, **kwargs: Any) -> Response:
        """A one-time ticket for the instance's ``vnc`` or ``serial`` console, as a websocket URL.

        Members and owners only; the socket must be opened within 60 seconds, by the same user.
        """
        given = ConsoleRequestSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        issued = tickets.console_ticket_issue(
            user=request.user, instance=self.get_object(), kind=given.validated_data["kind"]
        )
        body = ConsoleTicketSerializer({"url": console_url(request, issued), "expires_at": issued.expires_at})
        return Response(body.data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={200: ConsoleLogSerializer})
    @action(detail=True, methods=["get"], url_path="console-log")
    def console_log(self, request: Request, pk: str | None = None, **kwargs: Any) -> Response:
        """The end of what the instance's serial console wrote (its last 64 KiB), as Horizon's console log.

        Members and owners only, as for the consoles: it holds whatever was typed there.
        """
        backlog = console_backlog(user=request.user, instance=self.get_object())
        body = {
            "text": backlog.text,
            "truncated": backlog.truncated,
            "size_bytes": backlog.size_bytes,
            "available": backlog.available,
            "reason": backlog.reason,
        }
        return Response(ConsoleLogSerializer(body).data)
