"""The catalog pages: appliances as cards with search and filters, one appliance's versions, feeds.

Every list is shown a page at a time (``catalog.paging``): one feed may list hundreds of versions,
and an operator sees every project's feeds and appliances.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.views.decorators.http import require_POST

from catalog import selectors, services
from catalog.browse import CatalogFilterForm, filtered_appliances
from catalog.feed_problems import explain_feed_error
from catalog.forms import FeedSubscribeForm
from catalog.models import Appliance, ApplianceVersion, Feed
from catalog.paging import PageLinks, page_of
from portal.models import Project, Role
from portal.scoping import is_operator, project_ids_for
from portal.web_errors import errors_as_messages, errors_on
from provisioning.forms import LaunchForm
from provisioning.launch_preview import launchable_projects_usage, suggested_stack_name, version_launch_cost

APPLIANCES_PER_PAGE = 24
FEEDS_PER_PAGE = 20
VERSIONS_PER_PAGE = 25


def _feeds_for_page(request: HttpRequest) -> PageLinks:
    """A page of the visible feeds, each marked with whether the reader may retry or remove it and why it failed."""
    user = request.user
    operator = is_operator(user)
    # Read through projects: for most readers the helper's subquery is of memberships, whose pk is no project's.
    managed_projects = Project.objects.filter(pk__in=project_ids_for(user, min_role=Role.MEMBER))
    managed = set(managed_projects.values_list("pk", flat=True))
    rows = selectors.feeds_visible_to(user).order_by("project__name", "url", "pk")
    pages = page_of(
        request, rows, per_page=FEEDS_PER_PAGE, parameter="feeds_page", label="Feed pages", fragment="feeds"
    )
    feeds: list[Feed] = list(pages.page)
    for feed in feeds:
        feed.can_manage = operator or feed.project_id in managed  # type: ignore[attr-defined]
        feed.problem = explain_feed_error(feed.last_error) if feed.last_error else None  # type: ignore[attr-defined]
    return pages


def _upload_url() -> str:
    """Where a project's own images are uploaded, if this portal has that page."""
    try:
        return reverse("upload-new")
    except NoReverseMatch:
        return ""


def _for_launch_button(version: ApplianceVersion) -> ApplianceVersion:
    """The version with what its Launch button shows the dialog: its cost and a free stack name."""
    version.cost = version_launch_cost(version)  # type: ignore[attr-defined]
    version.suggested_name = suggested_stack_name(version)  # type: ignore[attr-defined]
    return version


def _launch_dialog(request: HttpRequest) -> dict[str, Any]:
    form = LaunchForm(user=request.user, versions=selectors.appliance_versions_visible_to(request.user))
    return {"launch_form": form, "launch_projects": launchable_projects_usage(request.user)}


def _catalog_page(request: HttpRequest, form: FeedSubscribeForm) -> HttpResponse:
    filters = CatalogFilterForm(request.GET or None, user=request.user)
    pages = page_of(
        request, filtered_appliances(request.user, filters), per_page=APPLIANCES_PER_PAGE, label="Appliance pages"
    )
    appliances: list[Appliance] = list(pages.page)
    for appliance in appliances:
        newest = next(iter(appliance.newest_versions), None)  # type: ignore[attr-defined]
        appliance.newest = newest and _for_launch_button(newest)  # type: ignore[attr-defined]
    feed_pages = _feeds_for_page(request)
    context = {
        "appliances": appliances,
        "appliance_pages": pages,
        "filters": filters,
        "feeds": list(feed_pages.page),
        "feed_pages": feed_pages,
        "form": form,
        "upload_url": _upload_url(),
        **_launch_dialog(request),
    }
    return render(request, "catalog/index.html", context)


@login_required
def catalog_index(request: HttpRequest) -> HttpResponse:
    return _catalog_page(request, FeedSubscribeForm(user=request.user))


@login_required
def appliance_detail(request: HttpRequest, pk: int) -> HttpResponse:
    appliance = selectors.appliances_visible_to(request.user).prefetch_related(None).get_visible(request.user, pk=pk)
    rows = selectors.appliance_versions_visible_to(request.user).filter(appliance=appliance).newest_first()
    pages = page_of(request, rows, per_page=VERSIONS_PER_PAGE, label="Version pages")
    versions = [_for_launch_button(version) for version in pages.page]
    context = {"appliance": appliance, "versions": versions, "version_pages": pages, **_launch_dialog(request)}
    return render(request, "catalog/appliance_detail.html", context)


@login_required
@require_POST
def feed_subscribe(request: HttpRequest) -> HttpResponse:
    form = FeedSubscribeForm(request.POST, user=request.user)
    if form.is_valid():
        with errors_on(form):
            feed = services.feed_subscribe(user=request.user, **form.cleaned_data)
            messages.success(request, f"Subscribed to {feed.display_url}; its appliances appear once it is imported.")
            return redirect("catalog")
    return _catalog_page(request, form)


def _visible_feed(request: HttpRequest, pk: int) -> Feed:
    return Feed.objects.get_visible(request.user, pk=pk)


@login_required
@require_POST
def feed_retry(request: HttpRequest, pk: int) -> HttpResponse:
    feed = _visible_feed(request, pk)
    with errors_as_messages(request):
        services.feed_refresh(user=request.user, feed=feed)
        messages.success(request, f"Importing {feed} again; this page shows the result when it is done.")
    return redirect("catalog")


@login_required
@require_POST
def feed_remove(request: HttpRequest, pk: int) -> HttpResponse:
    feed = _visible_feed(request, pk)
    name = str(feed)
    with errors_as_messages(request):
        services.feed_unsubscribe(user=request.user, feed=feed)
        messages.success(request, f"Removed the feed {name} and its appliances.")
    return redirect("catalog")
