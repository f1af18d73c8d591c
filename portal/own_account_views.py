"""The account page: who you are, your projects and roles, a new password, and signing out elsewhere.

Every signed-in person reaches it, staff or not. Each form posts to the page with its own button
name; a problem is shown next to its field on the page itself, a success after a redirect.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache

from portal import own_account
from portal.models import ApiToken, Membership
from portal.own_account_forms import OwnPasswordChangeForm, SignOutOthersForm
from portal.scoping import Account, is_operator

PROJECTS_PER_PAGE = 20
CHANGE_PASSWORD = "change-password"  # noqa: S105 - the name of a button, not a secret
SIGN_OUT_OTHERS = "sign-out-others"


def _signed_in(request: HttpRequest) -> Account:
    assert isinstance(request.user, Account), "login_required lets no anonymous caller through"
    return request.user


def _to_messages() -> HttpResponse:
    # The form posted to "#password" or "#sessions"; a redirect without a fragment of its own would
    # keep that one, and the message saying what happened, on top of the page, would be out of view.
    return redirect(f"{reverse('account')}#main")


@login_required
@never_cache
def account_page(request: HttpRequest) -> HttpResponse:
    account = _signed_in(request)
    posted = request.method == "POST"
    password_form = OwnPasswordChangeForm(
        request.POST if posted and CHANGE_PASSWORD in request.POST else None, request=request, prefix="password"
    )
    sessions_form = SignOutOthersForm(
        request.POST if posted and SIGN_OUT_OTHERS in request.POST else None, request=request, prefix="sessions"
    )
    if password_form.is_bound and password_form.is_valid():
        own_account.password_change(
            request=request, account=account, new_password=password_form.cleaned_data["new_password1"]
        )
        messages.success(
            request,
            "Your password is changed. You stay signed in here; every other session is signed out "
            "and your API tokens are revoked.",
        )
        return _to_messages()
    if sessions_form.is_bound and sessions_form.is_valid():
        own_account.other_sessions_end(
            request=request, account=account, password=sessions_form.cleaned_data["password"]
        )
        messages.success(request, "Every other session is signed out. You stay signed in here.")
        return _to_messages()

    memberships = Membership.objects.filter(user=account).select_related("project").order_by("project__name", "pk")
    projects = Paginator(memberships, PROJECTS_PER_PAGE).get_page(request.GET.get("page"))
    context = {
        "account": account,
        "operator": is_operator(account),
        "projects": projects,
        "active_tokens": ApiToken.objects.filter(user=account, expires_at__gt=timezone.now()).count(),
        "password_form": password_form,
        "sessions_form": sessions_form,
        "change_password": CHANGE_PASSWORD,
        "sign_out_others": SIGN_OUT_OTHERS,
    }
    return render(request, "portal/account.html", context)
