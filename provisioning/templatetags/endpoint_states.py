"""``{{ stack|endpoint_states }}``: a stack's endpoints with their readiness, for the stack page."""

from __future__ import annotations

from django import template

from provisioning.endpoint_states import EndpointState, stack_endpoint_states
from provisioning.models import Stack

register = template.Library()


@register.filter
def endpoint_states(stack: Stack) -> list[EndpointState]:
    return stack_endpoint_states(stack)
