from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from catalog import selectors, services
from catalog.forms import FeedSubscribeForm
from portal.web_errors import errors_on


def _catalog_page(request: HttpRequest, form: FeedSubscribeForm) -> HttpResponse:
    return render(
        request,
        "catalog/index.html",
        {
            "appliances": selectors.appliances_visible_to(request.user),
            "feeds": selectors.feeds_visible_to(request.user),
            "form": form,
        },
    )


@login_required
def catalog_index(request: HttpRequest) -> HttpResponse:
    return _catalog_page(request, FeedSubscribeForm(user=request.user))


@login_required
@require_POST
def feed_subscribe(request: HttpRequest) -> HttpResponse:
    form = FeedSubscribeForm(request.POST, user=request.user)
    if form.is_valid():
        with errors_on(form):
            feed = services.feed_subscribe(user=request.user, **form.cleaned_data)
            messages.info(request, f"Subscribed to {feed.display_url}; the import runs in the background.")
            return redirect("catalog")
    return _catalog_page(request, form)
