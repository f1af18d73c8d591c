"""The HTML sign-in pages (the portal's and the admin's), answering 429 when the sign-in throttle refuses.

The throttle itself sits in the authentication backend (``portal.sign_in_throttle``); these views
only turn its refusal into a page that says how long to wait, with status 429 and ``Retry-After``.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse

from portal.sign_in_throttle import throttled_wait, wait_message


def _answer_throttled(request: HttpRequest, response: HttpResponse) -> HttpResponse:
    wait = throttled_wait(request)
    if wait is not None:
        response.status_code = 429
        response["Retry-After"] = str(wait)
    return response


class SignInForm(AuthenticationForm):
    def get_invalid_login_error(self) -> ValidationError:
        wait = throttled_wait(self.request)
        if wait is not None:
            # Not "wrong password": the password was not looked at.
            return ValidationError(wait_message(wait), code="throttled")
        return super().get_invalid_login_error()


class SignInView(auth_views.LoginView):
    authentication_form = SignInForm

    def form_invalid(self, form: AuthenticationForm) -> HttpResponse:
        return _answer_throttled(self.request, super().form_invalid(form))


def admin_sign_in(request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
    """The admin's own sign-in page; when the throttle refused, the wait is shown above its form."""
    response = admin.site.login(request, extra_context)
    wait = throttled_wait(request)
    if wait is not None:
        # The page is rendered after this returns (a TemplateResponse), so the message shows on it.
        messages.error(request, wait_message(wait))
    return _answer_throttled(request, response)
