"""The admin writes only through services: owned state is read-only, memberships and stacks keep their rules."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.test import Client, RequestFactory

from catalog.models import Appliance, ApplianceVersion, CachedImage, ImageDelivery
from portal.models import ApiToken, AuditEvent, Membership, Role
from provisioning.models import HostImage, Instance, PublishedPort, Stack, StackEvent, StackNetwork, Status
from provisioning.services.launch import stack_launch

# State that only services may write. For each: may the admin add, change or delete rows itself?
OWNED_BY_SERVICES = {
    Stack,
    Instance,
    PublishedPort,
    HostImage,
    StackEvent,
    AuditEvent,
    CachedImage,
    ImageDelivery,
    Appliance,
    ApplianceVersion,
    StackNetwork,
}


@pytest.fixture
def operator_client(operator):
    client = Client()
    client.force_login(operator)
    return client


@pytest.fixture
def stack(member, project, test_host, ready_version, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        return stack_launch(user=member, project=project, name="kept", appliance_version=ready_version)


def _url(model, view: str, *args) -> str:
    from django.urls import reverse

    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def test_every_model_admin_leaves_owned_state_to_the_services(operator):
    request = RequestFactory().get("/admin/")
    request.user = operator
    registered = {model: model_admin for model, model_admin in admin.site._registry.items()}
    assert set(registered) | {StackEvent, StackNetwork} >= OWNED_BY_SERVICES
    for model, model_admin in registered.items():
        if model in OWNED_BY_SERVICES:
            assert not model_admin.has_add_permission(request), model
            assert not model_admin.has_delete_permission(request), model
            if model is not AuditEvent:  # audit rows show as a read-only form already
                assert not model_admin.has_change_permission(request), model
            assert "delete_selected" not in model_admin.get_actions(request), model
        for inline in model_admin.get_inline_instances(request):
            if inline.model in OWNED_BY_SERVICES | {Membership}:
                assert not inline.has_add_permission(request, None), (model, inline.model)
                assert not inline.has_delete_permission(request, None), (model, inline.model)
                assert set(inline.get_fields(request)) <= set(inline.get_readonly_fields(request)), inline.model


def test_stack_delete_through_django_is_refused_and_the_vm_keeps_running(operator_client, stack):
    assert operator_client.post(_url(Stack, "delete", stack.pk), {"post": "yes"}).status_code == 403
    response = operator_client.post(
        _url(Stack, "changelist"), {"action": "delete_selected", "_selected_action": [stack.pk], "post": "yes"}
    )
    assert response.status_code == 302  # back to the list: Django knows no such action here
    stack.refresh_from_db()
    assert stack.status == Status.RUNNING


def test_stack_destroy_action_goes_through_the_service(operator_client, operator, stack):
    response = operator_client.post(_url(Stack, "changelist"), {"action": "destroy", "_selected_action": [stack.pk]})
    assert response.status_code == 302
    stack.refresh_from_db()
    assert stack.status == Status.DELETING
    assert stack.status_reason == "deleted by operator"
    assert AuditEvent.objects.filter(action="stack.destroy", actor=operator).count() == 1


@pytest.mark.parametrize("model", [Instance, PublishedPort])
def test_instances_and_ports_cannot_be_changed_or_deleted(operator_client, stack, model):
    row = model.objects.first()
    assert operator_client.get(_url(model, "add")).status_code == 403
    assert operator_client.post(_url(model, "delete", row.pk), {"post": "yes"}).status_code == 403
    assert operator_client.post(_url(model, "change", row.pk), {}).status_code == 403
    assert model.objects.filter(pk=row.pk).exists()


def test_adding_a_member_in_the_admin_is_audited(operator_client, operator, project, owner):
    from tests.factories import UserFactory

    newcomer = UserFactory(username="nina")
    response = operator_client.post(
        _url(Membership, "add"), {"project": project.pk, "user": newcomer.pk, "role": Role.VIEWER}
    )
    assert response.status_code == 302, response.content
    assert Membership.objects.get(user=newcomer).role == Role.VIEWER
    assert AuditEvent.objects.filter(action="membership.set", actor=operator).count() == 1


def test_the_last_owner_cannot_be_demoted_in_the_admin(operator_client, project, owner):
    membership = Membership.objects.get(user=owner)
    response = operator_client.post(
        _url(Membership, "change", membership.pk), {"project": project.pk, "user": owner.pk, "role": Role.MEMBER}
    )
    assert response.status_code == 200
    assert "must keep at least one owner" in response.content.decode()
    membership.refresh_from_db()
    assert membership.role == Role.OWNER


def test_the_last_owner_cannot_be_removed_in_the_admin(operator_client, project, owner, member):
    owner_row, member_row = Membership.objects.get(user=owner), Membership.objects.get(user=member)
    assert operator_client.post(_url(Membership, "delete", owner_row.pk), {"post": "yes"}).status_code == 403
    response = operator_client.post(
        _url(Membership, "changelist"),
        {"action": "remove", "_selected_action": [owner_row.pk, member_row.pk]},
        follow=True,
    )
    text = response.content.decode()
    assert "must keep at least one owner" in text
    assert list(Membership.objects.values_list("user__username", flat=True)) == [owner.username]
    assert AuditEvent.objects.filter(action="membership.remove").count() == 1


def test_a_token_revoked_in_the_admin_is_audited(operator_client, operator, member):
    from portal.tokens import token_issue

    token, _secret = token_issue(user=member, name="laptop")
    response = operator_client.post(_url(ApiToken, "delete", token.pk), {"post": "yes"})
    assert response.status_code == 302
    assert not ApiToken.objects.exists()
    assert AuditEvent.objects.filter(action="token.revoke", actor=operator).count() == 1


def test_a_template_added_in_the_admin_is_validated_and_audited(operator_client, operator):
    from provisioning.models import StackTemplate

    bad = {"name": "broken", "description": "", "source": "tiers: [{name: web}]"}
    response = operator_client.post(_url(StackTemplate, "add"), bad)
    assert response.status_code == 200
    assert "tiers[0].appliance: an appliance identifier" in response.content.decode()
    assert not StackTemplate.objects.exists()

    good = {**bad, "source": "tiers: [{name: web, appliance: demo-web}]"}
    assert operator_client.post(_url(StackTemplate, "add"), good).status_code == 302
    template = StackTemplate.objects.get()
    assert (template.project, template.document["tiers"][0]["appliance"]) == (None, "demo-web")
    assert AuditEvent.objects.filter(action="template.create", actor=operator).count() == 1
    assert operator_client.post(_url(StackTemplate, "delete", template.pk), {"post": "yes"}).status_code == 302
    assert AuditEvent.objects.filter(action="template.delete", actor=operator).count() == 1


def test_operators_shelve_unshelve_and_shut_down_from_the_admin_through_the_services(
    operator_client, operator, stack, django_capture_on_commit_callbacks
):
    def act(action: str):
        with django_capture_on_commit_callbacks(execute=True):
            return operator_client.post(_url(Stack, "changelist"), {"action": action, "_selected_action": [stack.pk]})

    assert act("shelve").status_code == 302
    stack.refresh_from_db()
    assert stack.status == Status.SHELVED, stack.status_reason
    # A refusal is said, not raised: a shelved stack cannot be shut down.
    response = operator_client.post(
        _url(Stack, "changelist"), {"action": "shut_down", "_selected_action": [stack.pk]}, follow=True
    )
    assert "cannot shutdown a stack that is shelved" in response.content.decode()
    assert act("unshelve").status_code == 302
    stack.refresh_from_db()
    assert stack.status == Status.RUNNING, stack.status_reason
    assert act("shut_down").status_code == 302
    stack.refresh_from_db()
    assert stack.status == Status.STOPPED, stack.status_reason
    assert {"stack.shelve", "stack.unshelve", "stack.shutdown"} <= set(
        AuditEvent.objects.filter(actor=operator).values_list("action", flat=True)
    )
