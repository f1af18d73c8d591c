"""Portal errors in HTML views: on the form that caused them, as a message, or as an error page.

Views call services inside ``errors_on(form)`` (the form shows field and general errors) or
``errors_as_messages(request)`` (a flash message above the page they redirect to). A
``NotFound`` or ``PermissionDenied`` that escapes a view becomes the 404 or 403 page through
``PortalErrorMiddleware``; any other portal error that escapes is a page of its own
(``render_refusal``), in the portal's layout, saying what happened and what may help.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.http import url_has_allowed_host_and_scheme

from portal import errors


def add_to_form(form: forms.BaseForm, exc: errors.PortalError) -> None:
    """Field errors go next to their fields when the form has them; the others above the form, each
    with the part it names (a template's ``tiers[1].appliance``), so none is dropped."""
    placed = {name: texts for name, texts in exc.fields.items() if name in form.fields}
    elsewhere = [
        f"{name}: {message}" for name, texts in exc.fields.items() if name not in form.fields for message in texts
    ]
    add_problems(form, placed)
    for message in elsewhere or ([] if placed else [exc.detail]):
        form.add_error(None, message)


def add_problems(form: forms.BaseForm, problems: Mapping[str, list[str]]) -> None:
    """Each message under its field, the field drawn as invalid: a form's own ``full_clean`` marks
    the widgets it refuses, and an error found later (by a service) must look the same."""
    for name, field_messages in problems.items():
        for message in field_messages:
            form.add_error(name, message)
        widget = form.fields[name].widget
        css = widget.attrs.get("class", "")
        if "is-invalid" not in css.split():
            widget.attrs["class"] = f"{css} is-invalid".strip()


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
            return render_refusal(request, exc)
        return None


# What the reader can do next, by the error's code: the detail says what happened, this what helps.
NEXT_STEP = {
    "no_capacity": "Trying again in a few minutes may help: hosts free up as other stacks end.",
    "invalid_state": "The page you came from may be out of date: go back and reload it to see where things stand.",
    "catalog_error": "The appliance's publisher is at fault, not you; the catalog page says when the feed last worked.",
}


def render_refusal(request: HttpRequest, exc: errors.PortalError) -> HttpResponse:
    """A refusal no view placed on a form, as a page of the portal (with its navigation and a way back)."""
    back = request.headers.get("Referer", "")
    if not url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        back = ""
    context = {
        "detail": exc.detail,
        "next_step": NEXT_STEP.get(exc.code, "Check what you asked for and try again."),
        "back": back,
    }
    return render(request, "portal_error.html", context, status=exc.status)
