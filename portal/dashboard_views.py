"""The dashboard: the first page after signing in."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from portal.dashboard import ENDING_SOON, dashboard_for
from portal.scoping import Account


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    assert isinstance(request.user, Account), "login_required lets no anonymous caller through"
    dashboard = dashboard_for(request.user)
    context = {
        "dashboard": dashboard,
        "ending_soon": ENDING_SOON,
        # The launch dialog is offered where the reader may launch (catalog/_launch_dialog.html).
        "launch_projects": dashboard.can_launch,
    }
    return render(request, "portal/dashboard.html", context)
