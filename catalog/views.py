"""The catalog pages: appliances as cards with search and filters, one appliance's versions, feeds.

Every list is shown a page at a time (``catalog.paging``): one feed may list hundreds of versions,
and an operator sees every project's feeds and appliances. An appliance offered by several feeds is
one card (``catalog.grouping``); a version that cannot be launched says why and what to do instead
of offering Launch (``catalog.image_problems``). A feed is fetched by a worker: the page says so,
and the feed's row follows its state until the fetch ends.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import F, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.views.decorators.http import require_POST

from catalog import selectors, services
from catalog.browse import CatalogFilterForm, filtered_appliances
from catalog.feed_states import feed_state
from catalog.forms import FeedSubscribeForm
from catalog.grouping import MAX_SOURCES_SHOWN, entries_for, entry_rows
from catalog.image_problems import launch_block
from catalog.models import ApplianceVersion, Feed, FeedQuerySet
from catalog.paging import PageLinks, page_of
from portal.models import Project, Role
from portal.scoping import User, is_operator, project_ids_for
from portal.web_errors import errors_as_messages, errors_on
from provisioning.launch_preview import launchable_projects_usage, suggested_stack_name, version_launch_cost
from provisioning.services.image_retry import image_download_retry

APPLIANCES_PER_PAGE = 12
FEEDS_PER_PAGE = 20
VERSIONS_PER_PAGE = 25


def _feed_rows(user: User) -> FeedQuerySet:
    # Shared feeds (no project) last on every database, so a feed's page can be counted (``_feeds_page_of``).
    return selectors.feeds_visible_to(user).order_by(F("project__name").asc(nulls_last=True), "url", "pk")


def _with_state(feeds: list[Feed], user: User) -> list[Feed]:
    """Each feed marked with whether the reader may retry or remove it, and its state in words."""
    operator = is_operator(user)
    # Read through projects: for most readers the helper's subquery is of memberships, whose pk is no project's.
    managed = set(
        Project.objects.filter(pk__in=project_ids_for(user, min_role=Role.MEMBER)).values_list("pk", flat=True)
    )
    for feed in feeds:
        feed.can_manage = operator or feed.project_id in managed  # type: ignore[attr-defined]
        feed.state = feed_state(feed)  # type: ignore[attr-defined]
    return feeds


def _feeds_for_page(request: HttpRequest) -> PageLinks:
    """A page of the visible feeds, each with its state in words and what the reader may do to it."""
    pages = page_of(
        request,
        _feed_rows(request.user),
        per_page=FEEDS_PER_PAGE,
        parameter="feeds_page",
        label="Feed pages",
        fragment="feeds",
    )
    _with_state(list(pages.page), request.user)
    return pages


def _feeds_page_of(user: User, feed: Feed) -> int:
    """The page of the feed list that shows ``feed``, so a reader is taken to it after acting on it."""
    rows = _feed_rows(user)
    if feed.project is None:
        before = rows.filter(
            Q(project__isnull=False)
            | Q(project__isnull=True, url__lt=feed.url)
            | Q(project__isnull=True, url=feed.url, pk__lt=feed.pk)
        )
    else:
        name = feed.project.name
        before = rows.filter(
            Q(project__name__lt=name)
            | Q(project__name=name, url__lt=feed.url)
            | Q(project__name=name, url=feed.url, pk__lt=feed.pk)
        )
    return before.count() // FEEDS_PER_PAGE + 1


def _to_feed(user: User, feed: Feed) -> HttpResponse:
    return redirect(f"{reverse('catalog')}?feeds_page={_feeds_page_of(user, feed)}#feed-{feed.pk}")


def _upload_url() -> str:
    """Where a project's own images are uploaded, if this portal has that page."""
    try:
        return reverse("upload-new")
    except NoReverseMatch:
        return ""


def _for_launch_button(version: ApplianceVersion) -> ApplianceVersion:
    """The version with what its Launch button shows the dialog (its cost, a free stack name), or why it has none."""
    version.block = launch_block(version)  # type: ignore[attr-defined]
    version.cost = version_launch_cost(version)  # type: ignore[attr-defined]
    version.suggested_name = suggested_stack_name(version)  # type: ignore[attr-defined]
    return version


def _launch_dialog(request: HttpRequest) -> dict[str, Any]:
    # The dialog asks the launch page for its form; the page only needs where the reader may launch.
    return {"launch_projects": launchable_projects_usage(request.user)}


def _catalog_page(request: HttpRequest, form: FeedSubscribeForm) -> HttpResponse:
    filters = CatalogFilterForm(request.GET or None, user=request.user)
    appliances = filtered_appliances(request.user, filters)
    pages = page_of(request, entry_rows(appliances), per_page=APPLIANCES_PER_PAGE, label="Appliance pages")
    entries = entries_for(appliances, list(pages.page))
    for entry in entries:
        for copy in entry.copies[:MAX_SOURCES_SHOWN]:
            if copy.newest is not None:
                _for_launch_button(copy.newest)
    feed_pages = _feeds_for_page(request)
    context = {
        "appliances": entries,
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
    # The newest version that may be launched, offered at the top of the page (found among the
    # first few: a version further down is launched from its row).
    candidates = rows.filter(withdrawn=False)[:VERSIONS_PER_PAGE]
    primary = next((version for version in candidates if launch_block(version) is None), None)
    copies = (
        selectors.appliances_visible_to(request.user)
        .prefetch_related(None)
        .filter(identifier=appliance.identifier, title=appliance.title)
        .exclude(pk=appliance.pk)
        .order_by("feed__title", "feed__url", "pk")[:MAX_SOURCES_SHOWN]
    )
    context = {
        "appliance": appliance,
        "versions": versions,
        "version_pages": pages,
        "primary": primary and _for_launch_button(primary),
        "copies": list(copies),
        **_launch_dialog(request),
    }
    return render(request, "catalog/appliance_detail.html", context)


@login_required
@require_POST
def version_image_retry(request: HttpRequest, pk: int) -> HttpResponse:
    version = selectors.appliance_versions_visible_to(request.user).get_visible(request.user, pk=pk)
    with errors_as_messages(request):
        wait = image_download_retry(user=request.user, version=version)
        if wait:
            messages.warning(request, f"The download of {version} waits: {wait}.")
        else:
            messages.success(request, f"Downloading the image of {version} again; this page shows how it goes.")
    return redirect("appliance-detail", pk=version.appliance_id)


@login_required
@require_POST
def feed_subscribe(request: HttpRequest) -> HttpResponse:
    form = FeedSubscribeForm(request.POST, user=request.user)
    if form.is_valid():
        with errors_on(form):
            feed = services.feed_subscribe(user=request.user, **form.cleaned_data)
            # The import runs in a worker: what is known now is only that it was asked for.
            messages.success(
                request, f"Subscribed to {feed.display_url}; fetching the feed… The feed list shows how it goes."
            )
            return _to_feed(request.user, feed)
    return _catalog_page(request, form)


def _visible_feed(request: HttpRequest, pk: int) -> Feed:
    return Feed.objects.get_visible(request.user, pk=pk)


@login_required
def feed_status(request: HttpRequest, pk: int) -> HttpResponse:
    """One feed's row of the feed list, polled by the page while the feed is being fetched."""
    feed = _with_state([_visible_feed(request, pk)], request.user)[0]
    return render(request, "catalog/_feed_row.html", {"feed": feed})


@login_required
@require_POST
def feed_retry(request: HttpRequest, pk: int) -> HttpResponse:
    feed = _visible_feed(request, pk)
    with errors_as_messages(request):
        services.feed_refresh(user=request.user, feed=feed)
        messages.success(request, f"Fetching {feed} again… The feed list shows how it goes.")
    return _to_feed(request.user, feed)


@login_required
@require_POST
def feed_remove(request: HttpRequest, pk: int) -> HttpResponse:
    feed = _visible_feed(request, pk)
    name = str(feed)
    with errors_as_messages(request):
        services.feed_unsubscribe(user=request.user, feed=feed)
        messages.success(request, f"Removed the feed {name} and its appliances.")
    return redirect("catalog")
