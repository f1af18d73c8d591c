"""The notices' schedules name real tasks, the tasks run the services, and the admin only looks."""

from __future__ import annotations

from datetime import timedelta
from importlib import import_module

import pytest
from django.contrib import admin
from django.test import RequestFactory

from notices import tasks
from notices.models import ExtendLink, LeaseWarning, Notification, WebhookAttempt, WebhookDelivery
from notices.services import notify_stack_event
from tests.migration_steps import run_data_migration


def test_the_migration_installs_both_schedules_and_each_names_a_real_task(db):
    from django_q.models import Schedule

    Schedule.objects.filter(name__in=["send-lease-warnings", "send-webhooks"]).delete()
    run_data_migration("notices.migrations.0002_schedules")
    schedules = dict(
        Schedule.objects.filter(name__in=["send-lease-warnings", "send-webhooks"]).values_list("name", "func")
    )
    assert set(schedules) == {"send-lease-warnings", "send-webhooks"}
    for func in schedules.values():
        module, attribute = func.rsplit(".", 1)
        assert callable(getattr(import_module(module), attribute)), func
    assert set(Schedule.objects.filter(name__in=schedules).values_list("minutes", flat=True)) == {1}


def test_the_tasks_call_the_services(people, make_stack, step):
    make_stack(ends_in=timedelta(minutes=5))
    assert step(tasks.send_lease_warnings) == 1
    assert tasks.send_webhook_deliveries() == 0  # the project has no webhook
    ids = list(Notification.objects.values_list("pk", flat=True))
    assert tasks.mail_notifications(ids) == 0  # mailed once already, when the warning was made


@pytest.mark.parametrize("model", [Notification, LeaseWarning, ExtendLink, WebhookDelivery])
def test_operators_may_look_but_not_touch(operator, model):
    request = RequestFactory().get("/admin/")
    request.user = operator
    model_admin = admin.site._registry[model]
    assert model_admin.has_view_permission(request)
    assert not model_admin.has_add_permission(request)
    assert not model_admin.has_change_permission(request)
    assert not model_admin.has_delete_permission(request)


def test_a_delivery_shows_its_body_and_tries_to_operators(client, operator, project, make_stack, step):
    from tests.notices.conftest import SECRET

    project.webhook_url = "http://127.0.0.1:9/hook"
    project.webhook_secret = SECRET
    project.save()
    stack = make_stack("shown")
    step(lambda: notify_stack_event(stack=stack, event="lease.ended"))
    delivery = WebhookDelivery.objects.get()
    WebhookAttempt.objects.create(delivery=delivery, number=1, started_at=delivery.created_at, error="refused")
    client.force_login(operator)
    page = client.get(f"/admin/notices/webhookdelivery/{delivery.pk}/change/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "&quot;name&quot;:&quot;shown&quot;" in text  # the exact body, escaped
    assert SECRET not in text
    link_page = client.get("/admin/notices/extendlink/")
    assert link_page.status_code == 200
