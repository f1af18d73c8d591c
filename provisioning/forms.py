"""The stack and template forms of the web pages, their widgets dressed for Bootstrap."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django import forms
from django.conf import settings
from django.utils import timezone

from catalog.models import ApplianceVersion
from portal.models import Project, Role
from portal.moments import moment_text
from portal.scoping import User
from provisioning.models import Stack
from provisioning.name_rules import STACK_NAME, TEMPLATE_NAME

LEASE_CHOICES = [
    (15 * 60, "15 minutes"),
    (3600, "1 hour"),
    (4 * 3600, "4 hours"),
    (24 * 3600, "1 day"),
    (7 * 24 * 3600, "1 week"),
]
# What "Extend by" offers, added to the current end of the lease.
EXTENSION_CHOICES = [
    (30 * 60, "30 minutes"),
    (3600, "1 hour"),
    (4 * 3600, "4 hours"),
    (24 * 3600, "1 day"),
    (3 * 24 * 3600, "3 days"),
    (7 * 24 * 3600, "1 week"),
]
# Someone extending usually needs "a bit more"; a longer extension is a deliberate choice.
PREFERRED_EXTENSION = 3600
# The lease service counts a lease from its own clock, a moment after this form's: an extension
# right up to the project's limit would pass it by that moment and be refused.
LIMIT_MARGIN = timedelta(minutes=1)


def _default_lease() -> int:
    """The deployment's default lease when the list offers it, else 4 hours."""
    offered = {seconds for seconds, _label in LEASE_CHOICES}
    return settings.DEFAULT_LEASE_SECONDS if settings.DEFAULT_LEASE_SECONDS in offered else 4 * 3600


class BootstrapForm(forms.Form):
    """Widgets carry Bootstrap's classes, and ``is-invalid`` once a field has an error.

    Labels, help text and errors are laid out by ``templates/_form_fields.html``; Django itself
    links them to the control (``aria-describedby``, ``aria-invalid``).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            widget = field.widget
            if isinstance(widget, forms.CheckboxInput):
                css = "form-check-input"
            elif isinstance(widget, forms.Select):
                css = "form-select"
            else:
                css = "form-control"
            widget.attrs["class"] = " ".join(filter(None, [css, widget.attrs.get("class", "")]))

    def full_clean(self) -> None:
        super().full_clean()
        for name in self.errors:
            if name in self.fields:
                widget = self.fields[name].widget
                if "is-invalid" not in widget.attrs.get("class", ""):
                    widget.attrs["class"] = f"{widget.attrs.get('class', '')} is-invalid".strip()


def offer_projects(form: forms.Form, user: User) -> None:
    """The projects ``user`` may launch in; when there is only one, it is already chosen."""
    field = form.fields["project"]
    field.queryset = Project.objects.visible_to(user, min_role=Role.MEMBER)  # type: ignore[attr-defined]
    only = list(field.queryset.values_list("pk", flat=True)[:2])  # type: ignore[attr-defined]
    if len(only) == 1 and not form.is_bound and form.initial.get("project") is None:
        form.initial["project"] = only[0]


class LaunchForm(BootstrapForm):
    name = STACK_NAME.form_field()
    project = forms.ModelChoiceField(queryset=None)
    appliance_version = forms.ModelChoiceField(queryset=None, label="Appliance")
    lease_seconds = forms.TypedChoiceField(
        choices=LEASE_CHOICES,
        coerce=int,
        initial=_default_lease,
        label="Lease",
        help_text="The stack and its data are deleted when the lease ends; you can extend it later",
    )

    def __init__(self, *args: Any, user: User, versions: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        offer_projects(self, user)
        self.fields["appliance_version"].queryset = versions
        self.fields["appliance_version"].label_from_instance = _version_label


def _version_label(version: ApplianceVersion) -> str:
    return f"{version.appliance.title} {version.version} ({version.min_vcpus} vCPU, {version.min_ram_mib} MiB)"


def lease_limit(stack: Stack) -> datetime:
    """The latest end the stack's project allows: its longest lease, counted from the stack's creation."""
    return stack.created_at + timedelta(seconds=stack.project.max_lease_seconds)


class ExtendLeaseForm(BootstrapForm):
    """Adds time to the end of a stack's lease; it cannot shorten one.

    Only extensions that fit the project's limit (and the deployment's longest lease) are offered,
    plus "as long as allowed" when the room left is not one of them. ``cleaned_data`` gives
    ``lease_seconds``, counted from now, as the lease service takes it.
    """

    # A number checked against the room left rather than a fixed list: "as long as allowed" is
    # worked out again when the form comes back, and may have grown by then.
    extend_by = forms.IntegerField(
        widget=forms.Select,
        label="Extend by",
        help_text="Adds the chosen time to the current end of the lease; it never shortens the lease.",
    )

    def __init__(self, *args: Any, stack: Stack, now: datetime | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.now = now or timezone.now()
        # An expired lease that the sweep has not ended yet is extended from now, not from the past.
        self.current_end = max(stack.expires_at, self.now)
        deployment_limit = self.now + timedelta(seconds=settings.MAX_LEASE_SECONDS)
        self.limit = lease_limit(stack)
        self.latest_end = min(self.limit, deployment_limit) - LIMIT_MARGIN
        self.room_seconds = max(0, int((self.latest_end - self.current_end).total_seconds()))
        self.choices = self._offered()
        field = self.fields["extend_by"]
        field.widget.choices = self.choices
        offered = [seconds for seconds, _label in self.choices]
        field.initial = PREFERRED_EXTENSION if PREFERRED_EXTENSION in offered else next(iter(offered), None)

    def _offered(self) -> list[tuple[int, str]]:
        choices = [(seconds, label) for seconds, label in EXTENSION_CHOICES if seconds <= self.room_seconds]
        if self.room_seconds >= settings.MIN_LEASE_SECONDS and self.room_seconds not in dict(choices):
            until = moment_text(self.current_end + timedelta(seconds=self.room_seconds))
            label = f"{_about(self.room_seconds)}: as long as allowed (until {until})"
            choices.append((self.room_seconds, label))
        return choices

    @property
    def can_extend(self) -> bool:
        return bool(self.choices)

    def clean_extend_by(self) -> int:
        extend_by: int = self.cleaned_data["extend_by"]
        if not settings.MIN_LEASE_SECONDS <= extend_by <= self.room_seconds:
            raise forms.ValidationError(
                f"Choose one of the offered extensions: this stack may live until {moment_text(self.limit)} at most."
            )
        return extend_by

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        extend_by = cleaned.get("extend_by")
        if extend_by is not None:
            new_end = self.current_end + timedelta(seconds=extend_by)
            cleaned["new_end"] = new_end
            cleaned["lease_seconds"] = int((new_end - timezone.now()).total_seconds())
        return cleaned


def _about(seconds: int) -> str:
    """``2 days 3 hours``, ``5 hours 20 minutes``, ``45 minutes``: two units at most."""
    units = [("day", 86400), ("hour", 3600), ("minute", 60)]
    parts = []
    for name, size in units:
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count} {name}{'' if count == 1 else 's'}")
    return " ".join(parts[:2]) or "less than a minute"


class TemplateLaunchForm(BootstrapForm):
    name = STACK_NAME.form_field()
    project = forms.ModelChoiceField(queryset=None)
    lease_seconds = forms.TypedChoiceField(
        choices=LEASE_CHOICES,
        coerce=int,
        initial=_default_lease,
        label="Lease",
        help_text="The stack and its data are deleted when the lease ends; you can extend it later",
    )

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        offer_projects(self, user)


class TemplateForm(BootstrapForm):
    name = TEMPLATE_NAME.form_field()
    project = forms.ModelChoiceField(queryset=None, required=False, help_text="Empty: shared (operators only)")
    description = forms.CharField(required=False, max_length=1000)
    source = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 20, "spellcheck": "false", "class": "code font-monospace"}),
        strip=False,
        label="Template (YAML or JSON)",
        help_text="A mapping with 'description' and a list of 'tiers'; mistakes are shown with their path",
    )

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        offer_projects(self, user)
