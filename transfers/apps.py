from django.apps import AppConfig


class TransfersConfig(AppConfig):
    """Images moving in and out of the portal: uploads (P2V), exports (V2P, OVA) and captured stacks."""

    name = "transfers"
