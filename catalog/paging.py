"""Long lists on the catalog's pages, a page at a time: a feed alone may list hundreds of versions.

``page_of`` never fails on what a URL says (a page number past the end shows the last page, one
that is no number the first), and ``PageLinks`` keeps the page's other query parameters (filters,
the other list's page) in its links.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.core.paginator import Page, Paginator
from django.http import HttpRequest


@dataclass(frozen=True)
class PageLinks:
    page: Page
    parameter: str
    previous_query: str  # the query string of the page before, "" when there is none
    next_query: str
    label: str  # what the pager is called for screen readers ("Appliance pages")
    fragment: str = ""  # where on the page its links land ("feeds": the list's heading)


def page_of(
    request: HttpRequest, rows: Any, *, per_page: int, parameter: str = "page", label: str, fragment: str = ""
) -> PageLinks:
    page = Paginator(rows, per_page).get_page(request.GET.get(parameter))

    def query(number: int) -> str:
        params = request.GET.copy()
        params[parameter] = str(number)
        return params.urlencode()

    return PageLinks(
        page=page,
        parameter=parameter,
        previous_query=query(page.previous_page_number()) if page.has_previous() else "",
        next_query=query(page.next_page_number()) if page.has_next() else "",
        label=label,
        fragment=fragment,
    )
