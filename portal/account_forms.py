"""Forms of the account pages: naming a new API token, and who is in a project with which role."""

from __future__ import annotations

from django import forms

from portal.models import Role


class TokenCreateForm(forms.Form):
    name = forms.CharField(
        max_length=100,
        help_text="What the token is for, e.g. “CI pipeline”, so you know which one to revoke later.",
        error_messages={
            "required": "Give the token a name: what it is for.",
            "max_length": "A token's name has at most %(limit_value)d characters (this one has %(show_value)d).",
        },
        widget=forms.TextInput(attrs={"class": "form-control", "autocomplete": "off"}),
    )


class MemberForm(forms.Form):
    """Add someone to a project, or give a member another role (the same service does both)."""

    username = forms.CharField(
        max_length=150,
        label="User name",
        help_text="The name they sign in with.",
        error_messages={
            "required": "Write the user name of the person to add.",
            "max_length": "User names have at most %(limit_value)d characters (this one has %(show_value)d).",
        },
        widget=forms.TextInput(attrs={"class": "form-control", "autocomplete": "off", "autocapitalize": "none"}),
    )
    role = forms.TypedChoiceField(
        choices=Role.choices,
        coerce=Role,
        initial=Role.MEMBER,
        error_messages={"invalid_choice": "Choose one of the roles offered.", "required": "Choose a role."},
        widget=forms.Select(attrs={"class": "form-select"}),
    )


class MemberRemoveForm(forms.Form):
    username = forms.CharField(max_length=150, widget=forms.HiddenInput)
