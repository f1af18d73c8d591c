from __future__ import annotations

from django import forms

from catalog.models import ApplianceVersion
from portal.models import Project, Role

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
