"""The notices' pages: one's own notifications (with the navigation's unread count), and the page
an extend link from a mail opens.

An extend link works without signing in: its secret is the authority, for one stack, as the
person it was mailed to. Its page only asks; the extension is its form's POST (with Django's CSRF
token, as any form), so a mail scanner that follows the link changes nothing. Nothing on the page
sends the secret elsewhere: no referrer leaves it, and no cache keeps it.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from notices import selectors, services
from notices.extend_links import LinkGone, extend_link_find, extend_link_use
from notices.models import Notification
from portal import errors
from provisioning.models import DELETABLE_STATUSES
from provisioning.services.lifecycle import extendable_until, latest_end

PAGE_SIZE = 50
# htmx stops polling an element when answered with this status (the reader signed out meanwhile).
HTMX_STOP_POLLING = 286


@login_required
def notification_list(request: HttpRequest) -> HttpResponse:
    unread_only = request.GET.get("unread") == "1"
    notifications = selectors.notifications_of(request.user, unread_only=unread_only)
    page = Paginator(notifications, PAGE_SIZE).get_page(request.GET.get("page"))
    context = {"page": page, "unread_only": unread_only, "unread": selectors.unread_count(request.user)}
    return render(request, "notices/notification_list.html", context)


@login_required
@require_POST
def notification_read(request: HttpRequest, pk: int) -> HttpResponse:
    notification = Notification.objects.mine(request.user).filter(pk=pk).first()
    if notification is None:
        raise errors.NotFound("no such notification")
    services.notification_mark_read(user=request.user, notification=notification)
    return redirect(_back(request))


@login_required
@require_POST
def notification_read_all(request: HttpRequest) -> HttpResponse:
    count = services.notifications_mark_all_read(user=request.user)
    messages.success(request, f"{count} notification{'s' if count != 1 else ''} marked read.")
    return redirect("notification-list")


def unread_badge(request: HttpRequest) -> HttpResponse:
    """The navigation's count alone, for htmx (re-read on each socket message, or polled without one)."""
    if not request.user.is_authenticated:
        return HttpResponse(status=HTMX_STOP_POLLING)
    response = render(request, "notices/_unread_count.html", {"count": selectors.unread_count(request.user)})
    response["Cache-Control"] = "no-store"
    return response


def _back(request: HttpRequest) -> str:
    """Back to the list as it was shown (only ever our own list's query: no open redirect)."""
    page = request.POST.get("page", "")
    unread = request.POST.get("unread") == "1"
    query = "&".join(filter(None, ["unread=1" if unread else "", f"page={page}" if page.isdigit() else ""]))
    return f"{_list_url()}?{query}" if query else _list_url()


def _list_url() -> str:
    return reverse("notification-list")


@never_cache
def extend_link(request: HttpRequest, secret: str) -> HttpResponse:
    """GET: what the link would do, and a button; POST: do it. Used or ended links answer 410."""
    try:
        if request.method == "POST":
            stack = extend_link_use(secret=secret)
            return _page(request, {"done": True, "stack": stack, "ends": stack.expires_at}, status=200)
        link = extend_link_find(secret)
    except LinkGone as exc:
        return _page(request, {"gone": exc.detail}, status=exc.status)
    except errors.NotFound:
        return _page(request, {"gone": "no such link: it may have been mistyped"}, status=404)
    except errors.PortalError as exc:
        # Refused by the lifecycle (the stack's longest life reached, a delete under way...): the link stays unused.
        link = extend_link_find(secret)
        return _page(request, _offer(link, refusal=exc.detail), status=exc.status)
    return _page(request, _offer(link), status=200)


def _offer(link: Any, *, refusal: str = "") -> dict[str, Any]:
    stack = link.stack
    context: dict[str, Any] = {"link": link, "stack": stack, "ends": stack.expires_at, "refusal": refusal}
    if stack.status not in DELETABLE_STATUSES:
        context["refusal"] = (
            refusal or f"This stack is {stack.get_status_display().lower()}: its lease cannot be changed."
        )
        return context
    until = extendable_until(stack)
    if until <= stack.expires_at and not refusal:
        context["refusal"] = (
            f"This stack's lease cannot be extended: project {stack.project.name} lets a stack live only until "
            "the moment below."
        )
        context["latest"] = latest_end(stack)
    context["until"] = until
    context["now"] = timezone.now()
    return context


def _page(request: HttpRequest, context: dict[str, Any], *, status: int) -> HttpResponse:
    response = render(request, "notices/extend_link.html", context, status=status)
    response["Referrer-Policy"] = "no-referrer"  # the address holds the secret
    response["X-Robots-Tag"] = "noindex"
    return response
