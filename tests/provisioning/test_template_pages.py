"""Template pages as people use them: list with a diagram, write with errors by path, launch in a click."""

from __future__ import annotations

import pytest
from django.urls import reverse

from provisioning.models import Stack, StackTemplate
from provisioning.services import templates

CLASSIC = (templates.SHIPPED_TEMPLATES / "classic-three-tier.yaml").read_text()


@pytest.fixture
def signed_in(client, member):
    client.force_login(member)
    return client


def test_the_list_shows_shared_and_own_templates_with_their_diagram(
    signed_in, operator, project, other_project, outsider
):
    templates.template_create(user=operator, project=None, name="classic-three-tier", source=CLASSIC)
    templates.template_create(user=outsider, project=other_project, name="theirs", source=CLASSIC)
    page = signed_in.get(reverse("template-list")).content.decode()
    assert "classic-three-tier" in page
    assert "theirs" not in page
    assert page.count('<svg class="diagram"') == 1
    for label in ("db", "app", "web · :80"):
        assert f">{label}</text>" in page


def test_a_bad_template_is_shown_again_with_the_path_of_the_mistake(signed_in, project):
    response = signed_in.post(
        reverse("template-create"),
        {"name": "mine", "project": project.pk, "source": "tiers: [{name: web, appliance: x, count: 99}]"},
    )
    assert response.status_code == 200
    assert "tiers[0].count: a whole number from 1 to 10" in response.content.decode()
    assert not StackTemplate.objects.exists()


def test_a_member_writes_edits_and_removes_a_project_template(signed_in, project, demo_catalog):
    response = signed_in.post(reverse("template-create"), {"name": "mine", "project": project.pk, "source": CLASSIC})
    assert response.status_code == 302
    template = StackTemplate.objects.get(name="mine")
    assert template.project == project
    edited = signed_in.post(
        reverse("template-edit", args=[template.pk]),
        {"name": "mine", "source": "tiers: [{name: a, appliance: demo-web}]"},
    )
    assert edited.status_code == 302
    template.refresh_from_db()
    assert template.document["tiers"][0]["name"] == "a"
    assert template.project == project  # the project field cannot be changed on edit
    assert signed_in.post(reverse("template-delete", args=[template.pk])).status_code == 302
    assert not StackTemplate.objects.exists()


def test_a_member_cannot_write_a_shared_template(signed_in):
    response = signed_in.post(reverse("template-create"), {"name": "shared", "source": CLASSIC})
    assert response.status_code == 200
    assert "Only operators may write shared templates: choose one of your projects." in response.content.decode()
    assert not StackTemplate.objects.exists()


def test_another_projects_template_pages_are_not_found(signed_in, outsider, other_project):
    theirs = templates.template_create(user=outsider, project=other_project, name="theirs", source=CLASSIC)
    for name in ("template-launch", "template-edit"):
        assert signed_in.get(reverse(name, args=[theirs.pk])).status_code == 404
    assert signed_in.post(reverse("template-delete", args=[theirs.pk])).status_code == 404
    assert StackTemplate.objects.filter(pk=theirs.pk).exists()


def test_launching_from_the_page_builds_the_stack_and_its_page_shows_the_tiers(
    signed_in, operator, project, test_host, demo_catalog, django_capture_on_commit_callbacks
):
    template = templates.template_create(user=operator, project=None, name="classic-three-tier", source=CLASSIC)
    page = signed_in.get(reverse("template-launch", args=[template.pk])).content.decode()
    assert "Launch classic-three-tier" in page
    refused = signed_in.post(
        reverse("template-launch", args=[template.pk]),
        {"name": "Bad Name", "project": project.pk, "lease_seconds": 3600},
    )
    assert refused.status_code == 200
    assert not Stack.objects.exists()

    with django_capture_on_commit_callbacks(execute=True):
        response = signed_in.post(
            reverse("template-launch", args=[template.pk]),
            {"name": "shop", "project": project.pk, "lease_seconds": 3600},
        )
    stack = Stack.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("stack-detail", args=[stack.pk])
    detail = signed_in.get(response["Location"]).content.decode()
    assert "Private network 10.240.0.0/24" in detail
    for name, address in (("shop-db", "10.240.0.10"), ("shop-app", "10.240.0.11"), ("shop-web", "10.240.0.12")):
        assert name in detail
        assert address in detail
    assert '<svg class="diagram"' in detail


def test_the_list_comes_a_page_at_a_time(signed_in, member, project, operator, django_assert_max_num_queries):
    from provisioning.template_views import TEMPLATES_PER_PAGE

    total = TEMPLATES_PER_PAGE + 3
    for number in range(total):
        templates.template_create(
            user=member, project=project, name=f"t{number:03}", source="tiers: [{name: web, appliance: a}]"
        )
    url = reverse("template-list")
    first = signed_in.get(url).content.decode()
    assert first.count('<svg class="diagram"') == TEMPLATES_PER_PAGE
    assert "Page 1 of 2" in first
    assert 'href="?page=2"' in first
    second = signed_in.get(url, {"page": "2"}).content.decode()
    assert second.count('<svg class="diagram"') == 3
    assert "t000" not in second
    assert f"t{total - 1:03}" in second
    # Whatever the address says, a page is shown: a number past the end is the last, no number the first.
    assert signed_in.get(url, {"page": "999"}).content.decode().count('<svg class="diagram"') == 3
    assert signed_in.get(url, {"page": "x"}).content.decode().count('<svg class="diagram"') == TEMPLATES_PER_PAGE
    # A page costs the same queries however many templates there are.
    with django_assert_max_num_queries(12):
        signed_in.get(url)


def test_a_template_saved_before_todays_limits_is_shown_with_a_note_not_an_error(signed_in, member, project):
    template = templates.template_create(
        user=member, project=project, name="old", source="tiers: [{name: a, appliance: b}]"
    )
    # As an earlier version stored it: more settings than a tier may now have.
    template.document["tiers"][0]["settings"] = {f"s{number}": "x" for number in range(100)}
    template.save(update_fields=["document"])
    for page in (reverse("template-list"), reverse("template-launch", args=[template.pk])):
        response = signed_in.get(page)
        assert response.status_code == 200, page
        assert "no longer passes them" in response.content.decode()
