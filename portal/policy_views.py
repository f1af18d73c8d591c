"""The lease policy page of a project: everyone in it reads the policy, owners change it here.

Durations are asked in minutes (people think in them; the API takes seconds). Only the fields the
owner changed go to the service (``portal.policy``), so a value the API set to the second is not
rounded by saving the page. Refusals show on the field they concern.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from portal import errors, scoping
from portal.models import Project, Role, RunEnd
from portal.policy import MAX_WARNINGS, WARNING_LIMIT_SECONDS, project_policy_update
from portal.web_errors import errors_on
from provisioning.forms import BootstrapForm

# The form's fields in minutes, and the project's fields (in seconds) they stand for.
MINUTE_FIELDS = {
    "run_lease": "run_lease_seconds",
    "storage_lease": "storage_lease_seconds",
    "max_extension": "max_extension_seconds",
    "max_life": "max_lease_seconds",
    "idle_after": "idle_after_seconds",
}
OTHER_FIELDS = {
    "at_run_end": "at_run_end",
    "warn_before": "warn_before",
    "webhook_url": "webhook_url",
    "webhook_secret": "webhook_secret",
}
FORM_NAMES = {model: form for form, model in (MINUTE_FIELDS | OTHER_FIELDS).items()}


def _minutes(*, label: str, help_text: str, required: bool = True) -> forms.IntegerField:
    return forms.IntegerField(
        label=label,
        help_text=help_text,
        required=required,
        min_value=max(1, settings.MIN_LEASE_SECONDS // 60),
        max_value=settings.MAX_LEASE_SECONDS // 60,
    )


class PolicyForm(BootstrapForm):
    run_lease = _minutes(label="Run lease (minutes)", help_text="The lease a stack launched without one gets.")
    at_run_end = forms.ChoiceField(
        label="When a running stack's lease ends", choices=RunEnd.choices, widget=forms.Select
    )
    storage_lease = _minutes(label="Storage lease (minutes)", help_text="How long a shelved stack is kept.")
    max_extension = _minutes(
        label="Longest extension (minutes)", help_text="The most one extension adds, counted from the moment of asking."
    )
    max_life = _minutes(label="Longest life (minutes)", help_text="The longest a stack may live, from its creation.")
    warn_before = forms.CharField(
        label="Warn before the end (minutes)",
        required=False,
        max_length=200,
        help_text=f"Up to {MAX_WARNINGS} numbers separated by commas, e.g. 1440, 60, 10. Empty: no warnings.",
    )
    idle_after = _minutes(
        label="Idle after (minutes)",
        required=False,
        help_text="A stack idle this long is warned, then shelved. Empty: never.",
    )
    webhook_url = forms.CharField(
        label="Webhook URL",
        required=False,
        max_length=500,
        widget=forms.URLInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
        help_text="Gets a signed JSON POST for every warning and lease event. Empty: no webhook.",
    )
    webhook_secret = forms.CharField(
        label="Webhook secret",
        required=False,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}, render_value=False),
        help_text="Signs every delivery (X-Portal-Signature). Leave empty to keep the current one.",
    )

    def clean_warn_before(self) -> list[int]:
        text = self.cleaned_data["warn_before"]
        parts = [part.strip() for part in text.split(",") if part.strip()]
        if not all(part.isdigit() for part in parts):
            raise forms.ValidationError("Give whole numbers of minutes, separated by commas.")
        minutes = [int(part) for part in parts]
        if any(not 0 < value * 60 < WARNING_LIMIT_SECONDS for value in minutes):
            raise forms.ValidationError(
                f"Each warning must come less than {WARNING_LIMIT_SECONDS // 86400} days before."
            )
        return [value * 60 for value in minutes]

    def changes(self) -> dict[str, Any]:
        """The project's fields the owner changed, in the project's units."""
        changed: dict[str, Any] = {}
        for name in self.changed_data:
            value = self.cleaned_data[name]
            if name in MINUTE_FIELDS:
                changed[MINUTE_FIELDS[name]] = None if value is None else value * 60
            elif name == "webhook_secret" and not value:
                continue  # empty: keep the secret
            else:
                changed[OTHER_FIELDS[name]] = value
        return changed


def _initial(project: Project) -> dict[str, Any]:
    values: dict[str, Any] = {
        form: (getattr(project, model) // 60 if getattr(project, model) is not None else None)
        for form, model in MINUTE_FIELDS.items()
    }
    values["at_run_end"] = project.at_run_end
    # The form reads this text back to a list: the initial value must be the same text, or every
    # save would count it as changed.
    values["warn_before"] = ", ".join(str(seconds // 60) for seconds in project.warn_before)
    values["webhook_url"] = project.webhook_url
    return values


@login_required
def project_policy(request: HttpRequest, pk: int) -> HttpResponse:
    project = Project.objects.get_visible(request.user, pk=pk)  # outsiders: 404
    can_change = scoping.role_in(request.user, project) == Role.OWNER
    form = PolicyForm(request.POST or None, initial=_initial(project))
    if request.method == "POST":
        scoping.require_role(request.user, project, Role.OWNER)  # members and viewers: the 403 page
        if form.is_valid():
            with errors_on(form):
                _save(request, project, form)
                return redirect("project-policy", pk=project.pk)
        messages.error(request, "Nothing was changed: see the form below.")
    context = {
        "project": project,
        "can_change": can_change,
        "form": form,
        "warn_minutes": [seconds // 60 for seconds in project.warn_before],
    }
    return render(request, "portal/project_policy.html", context)


def _save(request: HttpRequest, project: Project, form: PolicyForm) -> None:
    try:
        project_policy_update(user=request.user, project=project, **form.changes())
    except errors.PortalError as exc:
        # The service names the project's fields; the form names them as on the page.
        fields = {FORM_NAMES.get(name, name): problems for name, problems in exc.fields.items()}
        raise type(exc)(exc.detail, fields=fields) from None
    messages.success(request, f"The lease policy of {project.name} was saved.")
