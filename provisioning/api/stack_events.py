"""``GET /api/stacks/{id}/events/``: a stack's progress lines, newest first, with who asked for each."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from provisioning.api.serializers import StackEventSerializer


class StackEventsMixin:
    """Adds ``events`` to the stacks' viewset; the stack is found through its scoped ``get_object``
    (without the stack list's filters: they are about stacks, not events)."""

    @extend_schema(summary="List a stack's events", request=None, responses={200: StackEventSerializer(many=True)})
    @action(detail=True, methods=["get"], filter_backends=[])
    def events(self, request: Request, pk: str | None = None) -> Response:
        """The stack's events, newest first: what happened, the moment it speaks of, and who asked."""
        stack = self.get_object()  # type: ignore[attr-defined]
        rows = stack.events.select_related("actor").order_by("-created_at", "-id")
        page = self.paginate_queryset(rows)  # type: ignore[attr-defined]
        return self.get_paginated_response(StackEventSerializer(page, many=True).data)  # type: ignore[attr-defined]
