"""The API's docs page: Swagger UI inside the portal's own layout, after an introduction for newcomers.

The introduction says what the schema cannot: how to get a token, how to send it, whose data a
token reaches, what is limited and what every error looks like. Its figures come from settings and
from the modules that enforce them, so the page says what the server does.
"""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularSwaggerSplitView
from rest_framework.request import Request
from rest_framework.response import Response

from portal.api.pagination import MAX_LIMIT
from portal.api.schema import ERROR_DESCRIPTIONS
from portal.moments import duration_text


def docs_facts() -> dict[str, Any]:
    """What the introduction states, read from where it is enforced."""
    return {
        "token_days": settings.API_TOKEN_DAYS,
        "page_size": settings.REST_FRAMEWORK["PAGE_SIZE"],
        "max_limit": MAX_LIMIT,
        "sign_in_window": duration_text(settings.SIGN_IN_WINDOW_SECONDS),
        "failures_per_address": settings.SIGN_IN_FAILURES_PER_ADDRESS,
        "failures_per_account": settings.SIGN_IN_FAILURES_PER_ACCOUNT,
        "error_statuses": sorted(ERROR_DESCRIPTIONS.items()),
    }


class ApiDocsView(SpectacularSwaggerSplitView):
    """Swagger UI's page in ``base.html`` (navigation, sign-in state); its start-up script stays a file."""

    template_name = "portal/api_docs.html"

    @extend_schema(exclude=True)
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        response = super().get(request, *args, **kwargs)
        if not isinstance(response.data, dict):
            return response
        if request.GET.get("script") is None:
            response.data |= docs_facts() | {"api_root": request.build_absolute_uri("/api/v1/")}
        else:
            # With deep links, Swagger UI puts a link inside each operation's expand button: an
            # interactive element inside another, which keyboards and screen readers cannot use.
            ui_settings = json.loads(response.data["settings"]) | {"deepLinking": False}
            response.data["settings"] = json.dumps(ui_settings, indent=2)
        return response
