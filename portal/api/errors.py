"""The API's one exception handler: every error answers ``{"code", "detail", "fields"?}``.

Services raise ``portal.errors.PortalError``; DRF raises its own exceptions for bad bodies,
missing credentials or unknown ids; Django's model validation raises ``ValidationError``. All of
them leave here in the same shape, so clients handle one error format. So does an exception
nobody expected: a 500 with code ``server_error`` and a fixed sentence (the exception's own text
can name files, hosts or queries), logged with its traceback as Django logs any 500.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import signals
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation, TooManyFieldsSent, TooManyFilesSent
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpRequest, JsonResponse
from django.utils.log import log_response
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler

from portal import errors

SERVER_ERROR = {"code": "server_error", "detail": "the server failed to answer this request; it has been logged"}
# Django's own refusals of a request's size: safe to repeat (they quote a setting, not the input).
_SIZE_REFUSALS = (RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent)


def _flatten(detail: Any) -> list[str]:
    if isinstance(detail, dict):
        return [message for value in detail.values() for message in _flatten(value)]
    if isinstance(detail, list):
        return [message for value in detail for message in _flatten(value)]
    return [str(detail)]


def _from_drf_validation(exc: exceptions.ValidationError) -> errors.PortalError:
    detail = exc.detail
    if isinstance(detail, dict):
        general = detail.get("non_field_errors", [])
        fields = {name: _flatten(value) for name, value in detail.items() if name != "non_field_errors"}
        messages = _flatten(general) or [f"{name}: {text[0]}" for name, text in fields.items()][:1]
        return errors.Invalid(messages[0] if messages else "invalid input", fields=fields)
    messages = _flatten(detail)
    return errors.Invalid(messages[0] if messages else "invalid input")


def as_portal_error(exc: Exception) -> errors.PortalError | None:
    """The portal error ``exc`` stands for, or None for exceptions that are not the caller's fault."""
    if isinstance(exc, errors.PortalError):
        return exc
    if isinstance(exc, DjangoValidationError):
        return errors.Invalid.from_django(exc)
    if isinstance(exc, Http404):
        return errors.NotFound(str(exc) or "not found")
    if isinstance(exc, DjangoPermissionDenied):
        return errors.PermissionDenied(str(exc) or "you may not do this")
    if isinstance(exc, exceptions.ValidationError):
        return _from_drf_validation(exc)
    if isinstance(exc, exceptions.ParseError):  # a body that is no JSON: invalid input like any other
        return errors.Invalid(" ".join(_flatten(exc.detail)))
    if isinstance(exc, SuspiciousOperation):  # Django's 400s (a body too large, a bad header...)
        return errors.Invalid(str(exc) if isinstance(exc, _SIZE_REFUSALS) else "the request was refused")
    return None


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    portal_error = as_portal_error(exc)
    if portal_error is not None:
        return Response(portal_error.as_body(), status=portal_error.status)
    response = exception_handler(exc, context)
    if response is not None and isinstance(exc, exceptions.APIException):
        codes = exc.get_codes()
        code = codes if isinstance(codes, str) else exc.default_code
        response.data = {"code": code, "detail": " ".join(_flatten(exc.detail))}
    if response is None and not settings.DEBUG_PROPAGATE_EXCEPTIONS:
        response = _server_error(exc, context)
    return response


def _server_error(exc: Exception, context: dict[str, Any]) -> Response:
    """What Django does for an uncaught exception (tell listeners, log the traceback), answered in JSON."""
    drf_request = context.get("request")
    request = getattr(drf_request, "_request", drf_request)  # DRF wraps Django's request
    # Error reporters listen to this, and Django's test client re-raises the exception from it.
    signals.got_request_exception.send(sender=None, request=request)
    response = Response(SERVER_ERROR, status=500)
    path = getattr(request, "path", "")
    log_response("%s: %s", "Internal Server Error", path, response=response, request=request, exception=exc)
    return response


@csrf_exempt  # it changes nothing; a CSRF refusal would answer an HTML 403 instead of the 404
def api_not_found(request: HttpRequest) -> JsonResponse:
    """A path under the API that names nothing: the API's 404 body, not the site's HTML page."""
    return JsonResponse(errors.NotFound("no such API endpoint").as_body(), status=errors.NotFound.status)
