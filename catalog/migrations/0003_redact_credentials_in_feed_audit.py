"""Audit lines written before feed URLs were redacted may hold the credentials of a feed URL
(``https://user:pass@host/…``) in their detail and target: redact them in place."""

from django.db import migrations

from catalog.redaction import redact_url, redact_urls_in


def redact_feed_audit(apps, schema_editor):
    AuditEvent = apps.get_model("portal", "AuditEvent")
    for event in AuditEvent.objects.filter(action__startswith="feed.").iterator():
        detail = dict(event.detail) if isinstance(event.detail, dict) else event.detail
        if isinstance(detail, dict) and isinstance(detail.get("url"), str):
            detail["url"] = redact_url(detail["url"])
        target = redact_urls_in(event.target)
        if (detail, target) != (event.detail, event.target):
            AuditEvent.objects.filter(pk=event.pk).update(detail=detail, target=target)


class Migration(migrations.Migration):
    dependencies = [
        ("catalog", "0002_cached_image_keyed_by_content_and_format"),
        ("portal", "0001_initial"),
    ]

    operations = [
        migrations.RunPython(redact_feed_audit, migrations.RunPython.noop),
    ]
