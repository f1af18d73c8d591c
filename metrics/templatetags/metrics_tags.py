"""What guests and hosts used, on other apps' pages: ``{% load metrics_tags %}``, then

- ``{% tier_usage stack as tiers %}``: per tier, its peaks over the last day and a flavor suggestion
  (the stack page);
- ``{% host_load rows as loads %}``: each host's CPU and memory use over the last hours, with its
  chart data (the Hosts page; ``rows`` are the page's);
- ``{{ value|byte_rate }}``: ``1.2 MB/s``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django import template
from django.template.defaultfilters import filesizeformat
from django.utils import timezone

from metrics import page_data
from metrics.suggest import Suggestion, flavors_for, suggest_flavor
from provisioning.models import Stack

register = template.Library()


@dataclass(frozen=True)
class TierAdvice:
    use: page_data.TierUse
    suggestion: Suggestion


@register.simple_tag
def tier_usage(stack: Stack) -> list[TierAdvice]:
    uses = page_data.tier_uses(stack=stack, since=timezone.now() - page_data.TIER_LOOKBACK)
    if not uses:
        return []
    flavors = flavors_for(stack)
    return [TierAdvice(use=use, suggestion=suggest_flavor(use=use, flavors=flavors)) for use in uses]


@dataclass(frozen=True)
class HostLoads:
    hosts: list[page_data.HostLoad]
    lookback_seconds: float
    # What the charts draw, keyed by each chart's canvas id (a data island for usage_charts.js).
    charts: dict[str, Any]


@register.simple_tag
def host_load(rows: Sequence[dict[str, Any]]) -> HostLoads:
    hosts = [row["size"].host for row in rows]
    loads = page_data.host_loads(hosts=hosts, since=timezone.now() - page_data.HOST_LOOKBACK)
    charts = {f"host-load-{load.host.pk}": load.chart for load in loads if load.samples}
    return HostLoads(hosts=loads, lookback_seconds=page_data.HOST_LOOKBACK.total_seconds(), charts=charts)


@register.filter
def byte_rate(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{filesizeformat(value)}/s"
