from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from catalog import selectors


@login_required
def catalog_index(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "catalog/index.html",
        {
            "appliances": selectors.appliances_visible_to(request.user),
            "feeds": selectors.feeds_visible_to(request.user),
        },
    )
