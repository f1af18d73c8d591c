"""One clock: every page a member or an operator can open, and every admin list and change page, writes
moments and durations only as ``portal.moments`` does (``2026-12-05 04:39 IST``, ``6 days 23 hours``),
in the reader's time zone.

The pages are found by walking the links from every page without arguments and from a world with a
stack that has lived (events with moments and actors, a snapshot, a renewed lease, notifications, a
token, usage); each route is read once per reader and zone. Machine-readable places (``datetime``
attributes, links, form values, scripts, literal ``<code>``) are left out: there ISO 8601 is right.
"""

from __future__ import annotations

import re
from collections import deque
from datetime import timedelta
from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest
from django.contrib import admin
from django.test import Client, RequestFactory
from django.urls import Resolver404, resolve, reverse
from django.utils import timezone

from notices.extend_links import extend_link_issue
from notices.lease_warnings import lease_warnings_send
from notices.models import Event, LeaseWarning
from notices.services import notify_stack_event
from portal.models import Project
from portal.tokens import token_issue
from provisioning.models import Stack, StackSnapshot
from provisioning.services import lifecycle, snapshots
from tests.factories import FeedFactory
from tests.provisioning.conftest import classic, demo_catalog, shop  # noqa: F401 - the shop and what it needs
from usage.sampler import usage_sample

ZONES = {"UTC": "UTC", "Asia%2FKolkata": "IST"}  # the cookie as the browser writes it, the zone's abbreviation
# Elements whose text is for machines, or shown literally as machines read it.
MACHINE_TEXT = {"script", "style", "template", "code"}
# Human-readable attributes; the rest (datetime, href, value, data-*) are for machines.
READ_ATTRIBUTES = {"title", "aria-label", "alt", "placeholder", "aria-description"}
# Not pages: downloads and feeds, the unread badge's fragment, and the way out.
NOT_PAGES = {"logout", "export-download", "vmcast-feed", "vmcast-image", "notification-badge"}
ROWS_PER_MODEL = 40  # the admin's change pages read per model: every row of this small world
MONTHS = "January|February|March|April|May|June|July|August|September|October|November|December"

# (what is wrong, pattern) for every way of writing a moment or a duration other than the formatter's.
WRONG_WAYS = [
    ("a 12-hour clock", re.compile(r"\b[ap]\.m\.", re.IGNORECASE)),
    ("an abbreviated month", re.compile(r"\b(Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)\.")),
    ("a month's name", re.compile(rf"\b({MONTHS})\b\s*\d")),
    ("a clock with seconds", re.compile(r"(?<![\w:.])\d{1,2}:\d{2}:\d{2}(?![\w:])")),
    ("an ISO 8601 moment in text", re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")),
    ("Django's timesince", re.compile(r"\d+\xa0(year|month|week|day|hour|minute)s?")),
    ("hours and minutes abbreviated", re.compile(r"\b\d+\s*(h|hrs?|min|mins)\b(?!-)")),
    ("a duration in seconds over a minute", re.compile(r"\b([6-9]\d|\d{3,})\s+seconds?\b")),
    ("a duration in minutes over an hour", re.compile(r"\b([6-9]\d|\d{3,})\s+minutes?\b")),
    ("a duration in hours over a day", re.compile(r"\b(2[4-9]|[3-9]\d|\d{3,})\s+hours?\b")),
]
CLOCK = re.compile(r"(?<![\w:.])\d{1,2}:\d{2}(?![\w:])")
# MAC addresses and IPv6 look like clocks; they are not moments.
NOT_CLOCKS = re.compile(r"\b([0-9a-f]{2}:){5}[0-9a-f]{2}\b|[0-9a-f:]*::[0-9a-f:]*", re.IGNORECASE)


class ReadableText(HTMLParser):
    """The text a person reads as words: text nodes and human-readable attributes; not scripts or
    styles, nor ``<code>``: literal machine text shown as it is (a webhook's exact body)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.links: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in MACHINE_TEXT:
            self._hidden += 1
        for name, value in attrs:
            if value and name in READ_ATTRIBUTES:
                self.parts.append(value)
            if tag == "a" and name == "href" and value:
                self.links.append(value)

    def handle_endtag(self, tag: str) -> None:
        if tag in MACHINE_TEXT and self._hidden:
            self._hidden -= 1

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.parts.append(data)


def wrong_moments(text: str, zone: str) -> list[str]:
    """Every moment or duration in ``text`` not written the formatter's way in ``zone``."""
    text = NOT_CLOCKS.sub(" ", text)
    found = []
    for what, pattern in WRONG_WAYS:
        found += [f"{what}: {text[max(m.start() - 40, 0) : m.end() + 20]!r}" for m in pattern.finditer(text)]
    for clock in CLOCK.finditer(text):
        before, after = text[max(clock.start() - 11, 0) : clock.start()], text[clock.end() : clock.end() + 4]
        if not (re.fullmatch(r"\d{4}-\d{2}-\d{2} ", before) and after.startswith(f" {zone}")):
            found.append(
                f"a clock not in the formatter's way in {zone}: {text[clock.start() - 30 : clock.end() + 20]!r}"
            )
    return found


def test_the_checks_catch_every_other_way(settings):
    """The checks themselves, on texts written the ways the portal used to write them."""
    bad = [
        "Dec. 4, 2026, 10:12 p.m.",
        "lease renewed until 2026-12-04 23:09:50 UTC",
        "ends 2026-12-05 04:39 UTC",
        "about 165 h 59 min",
        "at most 604799 seconds",
        "6\xa0days, 23\xa0hours",
        "December 4, 2026",
        "2026-12-04T23:09:50+00:00",
        "at 22:09",
        "Longest life: 10080 minutes",
        "within 48 hours",
    ]
    for text in bad:
        assert wrong_moments(text, "IST"), text
    good = "Lease ends 2026-12-05 04:39 IST, in 6 days 23 hours; at most 7 days; 52:54:00:12:34:56; 127.0.0.1:8080"
    assert wrong_moments(good, "IST") == []


@pytest.fixture
def lived_stack(request, member, owner, operator, project, step):
    """The shop after a life: its lease renewed, a snapshot taken and deleted, notices and warnings
    sent (by mail and webhook), an extend link, a token, a feed, a day of usage."""
    stack = request.getfixturevalue("shop")
    step(lambda: lifecycle.stack_renew_lease(user=member, stack=stack, lease_seconds=2 * 3600))
    step(lambda: snapshots.snapshot_create(user=member, stack=stack, name="before-upgrade"))
    stack.refresh_from_db()
    snapshot = StackSnapshot.objects.get(stack=stack)
    step(lambda: snapshots.snapshot_delete(user=owner, stack=stack, snapshot=snapshot))
    stack.refresh_from_db()
    Project.objects.filter(pk=project.pk).update(webhook_url="https://hooks.example/portal")
    stack.project.refresh_from_db()
    notices = notify_stack_event(stack=stack, event=Event.STACK_IDLE, moment=timezone.now() + timedelta(hours=1))
    step(lambda: lease_warnings_send(now=stack.expires_at - timedelta(minutes=30)))
    _link, stack.extend_secret = extend_link_issue(
        notification=notices[0], user=member, stack=stack, lease_end=stack.expires_at
    )
    token_issue(user=member, name="ci")
    FeedFactory(project=project, last_import_at=timezone.now() - timedelta(days=2))
    usage_sample(now=timezone.now() + timedelta(hours=2))
    assert LeaseWarning.objects.filter(stack=stack).exists()
    # Ending soon: the dashboard lists it with the time left.
    Stack.objects.filter(pk=stack.pk).update(expires_at=timezone.now() + timedelta(minutes=40))
    return stack


def start_pages(stack, project) -> list[str]:
    pages = [
        reverse(name)
        for name in (
            "dashboard",
            "catalog",
            "host-overview",
            "stack-list",
            "stack-launch",
            "template-list",
            "template-create",
            "notification-list",
            "account-tokens",
            "upload-new",
        )
    ]
    pages += [reverse(name, args=[stack.pk]) for name in ("stack-detail", "stack-status", "stack-delete")]
    pages += [reverse(name, args=[stack.pk]) for name in ("stack-exports", "stack-capture")]
    pages += [reverse(name, args=[project.pk]) for name in ("project-usage", "project-policy", "project-members")]
    pages.append(reverse("extend-link", args=[stack.extend_secret]))
    return pages


def admin_pages() -> list[str]:
    """Every registered model's list, and the change page of each of its rows (the world's few)."""
    pages = []
    for model, model_admin in admin.site._registry.items():
        opts = model._meta
        pages.append(reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"))
        for row in model_admin.get_queryset(RequestFactory().get("/admin/")).order_by("pk")[:ROWS_PER_MODEL]:
            pages.append(reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[row.pk]))
    return pages


def read_every_page(client: Client, starts: list[str], zone_cookie: str, zone: str) -> tuple[dict[str, list], set]:
    """Walk from ``starts`` along the site's links, one page per route; the wrong moments of each page."""
    client.cookies["tz"] = zone_cookie
    queue, seen_routes, problems, read = deque(starts), set(), {}, set()
    while queue:
        url = queue.popleft()
        path = urlsplit(url).path
        try:
            match = resolve(path)
        except Resolver404:
            continue
        # Each admin row has its own change page (its own fields); elsewhere one page per route will do.
        per_row = path.startswith("/admin/") and path.endswith("/change/")
        route = path if per_row else (match.route, match.url_name, urlsplit(url).query.split("=")[0])
        if route in seen_routes or match.url_name in NOT_PAGES:
            continue
        seen_routes.add(route)
        response = client.get(url)
        if response.status_code != 200 or "html" not in response.get("Content-Type", ""):
            continue
        read.add(match.url_name or match.route)
        page = ReadableText()
        page.feed(response.content.decode())
        wrong = wrong_moments(" ".join(page.parts), zone)
        if wrong:
            problems[url] = wrong
        for link in page.links:
            parts = urlsplit(link)
            if not parts.netloc and parts.path.startswith("/") and not parts.path.startswith("/api/"):
                queue.append(link)
    return problems, read


def report(problems: dict[str, list[str]]) -> str:
    return "\n".join(f"{url}: {wrong}" for url, found in problems.items() for wrong in found)


@pytest.mark.parametrize(("zone_cookie", "zone"), list(ZONES.items()))
def test_members_read_every_moment_one_way(client, member, project, lived_stack, zone_cookie, zone):
    client.force_login(member)
    problems, read = read_every_page(client, start_pages(lived_stack, project), zone_cookie, zone)
    assert not problems, report(problems)
    shown = {"stack-detail", "stack-delete", "notification-list", "project-usage", "account-tokens", "extend-link"}
    assert shown <= read


@pytest.mark.parametrize(("zone_cookie", "zone"), list(ZONES.items()))
def test_operators_read_every_moment_one_way_admin_included(client, operator, project, lived_stack, zone_cookie, zone):
    client.force_login(operator)
    starts = [*start_pages(lived_stack, project), reverse("admin:index"), *admin_pages()]
    problems, read = read_every_page(client, starts, zone_cookie, zone)
    assert not problems, report(problems)
    assert {"host-overview", "stack-detail", "portal_auditevent_change", "provisioning_stack_change"} <= read
    lists = {f"{m._meta.app_label}_{m._meta.model_name}_changelist" for m in admin.site._registry}
    assert lists <= read
