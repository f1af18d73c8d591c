"""django-q2 entry points for the notices (all on the control cluster): thin calls into the services."""

from __future__ import annotations

from notices.lease_warnings import lease_warnings_send
from notices.mail import notifications_mail
from notices.webhooks import webhook_deliveries_send


def send_lease_warnings() -> int:
    return lease_warnings_send()


def send_webhook_deliveries() -> int:
    return webhook_deliveries_send()


def mail_notifications(notification_ids: list[int]) -> int:
    return notifications_mail(notification_ids)
