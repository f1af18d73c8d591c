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
    context = {"dashboard": dashboard_for(request.user), "ending_soon_minutes": int(ENDING_SOON.total_seconds() // 60)}
    return render(request, "portal/dashboard.html", context)
