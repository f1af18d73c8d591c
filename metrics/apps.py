from django.apps import AppConfig


class MetricsConfig(AppConfig):
    """What guests and hosts use, read through libvirt: the sampler, its short history, /metrics."""

    name = "metrics"
