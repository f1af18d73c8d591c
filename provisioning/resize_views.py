"""The stack page's "Resize a tier" form: POST in, the resize service called, back to the stack page.

A refusal (quota, the host's room, a disk that would shrink, a busy stack) is written on the form, in
the service's words, on the stack page sent again; ``request.resize_form`` carries the form just sent
to the panel (``provisioning.templatetags.stack_resize``), which the page's own view does not know.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from portal import scoping
from portal.models import Role
from portal.web_errors import errors_on
from provisioning.forms import BootstrapForm
from provisioning.models import Stack, Status
from provisioning.services import resize
from provisioning.services.resize import MAX_DISK_GIB, MAX_MEMORY_MIB
from provisioning.views import note, stack_page

FORM_ID = "resize-%s"
MAX_FORM_VCPUS = 256


def tier_names(stack: Stack) -> list[str]:
    """The stack's tiers that have instances, in the order they were launched."""
    names = stack.instances.exclude(status=Status.DELETED).order_by("id").values_list("role", flat=True)
    return list(dict.fromkeys(names))


class ResizeForm(BootstrapForm):
    tier = forms.ChoiceField(label="Tier", help_text="Every instance of the tier gets the new size.")
    vcpus = forms.IntegerField(label="vCPUs", required=False, min_value=1, max_value=MAX_FORM_VCPUS)
    memory_mib = forms.IntegerField(label="Memory (MiB)", required=False, min_value=16, max_value=MAX_MEMORY_MIB)
    disk_gib = forms.IntegerField(
        label="Disk (GiB)", required=False, min_value=1, max_value=MAX_DISK_GIB, help_text="Disks only grow."
    )

    def __init__(self, *args: Any, stack: Stack, **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", FORM_ID)
        super().__init__(*args, **kwargs)
        tier_field = self.fields["tier"]
        assert isinstance(tier_field, forms.ChoiceField)
        tier_field.choices = [(name, name) for name in tier_names(stack)]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if all(cleaned.get(name) is None for name in ("vcpus", "memory_mib", "disk_gib")) and not self.errors:
            raise forms.ValidationError("Give a new number of vCPUs, memory or disk (or several).")
        return cleaned


@login_required
@require_POST
def stack_resize(request: HttpRequest, pk: int) -> HttpResponse:
    stack = Stack.objects.select_related("project").get_visible(request.user, pk=pk)  # others: 404
    scoping.require_role(request.user, stack.project, Role.MEMBER)  # viewers: the 403 page, whatever they send
    form = ResizeForm(request.POST, stack=stack)
    if form.is_valid():
        size = {name: value for name, value in form.cleaned_data.items() if value is not None}
        with errors_on(form):
            _resize_and_say(request, stack, size)
            return redirect("stack-detail", pk=stack.pk)
    request.resize_form = form  # type: ignore[attr-defined]
    return stack_page(request, pk, status=400)


def _resize_and_say(request: HttpRequest, stack: Stack, size: dict[str, Any]) -> None:
    resize.stack_resize(user=request.user, stack=stack, **size)
    tier = size["tier"]
    how = (
        "what the running guests can take now applies at once, the rest at their next restart."
        if stack.status == Status.RUNNING
        else "its next start uses the new size."
    )
    note(request, "actions", f"Resizing tier {tier} of {stack.name}: {how}")
