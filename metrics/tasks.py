"""django-q2 entry points for the metrics: the sampler, run by the ``sample-metrics`` schedule."""

from __future__ import annotations

from metrics.sampler import take_samples


def sample_metrics() -> int:
    return take_samples()
