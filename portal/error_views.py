"""Django's last-resort 500 answer, in the API's error body for paths under ``/api/``.

DRF renders the errors of its own views (``portal/api/errors.py``) and the API's catch-all route
answers unknown paths; this covers a failure outside any DRF view (a middleware, a plain view),
where Django would answer with an HTML page a client of the API cannot read.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults

from portal.api.errors import SERVER_ERROR


def server_error(request: HttpRequest) -> HttpResponse:
    if request.path.startswith("/api/"):
        return JsonResponse(SERVER_ERROR, status=500)
    return defaults.server_error(request)
