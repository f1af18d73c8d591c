"""The stack page's actions after launch: power, shelve, snapshots, extend. Thin: POST in, a service
called, a message next to the controls that were used, back to the stack page.

Every view finds the stack among the ones the reader may see (another project's id is a 404); the
services decide who may act (members and owners) and in which status, and their refusal is what the
page shows, in their words.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from portal import errors
from portal.web_errors import errors_on
from provisioning.forms import ShelveForm, SnapshotForm
from provisioning.models import Instance, Stack, StackSnapshot
from provisioning.services import lifecycle, power, shelving, snapshots
from provisioning.views import lease_moved_text, note, refusals_noted, stack_page

# What each power action is called in messages: (what is done, what was asked).
POWER_WORDS = {
    "start": ("Starting", "start"),
    "shutdown": ("Shutting down", "shut down"),
    "poweroff": ("Powering off", "power off"),
    "reboot": ("Rebooting", "reboot"),
}
WHOLE_STACK_POWER = {
    "start": "its tiers start in dependency order, the database first.",
    "shutdown": "each tier is asked to power off, in reverse dependency order; one that does not is powered off.",
    "poweroff": "every tier's power is cut, in reverse dependency order.",
    "reboot": "its tiers shut down and start again, in dependency order.",
}


def _stack(request: HttpRequest, pk: int) -> Stack:
    return Stack.objects.select_related("project").get_visible(request.user, pk=pk)


def _snapshot(stack: Stack, snapshot_id: int) -> StackSnapshot:
    snapshot = StackSnapshot.objects.filter(stack=stack, pk=snapshot_id).first()
    if snapshot is None:
        raise errors.NotFound("no such snapshot")
    return snapshot


def _back(stack: Stack) -> HttpResponse:
    return redirect("stack-detail", pk=stack.pk)


@login_required
@require_POST
def stack_power(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    """Start, shut down, power off or reboot every tier (``action`` is one of ``POWER_WORDS``)."""
    stack = _stack(request, pk)
    doing, asked = POWER_WORDS[action]
    with refusals_noted(request, "actions", f"{asked} {stack.name}"):
        power.stack_power(user=request.user, stack=stack, action=action)
        note(request, "actions", f"{doing} {stack.name}: {WHOLE_STACK_POWER[action]}")
    return _back(stack)


@login_required
@require_POST
def instance_power(request: HttpRequest, pk: int, instance_id: int, action: str) -> HttpResponse:
    """The same for one instance of the stack; the stack is busy meanwhile."""
    stack = _stack(request, pk)
    instance = Instance.objects.filter(stack=stack, pk=instance_id).first()
    if instance is None:
        raise errors.NotFound("no such instance")
    doing, asked = POWER_WORDS[action]
    with refusals_noted(request, "tiers", f"{asked} {instance.name}"):
        power.stack_power(user=request.user, stack=stack, action=action, instance=instance)
        note(request, "tiers", f"{doing} {instance.name}.")
    return _back(stack)


@login_required
@require_POST
def stack_shelve(request: HttpRequest, pk: int) -> HttpResponse:
    stack = _stack(request, pk)
    form = ShelveForm(request.POST)
    memory = form.is_valid() and form.cleaned_data["memory"]  # a checkbox: absent means off
    with refusals_noted(request, "actions", f"shelve {stack.name}"):
        shelving.stack_shelve(user=request.user, stack=stack, memory=memory)
        how = "its guests' memory is saved on the host" if memory else "its guests are shut down"
        note(request, "actions", f"Shelving {stack.name}: {how}, then its vCPUs and memory are released.")
    return _back(stack)


@login_required
@require_POST
def stack_unshelve(request: HttpRequest, pk: int) -> HttpResponse:
    stack = _stack(request, pk)
    with refusals_noted(request, "actions", f"unshelve {stack.name}"):
        shelving.stack_unshelve(user=request.user, stack=stack)
        note(request, "actions", f"Unshelving {stack.name}: its vCPUs and memory are claimed again, its tiers started.")
    return _back(stack)


@login_required
@require_POST
def snapshot_create(request: HttpRequest, pk: int) -> HttpResponse:
    """Take a snapshot of every tier; a refusal shows on the form, next to the field it concerns."""
    stack = _stack(request, pk)
    form = SnapshotForm(request.POST, auto_id="snapshot-%s")
    if form.is_valid():
        with errors_on(form):
            made = snapshots.snapshot_create(user=request.user, stack=stack, **form.cleaned_data)
            memory = "with" if made.memory else "without"
            note(request, "snapshots", f"Taking snapshot {made.name} of every tier, {memory} memory.")
            return _back(stack)
    return stack_page(request, pk, snapshot_form=form)


@login_required
@require_POST
def snapshot_revert(request: HttpRequest, pk: int, snapshot_id: int) -> HttpResponse:
    stack = _stack(request, pk)
    snapshot = _snapshot(stack, snapshot_id)
    with refusals_noted(request, "snapshots", f"revert to snapshot {snapshot.name}"):
        snapshots.snapshot_revert(user=request.user, stack=stack, snapshot=snapshot)
        note(
            request,
            "snapshots",
            f"Reverting {stack.name} to snapshot {snapshot.name}: every tier goes back to that moment.",
        )
    return _back(stack)


@login_required
@require_POST
def snapshot_delete(request: HttpRequest, pk: int, snapshot_id: int) -> HttpResponse:
    stack = _stack(request, pk)
    snapshot = _snapshot(stack, snapshot_id)
    with refusals_noted(request, "snapshots", f"delete snapshot {snapshot.name}"):
        snapshots.snapshot_delete(user=request.user, stack=stack, snapshot=snapshot)
        note(request, "snapshots", f"Deleting snapshot {snapshot.name} from every tier.")
    return _back(stack)


@login_required
@require_POST
def stack_extend(request: HttpRequest, pk: int) -> HttpResponse:
    """Extend the lease as far as the project allows, counted from now."""
    stack = _stack(request, pk)
    previous_end = stack.expires_at
    with refusals_noted(request, "lease", "extend the lease"):
        extended = lifecycle.stack_extend(user=request.user, stack=stack)
        note(request, "lease", lease_moved_text(extended, previous_end))
    return _back(stack)
