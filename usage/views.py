"""The usage page of a project: cost per day as a chart, the same numbers as a table, a CSV download.

Everyone in the project sees it; to anyone else the project does not exist (404). A period the page
cannot read is said next to its field, and the page shows this month so far instead.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import urlencode

from catalog.paging import page_of
from portal import errors
from portal.models import Project
from usage.periods import usage_period
from usage.pricing import current_prices
from usage.selectors import chart_data, project_usage_records, usage_totals

ROWS_PER_PAGE = 100


@login_required
def project_usage(request: HttpRequest, pk: int) -> HttpResponse:
    project = Project.objects.get_visible(request.user, pk=pk)  # outsiders: 404
    asked = {"from": request.GET.get("from", ""), "to": request.GET.get("to", "")}
    problems: dict[str, list[str]] = {}
    try:
        period = usage_period(start_text=asked["from"] or None, end_text=asked["to"] or None)
        records = project_usage_records(project=project, period=period)
    except errors.Invalid as exc:
        problems = exc.fields or {"from": [exc.detail]}
        period = usage_period(start_text=None, end_text=None)
        records = project_usage_records(project=project, period=period)
    span = {"from": period.start.isoformat(), "to": period.end.isoformat()}
    context = {
        "project": project,
        "period": period,
        "asked": asked if problems else span,
        "problems": problems,
        "prices": current_prices(),
        "pages": page_of(request, records, per_page=ROWS_PER_PAGE, label="Usage pages", fragment="usage-table"),
        "totals": usage_totals(records),
        "chart": chart_data(records, period, currency=settings.CURRENCY),
        "csv_url": f"{reverse('api:project-usage', args=[project.pk])}?{urlencode({'format': 'csv', **span})}",
    }
    return render(request, "usage/project_usage.html", context)
