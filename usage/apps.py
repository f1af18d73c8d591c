from django.apps import AppConfig


class UsageConfig(AppConfig):
    """What each stack held over time and what it cost: the sampler, the records, the reports."""

    name = "usage"
