"""An instance's page: what it used over a chosen window, as charts with their figures written beside.

Everyone in the instance's project sees it, operators see every one; to anyone else it does not exist
(404). Thin: ``metrics.page_data`` reads the samples.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from metrics import page_data


@login_required
def instance_detail(request: HttpRequest, pk: int) -> HttpResponse:
    instance = page_data.instance_visible_to(request.user, instance_id=pk)  # others' ids: 404
    window = page_data.window_key(request.GET.get("window"))
    seconds, _words = page_data.WINDOWS[window]
    now = timezone.now()
    samples = page_data.instance_series(instance=instance, since=now - timedelta(seconds=seconds))
    # With nothing in the window: when the last sample was, or when the first is due.
    last_at = None if samples else page_data.last_sample_at(instance=instance)
    context = {
        "instance": instance,
        "stack": instance.stack,
        "window": window,
        "window_seconds": seconds,
        "windows": [(key, words) for key, (_s, words) in page_data.WINDOWS.items()],
        "samples": len(samples),
        "summary": page_data.instance_summary(samples=samples),
        "charts": page_data.instance_charts(samples=samples) if samples else None,
        "last_at": last_at,
        "sample_seconds": settings.METRICS_SAMPLE_SECONDS,
        "first_expected_at": now + timedelta(seconds=settings.METRICS_SAMPLE_SECONDS),
    }
    return render(request, "metrics/instance_detail.html", context)
