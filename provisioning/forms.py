from __future__ import annotations

from typing import Any

from django import forms

from catalog.models import ApplianceVersion
from portal.models import Project, Role
from portal.scoping import User

LEASE_CHOICES = [
    (15 * 60, "15 minutes"),
    (3600, "1 hour"),
    (4 * 3600, "4 hours"),
    (24 * 3600, "1 day"),
    (7 * 24 * 3600, "1 week"),
]


class LaunchForm(forms.Form):
    name = forms.SlugField(max_length=63, help_text="Lowercase letters, digits and '-'")
    project = forms.ModelChoiceField(queryset=None)
    appliance_version = forms.ModelChoiceField(queryset=None, label="Appliance")
    lease_seconds = forms.TypedChoiceField(choices=LEASE_CHOICES, coerce=int, initial=4 * 3600, label="Lease")

    def __init__(self, *args, user, versions, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["project"].queryset = Project.objects.visible_to(user, min_role=Role.MEMBER)
        self.fields["appliance_version"].queryset = versions
        self.fields["appliance_version"].label_from_instance = _version_label


class LeaseForm(forms.Form):
    lease_seconds = forms.TypedChoiceField(choices=LEASE_CHOICES, coerce=int, initial=4 * 3600, label="Renew lease")


def _version_label(version: ApplianceVersion) -> str:
    return f"{version.appliance.title} {version.version} ({version.min_vcpus} vCPU, {version.min_ram_mib} MiB)"


class TemplateLaunchForm(forms.Form):
    name = forms.SlugField(max_length=40, help_text="Lowercase letters, digits and '-'; the tiers are named after it")
    project = forms.ModelChoiceField(queryset=None)
    lease_seconds = forms.TypedChoiceField(choices=LEASE_CHOICES, coerce=int, initial=4 * 3600, label="Lease")

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["project"].queryset = Project.objects.visible_to(user, min_role=Role.MEMBER)


class TemplateForm(forms.Form):
    name = forms.CharField(max_length=63, help_text="Lowercase letters, digits and '-'")
    project = forms.ModelChoiceField(queryset=None, required=False, help_text="Empty: shared (operators only)")
    description = forms.CharField(required=False, max_length=1000)
    source = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 20, "spellcheck": "false", "class": "code"}),
        strip=False,
        label="Template (YAML or JSON)",
    )

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["project"].queryset = Project.objects.visible_to(user, min_role=Role.MEMBER)
