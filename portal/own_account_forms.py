"""The forms of the account page: a new password, and signing out of the other sessions.

Both check the current password through ``portal.own_account`` (inside the sign-in budgets), and
say what went wrong next to the field it concerns.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth.forms import PasswordChangeForm
from django.http import HttpRequest

from portal.form_styles import MarksInvalidFields
from portal.own_account import SignInThrottled, WrongPassword, current_password_check
from portal.scoping import Account

WRONG_PASSWORD = "That is not your current password."  # noqa: S105 - a message, not a secret


def _current_password_field() -> forms.CharField:
    return forms.CharField(
        label="Current password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password", "class": "form-control"}),
    )


def _checked(request: HttpRequest, account: Account, password: str) -> str:
    try:
        current_password_check(request=request, account=account, password=password)
    except WrongPassword:
        raise forms.ValidationError(WRONG_PASSWORD, code="password_incorrect") from None
    except SignInThrottled as exc:
        raise forms.ValidationError(f"{exc} Your password was not checked.", code="password_throttled") from None
    return password


class OwnPasswordChangeForm(MarksInvalidFields, PasswordChangeForm):
    """Django's form (its new password checked by AUTH_PASSWORD_VALIDATORS), the current one throttled."""

    def __init__(self, *args: Any, request: HttpRequest, **kwargs: Any) -> None:
        super().__init__(request.user, *args, **kwargs)
        self.request = request
        self.fields["old_password"] = _current_password_field()
        for name in ("new_password1", "new_password2"):
            self.fields[name].widget.attrs["class"] = "form-control"
        self.fields["new_password2"].label = "New password again"

    def clean_old_password(self) -> str:
        return _checked(self.request, self.user, self.cleaned_data.get("old_password", ""))


class SignOutOthersForm(MarksInvalidFields, forms.Form):
    password = _current_password_field()

    def __init__(self, *args: Any, request: HttpRequest, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.request = request

    def clean_password(self) -> str:
        user = self.request.user
        assert isinstance(user, Account), "the account page is for signed-in people only"
        return _checked(self.request, user, self.cleaned_data.get("password", ""))
