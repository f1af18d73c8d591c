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
from provisioning.lease_policy import extendable_until, latest_end
from provisioning.models import Stack
from provisioning.name_rules import SNAPSHOT_NAME, STACK_NAME, TEMPLATE_NAME

LEASE_CHOICES = [
    (15 * 60, "15 minutes"),
    (3600, "1 hour"),
    (4 * 3600, "4 hours"),
    (24 * 3600, "1 day"),
    (7 * 24 * 3600, "1 week"),
]
# What the lease form offers, each counted from now (the lease service's way of counting).
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
# The lease service counts a lease from its own clock, a moment after this form's: an end right at
# the stack's longest life would pass it by that moment and be refused.
LIMIT_MARGIN = timedelta(minutes=1)
# What an extension must add to be offered: less would change nothing worth a click.
LEAST_GAIN = timedelta(minutes=1)


def default_lease() -> int:
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


class StackLaunchFields(BootstrapForm):
    """What every launch asks, of an appliance or a template: a name, a project, a lease.

    ``projects`` are those the launch may go to (``provisioning.launch_choices``); without them,
    every project the user may launch in. The project list has no empty choice: the view starts it on
    a project the launch may go to.
    """

    name = STACK_NAME.form_field()
    project: forms.ModelChoiceField[Project] = forms.ModelChoiceField(queryset=None, empty_label=None)
    lease_seconds = forms.TypedChoiceField(
        choices=LEASE_CHOICES,
        coerce=int,
        initial=default_lease,
        label="Lease",
        help_text="The stack and its data are deleted when the lease ends; you can extend it later",
    )

    def __init__(self, *args: Any, user: User, projects: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if projects is None:
            offer_projects(self, user)
        else:
            self.fields["project"].queryset = projects  # type: ignore[attr-defined]
        name = self.fields["name"]
        name.label = "Stack name"
        # What the dialog's script says next to the field when the browser finds the name bad.
        name.widget.attrs.update({"data-invalid-message": _sentence(STACK_NAME.message), "autocomplete": "off"})
        name.widget.attrs["spellcheck"] = "false"


def _sentence(text: str) -> str:
    return f"{text[0].upper()}{text[1:]}."


class LaunchForm(StackLaunchFields):
    """A one-appliance launch. ``picker``: the appliances to choose from, grouped (``(label, [(pk,
    label)])``), when none is chosen yet; without it, the version travels in a hidden field."""

    appliance_version: forms.ModelChoiceField[ApplianceVersion] = forms.ModelChoiceField(
        queryset=None, label="Appliance", empty_label="Choose an appliance", widget=forms.HiddenInput
    )

    def __init__(self, *args: Any, user: User, versions: Any, picker: list[Any] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, user=user, **kwargs)
        field = self.fields["appliance_version"]
        field.queryset = versions  # type: ignore[attr-defined]
        if picker is not None:
            field.widget = forms.Select(attrs={"class": "form-select"})
            field.choices = [("", "Choose an appliance"), *picker]  # type: ignore[attr-defined]
        self.order_fields(["appliance_version", "name", "project", "lease_seconds"])


class ExtendLeaseForm(BootstrapForm):
    """Sets a stack's lease to end a chosen time from now; it never shortens one.

    Only what the project's policy lets one extension reach is offered: at most its longest
    extension (``max_extension``) from now, never past the stack's longest life
    (``lease_policy.latest_end``), and only ends later than today's. ``cleaned_data`` gives
    ``lease_seconds``, counted from now, as the lease service takes it.
    """

    # A number checked against the room left rather than a fixed list: the room is worked out
    # again when the form comes back.
    lease_seconds = forms.IntegerField(
        widget=forms.Select,
        label="New end of the lease",
        help_text="Counted from now; it never ends the lease earlier than it ends today.",
    )

    def __init__(self, *args: Any, stack: Stack, now: datetime | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.now = now or timezone.now()
        self.until = extendable_until(stack, now=self.now)
        to_longest_life = int((latest_end(stack) - LIMIT_MARGIN - self.now).total_seconds())
        self.most_seconds = min(stack.project.max_extension_seconds, settings.MAX_LEASE_SECONDS, to_longest_life)
        # A choice must end later than the lease does today, by a minute at least (an expired lease: anything).
        today = int((stack.expires_at + LEAST_GAIN - self.now).total_seconds())
        self.least_seconds = max(today, settings.MIN_LEASE_SECONDS)
        self.choices = [
            (seconds, f"{label} from now")
            for seconds, label in EXTENSION_CHOICES
            if self.least_seconds <= seconds <= self.most_seconds
        ]
        field = self.fields["lease_seconds"]
        field.widget.choices = self.choices
        offered = [seconds for seconds, _label in self.choices]
        field.initial = PREFERRED_EXTENSION if PREFERRED_EXTENSION in offered else next(iter(offered), None)

    @property
    def can_extend(self) -> bool:
        return bool(self.choices)

    def clean_lease_seconds(self) -> int:
        seconds: int = self.cleaned_data["lease_seconds"]
        if not self.least_seconds <= seconds <= self.most_seconds:
            if self.until <= self.now:
                raise forms.ValidationError("This stack's lease cannot be extended any more.")
            raise forms.ValidationError(
                f"Choose one of the offered times: the lease may now be extended until {moment_text(self.until)} "
                "at most."
            )
        return seconds

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        seconds = cleaned.get("lease_seconds")
        if seconds is not None:
            cleaned["new_end"] = self.now + timedelta(seconds=seconds)
        return cleaned


class ShelveForm(BootstrapForm):
    """Shelving's one choice: whether the guests' memory is kept (on by default, as in the API)."""

    memory = forms.BooleanField(
        required=False,
        initial=True,
        label="Keep memory",
        help_text="Saves each guest's memory on its host, so unshelving resumes it where it was instead of booting it.",
    )


class SnapshotForm(BootstrapForm):
    """A snapshot of every tier: its name (a suggestion from the clock) and whether memory is included."""

    name = SNAPSHOT_NAME.form_field()
    memory = forms.BooleanField(
        required=False,
        label="Include memory",
        help_text="A revert then resumes the guests where they were; without it they boot from their disks.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # In the reader's time zone (the active one on a web request), to the minute.
        self.fields["name"].initial = timezone.localtime().strftime("snap-%Y%m%d-%H%M")


class TemplateLaunchForm(StackLaunchFields):
    """A template's launch: what every launch asks, the template is in the address."""


class TemplateForm(BootstrapForm):
    name = TEMPLATE_NAME.form_field()
    project: forms.ModelChoiceField[Project] = forms.ModelChoiceField(
        queryset=None, required=False, help_text="Empty: shared (operators only)"
    )
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
