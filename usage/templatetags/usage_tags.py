"""Costs on other apps' pages: ``{% load usage_tags %}``, then

- ``{% stack_cost stack %}``: "Cost so far: 0.42 EUR" (what the stack's records add up to);
- ``{% launch_cost vcpus=2 memory_mib=2048 disk_gib=10 lease_seconds=14400 %}``: "About 0.03 EUR per hour
  while running, 0.12 EUR for the whole lease" (an estimate before launching);
- ``{% launch_prices_data %}``: the prices as a JSON data island (``#launch-prices``), for a script that
  estimates as the chosen size and lease change (what ``usage.pricing.launch_cost`` computes).
"""

from __future__ import annotations

from django import template
from django.utils.html import json_script

from provisioning.models import Stack
from usage import pricing
from usage.selectors import stack_cost_so_far

register = template.Library()


@register.simple_tag
def stack_cost(stack: Stack) -> str:
    return f"Cost so far: {pricing.money_text(stack_cost_so_far(stack))}"


@register.simple_tag
def launch_cost(*, vcpus: int, memory_mib: int, disk_gib: int, lease_seconds: int) -> str:
    per_hour, for_lease = pricing.launch_cost(
        vcpus=int(vcpus), memory_mib=int(memory_mib), disk_gib=int(disk_gib), lease_seconds=int(lease_seconds)
    )
    currency = pricing.current_prices().currency
    return f"About {per_hour} {currency} per hour while running, {for_lease} {currency} for the whole lease"


@register.simple_tag
def launch_prices_data(element_id: str = "launch-prices") -> str:
    prices = pricing.current_prices()
    data = {
        "currency": prices.currency,
        "vcpu_hour": str(prices.vcpu_hour),
        "memory_gib_hour": str(prices.memory_gib_hour),
        "disk_gib_hour": str(prices.disk_gib_hour),
    }
    return json_script(data, element_id)
