"""Portal errors in HTML views: on the form that caused them, as a message, or as an error page.

Views call services inside ``errors_on(form)`` (the form shows field and general errors) or
``errors_as_messages(request)`` (a flash message above the page they redirect to). A
``NotFound`` or ``PermissionDenied`` that escapes a view becomes the 404 or 403 page through
``PortalErrorMiddleware``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse

from portal import errors


def add_to_form(form: forms.BaseForm, exc: errors.PortalError) -> None:
    """Field errors go next to their fields when the form has them; everything else above the form."""
    placed = False
    for name, field_messages in exc.fields.items():
        if name in form.fields:
            for message in field_messages:
                form.add_error(name, message)
            placed = True
    if not placed:
        form.add_error(None, exc.detail)


@contextmanager
def errors_on(form: forms.BaseForm) -> Iterator[None]:
    try:
        yield
    except errors.NotFound:
        raise
    except errors.PortalError as exc:
        add_to_form(form, exc)


@contextmanager
def errors_as_messages(request: HttpRequest) -> Iterator[None]:
    try:
        yield
    except errors.NotFound:
        raise
    except errors.PortalError as exc:
        messages.error(request, exc.detail)


class PortalErrorMiddleware:
    """Turns a portal error no view handled into Django's own 404, 403 or 400 handling."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exc: Exception) -> HttpResponse | None:
        if isinstance(exc, errors.NotFound):
            raise Http404(exc.detail) from exc
        if isinstance(exc, errors.PermissionDenied | errors.QuotaExceeded):
            raise PermissionDenied(exc.detail) from exc
        if isinstance(exc, errors.PortalError):
            response = HttpResponse(exc.detail, status=exc.status, content_type="text/plain; charset=utf-8")
            return response
        return None
