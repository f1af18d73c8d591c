"""django-q2 entry points for usage: the sampler, run every minute by the ``sample-usage`` schedule."""

from __future__ import annotations

from usage.sampler import usage_sample


def sample_usage() -> int:
    return usage_sample()
