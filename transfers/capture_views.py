"""The stack page's capture panel: a form to capture the stack, and its captures with their progress.

One address (``stacks/<id>/capture/``) answers htmx with the panel alone (the stack page loads it,
and it re-reads itself while a capture is under way) and anyone else with a page of its own. Thin:
the stack is found among those the reader may see (another project's is a 404), the service decides
who may capture and when, and its refusals show on the form in its words.
"""

from __future__ import annotations

from django import forms
from django.contrib.auth.decorators import login_required
from django.core.validators import RegexValidator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_http_methods

from portal import scoping
from portal.models import Role
from portal.web_errors import errors_on
from provisioning.forms import BootstrapForm
from provisioning.models import Stack
from provisioning.views import note
from transfers.capture import (
    APPLIANCE_PREFIX,
    CAPTURE,
    PREFIX_RULE,
    VERSION,
    VERSION_RULE,
    capture_create,
    captured_identifier,
    captured_template_name,
    progress_percent,
)
from transfers.models import FINAL_STATUSES, Capture

RECENT_CAPTURES = 5


class CaptureForm(BootstrapForm):
    appliance_prefix = forms.CharField(
        label="Appliance prefix",
        max_length=60,
        validators=[
            RegexValidator(rf"\A(?:{APPLIANCE_PREFIX.pattern})\Z", message=f"The prefix must be {PREFIX_RULE}.")
        ],
        help_text="Each tier becomes appliance <prefix>-<tier> in the project's catalog.",
    )
    version = forms.CharField(
        label="Version",
        max_length=50,
        validators=[RegexValidator(rf"\A(?:{VERSION.pattern})\Z", message=f"The version must be {VERSION_RULE}.")],
        help_text="Every captured appliance gets this version; the template is named after the stack and it.",
    )


def _first_tier(stack: Stack) -> str:
    """The tier the panel's example names: the stack's first, as launched (its document was checked then)."""
    tiers = (stack.document or {}).get("tiers")
    first = tiers[0] if isinstance(tiers, list) and tiers and isinstance(tiers[0], dict) else {}
    name = first.get("name")
    return name if isinstance(name, str) and name else "main"  # a stack without tiers offers no capture


def _panel(
    request: HttpRequest, stack: Stack, form: CaptureForm | None = None, *, notice: str = "", status: int = 200
) -> HttpResponse:
    role = scoping.role_in(request.user, stack.project)
    example_tier = _first_tier(stack)
    captures = list(
        Capture.objects.filter(stack=stack).select_related("template").order_by("-created_at")[:RECENT_CAPTURES]
    )
    context = {
        "stack": stack,
        "form": form or CaptureForm(initial={"appliance_prefix": stack.name}, auto_id="capture-%s"),
        "captures": [(capture, progress_percent(capture)) for capture in captures],
        "notice": notice,
        "active": any(capture.status not in FINAL_STATUSES for capture in captures),
        "may_capture": role is not None and role.rank >= Role.MEMBER.rank,
        "capturable": stack.status in CAPTURE.allowed_from,
        "example_tier": example_tier,
        "example": captured_identifier(stack.name, example_tier),
    }
    fragment = bool(request.headers.get("HX-Request"))
    template = "transfers/_capture_panel.html" if fragment else "transfers/stack_capture.html"
    response = render(request, template, context, status=status)
    patch_vary_headers(response, ["HX-Request"])
    return response


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def stack_capture(request: HttpRequest, pk: int) -> HttpResponse:
    stack = Stack.objects.select_related("project").get_visible(request.user, pk=pk)
    if request.method != "POST":
        return _panel(request, stack)
    scoping.require_role(request.user, stack.project, Role.MEMBER)  # viewers: the 403 page, whatever they send
    form = CaptureForm(request.POST, auto_id="capture-%s")
    if form.is_valid():
        with errors_on(form):
            made = capture_create(user=request.user, stack=stack, **form.cleaned_data)
            name = captured_template_name(stack.name, made.version)
            text = (
                f"Capturing {stack.name} as version {made.version}: its tiers pause together while their disks "
                f"are copied; then come the appliances and template {name}."
            )
            if request.headers.get("HX-Request"):
                return _panel(request, stack, notice=text)
            note(request, "actions", text)
            return redirect("stack-detail", pk=stack.pk)
    return _panel(request, stack, form, status=400 if request.headers.get("HX-Request") is None else 200)
