"""Every table of the member's and the operator's pages fits phones and desktops whole: no column cut off
or scrolled away inside its box, and on a phone each row a card whose lines carry their column's heading.

Uses the browser fixtures of ``tests/browser`` (Debian's Chromium, a forked daphne).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from provisioning.models import Instance
from tests.browser_pages import inspect_page, new_page, sign_in
from usage.sampler import usage_sample

pytestmark = [pytest.mark.xdist_group("browser-tables")]

# What a person can see of each table on the page: whether a scroller hides part of it, its column
# headings, and for each row's cells the heading drawn before it (a card's label) and its width.
_TABLES = """() => [...document.querySelectorAll("main table")].map((table) => {
  const scroller = table.closest(".table-responsive");
  const head = table.tHead;
  const headings = head ? [...head.querySelectorAll("th")].map((cell) => cell.textContent.trim()) : [];
  const rows = [...table.tBodies].flatMap((body) => [...body.rows]).map((row) => [...row.cells].map((cell) => {
    const before = getComputedStyle(cell, "::before").content;
    return {
      title: cell.matches("th[scope=row]"),
      label: cell.dataset.label || null,
      drawn: before.startsWith('"') ? JSON.parse(before) : null,
      width: cell.getBoundingClientRect().width,
      colspan: cell.colSpan,
    };
  }));
  return {
    id: table.closest("[id]")?.id || "",
    cards: table.classList.contains("table-cards"),
    cut: scroller ? scroller.scrollWidth - scroller.clientWidth : 0,
    headHeight: head ? head.getBoundingClientRect().height : 0,
    headings,
    rows,
  };
})"""


def assert_tables_whole(page, width: str) -> int:
    """Every table on the page shown whole; on a phone as cards with a heading on each line. How many."""
    tables = page.evaluate(_TABLES)
    for table in tables:
        where = f"{page.url} table in #{table['id']}"
        assert table["cards"], f"{where}: not laid out as cards on small screens"
        assert table["cut"] <= 1, f"{where}: {table['cut']} px of it scrolled out of sight"
        for cells in table["rows"]:
            if len(cells) == 1 and cells[0]["colspan"] > 1:
                continue  # "nothing here yet"
            assert len(cells) == len(table["headings"]), f"{where}: a row without a cell per column"
            assert all(cell["width"] > 0 for cell in cells), f"{where}: a cell not drawn"
            labels = [cell["label"] for cell in cells if not cell["title"]]
            titled = [heading for heading, cell in zip(table["headings"], cells, strict=True) if not cell["title"]]
            assert labels == titled, f"{where}: cells labelled {labels}, columns {titled}"
            drawn = [cell["drawn"] for cell in cells if not cell["title"]]
            if width == "phone":
                assert table["headHeight"] <= 1, f"{where}: the heading row still shown above the cards"
                assert drawn == titled, f"{where}: a card's lines read {drawn}"
            else:
                assert table["headHeight"] > 1, f"{where}: no heading row on a desktop"
                assert drawn == [None] * len(drawn), f"{where}: card labels on a desktop"
    return len(tables)


@pytest.fixture
def furnished(shop, project):
    """The classic three tiers running, a host with a long URI, and a day of usage."""
    Instance.objects.filter(stack=shop).update(address="fd00:1234:5678:9abc:def0:1234:5678:9abc")
    usage_sample(now=timezone.now() + timedelta(hours=1))
    return shop


@pytest.mark.parametrize("width", ["phone", "desktop"])
def test_every_table_fits_whole(chromium, live_portal, furnished, member, operator, project, width):
    page = new_page(chromium, width)
    sign_in(page, live_portal, member)
    pages = {
        "dashboard": ("/", 1),
        "stacks": ("/stacks/", 1),
        "stack": (f"/stacks/{furnished.pk}/", 3),  # a table per tier
        "usage": (f"/projects/{project.pk}/usage/", 1),
        "members": (f"/projects/{project.pk}/members/", 0),
        "tokens": ("/account/tokens/", 0),
        "notifications": ("/notifications/", 0),
        "exports": (f"/stacks/{furnished.pk}/exports/", 0),
    }
    for name, (path, tables) in pages.items():
        page.goto(f"{live_portal}{path}")
        inspect_page(page, f"tables-{name}", width)
        assert assert_tables_whole(page, width) >= tables, name

    admin = new_page(chromium, width)
    sign_in(admin, live_portal, operator)
    inspect_page(admin, "tables-dashboard-operator", width)
    assert assert_tables_whole(admin, width) >= 1
