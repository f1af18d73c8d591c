"""Pages about who may do what: the user's own API tokens, and the members of a project.

Thin, like every web view: forms in, ``portal.tokens`` and ``portal.services`` called, and every
outcome reported as a flash message. Objects outside the user's reach answer 404 (the token of
another user, a project they are not in); a project they may see but not manage answers 403.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from portal import scoping, services, tokens
from portal.account_forms import MemberForm, MemberRemoveForm, TokenCreateForm
from portal.models import ApiToken, Membership, Project, Role
from portal.scoping import Account
from portal.web_errors import errors_as_messages, errors_on


def _signed_in(request: HttpRequest) -> Account:
    assert isinstance(request.user, Account), "login_required lets no anonymous caller through"
    return request.user


# --- API tokens ---


@login_required
@never_cache  # the page that shows a new secret must not be kept by the browser or a proxy
def token_list(request: HttpRequest) -> HttpResponse:
    form = TokenCreateForm(request.POST or None)
    issued = None
    if request.method == "POST":
        if form.is_valid():
            token, secret = tokens.token_issue(user=_signed_in(request), name=form.cleaned_data["name"])
            # Rendered here rather than after a redirect: the secret is never stored, not even in the session.
            issued = {"token": token, "secret": secret}
            messages.success(request, f"Token “{token.name}” created. Copy its secret now: it is shown only once.")
            form = TokenCreateForm()
        else:
            messages.error(request, "No token was created: give it a name of at most 100 characters.")
    context = {
        "form": form,
        "issued": issued,
        "tokens": ApiToken.objects.filter(user=_signed_in(request)),
        "now": timezone.now(),
        "token_days": settings.API_TOKEN_DAYS,
    }
    return render(request, "portal/tokens.html", context)


@login_required
def token_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    """GET asks to confirm; POST revokes. Another user's token is missing (404), never forbidden."""
    token = get_object_or_404(ApiToken, pk=pk, user=_signed_in(request))
    if request.method != "POST":
        return render(request, "portal/token_revoke.html", {"token": token})
    label = token.name or f"{token.prefix}…"
    tokens.token_revoke(actor=request.user, token=token)
    messages.success(request, f"Token “{label}” revoked: it no longer works.")
    return redirect("account-tokens")


# --- Project members ---


def _project_for(request: HttpRequest, pk: int) -> tuple[Project, bool]:
    """The project (``NotFound`` unless the user is in it) and whether the user may manage its members."""
    project = Project.objects.get_visible(request.user, pk=pk)
    return project, scoping.role_in(request.user, project) == Role.OWNER


def _require_manager(request: HttpRequest, project: Project) -> None:
    # Checked before the service runs, outside errors_on: a viewer's POST is a 403 page, not a form error.
    scoping.require_role(request.user, project, Role.OWNER)


def _members(project: Project) -> list[Membership]:
    return list(Membership.objects.filter(project=project).select_related("user").order_by("user__username"))


@login_required
def project_members(request: HttpRequest, pk: int) -> HttpResponse:
    """Everyone in the project sees who is in it; owners (and operators) also add members here."""
    project, can_manage = _project_for(request, pk)
    form = MemberForm(request.POST or None)
    if request.method == "POST":
        _require_manager(request, project)
        if form.is_valid():
            username = form.cleaned_data["username"]
            already_in = Membership.objects.filter(project=project, user__username=username).exists()
            with errors_on(form):
                membership = services.membership_set(actor=request.user, project=project, **form.cleaned_data)
                role = Role(membership.role).label.lower()
                if already_in:
                    messages.success(request, f"{username} is now {role} in {project.name}.")
                else:
                    messages.success(request, f"{username} added to {project.name} as {role}.")
                return redirect("project-members", pk=project.pk)
        messages.error(request, "Nothing was changed: see the form below.")
    context = {
        "project": project,
        "members": _members(project),
        "can_manage": can_manage,
        "form": form,
        "roles": Role.choices,
    }
    return render(request, "portal/members.html", context)


@login_required
@require_POST
def member_role(request: HttpRequest, pk: int) -> HttpResponse:
    """Change one member's role (from the member list); a refusal, such as the last owner's, is a message."""
    project, _ = _project_for(request, pk)
    _require_manager(request, project)
    form = MemberForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Nothing was changed: choose one of the offered roles.")
        return redirect("project-members", pk=project.pk)
    username = form.cleaned_data["username"]
    # The service would add a newcomer; this form only changes the role of someone already in.
    if not Membership.objects.filter(project=project, user__username=username).exists():
        messages.error(request, f"Nothing was changed: {username} is not in {project.name}.")
        return redirect("project-members", pk=project.pk)
    with errors_as_messages(request):
        membership = services.membership_set(actor=request.user, project=project, **form.cleaned_data)
        label = Role(membership.role).label.lower()
        messages.success(request, f"{username} is now {label} in {project.name}.")
    return redirect("project-members", pk=project.pk)


@login_required
def member_remove(request: HttpRequest, pk: int) -> HttpResponse:
    """GET asks to confirm (``?username=``); POST removes. Only owners and operators get this far."""
    project, _ = _project_for(request, pk)
    _require_manager(request, project)
    form = MemberRemoveForm(request.POST if request.method == "POST" else request.GET)
    if not form.is_valid():
        messages.error(request, "Nobody was removed: say whom to remove.")
        return redirect("project-members", pk=project.pk)
    username = form.cleaned_data["username"]
    if request.method != "POST":
        membership = get_object_or_404(Membership, project=project, user__username=username)
        return render(request, "portal/member_remove.html", {"project": project, "membership": membership})
    with errors_as_messages(request):
        services.membership_remove(actor=request.user, project=project, username=username)
        messages.success(request, f"{username} removed from {project.name}.")
    # Whoever removed themselves may no longer see the project.
    if not Project.objects.visible_to(request.user).filter(pk=project.pk).exists():
        return redirect("dashboard")
    return redirect("project-members", pk=project.pk)
