"""The template editor as people use it: every problem at once under its field, a starter, a live check."""

from __future__ import annotations

import re

import pytest
from django.test import override_settings
from django.urls import reverse

from provisioning.models import Stack, StackTemplate
from provisioning.services import templates
from provisioning.template_check import check_template
from provisioning.template_views import STARTER
from provisioning.templates import parse_template

# Several problems at once, on the lines a person would look at.
MANY_PROBLEMS = """\
description: shop
tiers:
  - name: web
    appliance: demo-wbe
    count: 99
  - name: Bad_Tier
    appliance: demo-db
"""


@pytest.fixture
def signed_in(client, member):
    client.force_login(member)
    return client


def _under(html: str, field: str) -> str:
    """The error text written under one field of the form."""
    found = re.search(rf'id="id_{field}_error">(.*?)</div>', html, re.S)
    assert found, f"no errors under {field}"
    return found.group(1)


def _summary(html: str) -> str:
    found = re.search(r"<div [^>]*data-error-summary[^>]*>(.*?)</div>", html, re.S)
    assert found, "no error summary"
    return found.group(1)


def test_a_bad_name_does_not_hide_a_broken_document(signed_in, project):
    response = signed_in.post(
        reverse("template-create"), {"name": "Bad Name!", "project": project.pk, "source": "tiers: [\n  {name: web"}
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "lowercase letters" in _under(html, "name")
    assert "Not valid YAML (line 2" in _under(html, "source")
    summary = _summary(html)
    assert "The template was not saved" in summary
    assert 'href="#id_name"' in summary
    assert 'href="#id_source"' in summary
    assert not StackTemplate.objects.exists()


def test_every_problem_of_the_document_is_under_it_with_its_line(signed_in, member, project, demo_catalog):
    templates.template_create(user=member, project=project, name="taken", source="tiers: [{name: a, appliance: b}]")
    response = signed_in.post(
        reverse("template-create"), {"name": "taken", "project": project.pk, "source": MANY_PROBLEMS}
    )
    html = response.content.decode()
    assert "Project alpha already has a template called taken: choose another name." in _under(html, "name")
    source = _under(html, "source")
    # In the order they are written, each with its line.
    assert source.index("Line 5") < source.index("Line 6")
    assert "Line 5, tiers[0].count: a whole number from 1 to 10" in source
    # The catalog is asked about a well-written appliance even while other parts are wrong.
    assert "Line 4, tiers[0].appliance: there is no appliance demo-wbe in the catalog of project alpha" in source
    assert source.index("Line 4") < source.index("Line 5")
    assert "Line 6, tiers[1].name: 1-15 lowercase letters" in source
    assert "Template (YAML or JSON)</a>:" in _summary(html)
    assert "problems, listed under it" in _summary(html)
    assert StackTemplate.objects.count() == 1


def test_an_unknown_appliance_is_named_with_a_suggestion_once_the_document_reads(signed_in, project, demo_catalog):
    source = MANY_PROBLEMS.replace("count: 99", "flavor: huge").replace("Bad_Tier", "db")
    html = signed_in.post(
        reverse("template-create"), {"name": "shop", "project": project.pk, "source": source}
    ).content.decode()
    problems = _under(html, "source")
    assert "Line 4, tiers[0].appliance: there is no appliance demo-wbe in the catalog of project alpha" in problems
    assert "(did you mean demo-web?)" in problems
    assert "Line 5, tiers[0].flavor: project alpha has no flavor huge" in problems
    assert not StackTemplate.objects.exists()


def test_another_projects_appliance_is_unknown_here(signed_in, project, other_project, outsider):
    from tests.factories import ApplianceVersionFactory, FeedFactory

    ApplianceVersionFactory(appliance__feed=FeedFactory(project=other_project), appliance__identifier="secret-app")
    html = signed_in.post(
        reverse("template-create"),
        {"name": "x", "project": project.pk, "source": "tiers: [{name: a, appliance: secret-app}]"},
    ).content.decode()
    problems = _under(html, "source")
    assert "there is no appliance secret-app in the catalog of project alpha" in problems
    assert "did you mean" not in problems


@override_settings(TEMPLATES_PER_PROJECT=1)
def test_a_full_project_is_said_under_the_project_with_the_documents_problems(signed_in, member, project):
    templates.template_create(user=member, project=project, name="one", source="tiers: [{name: a, appliance: b}]")
    html = signed_in.post(
        reverse("template-create"), {"name": "two", "project": project.pk, "source": "tiers: []"}
    ).content.decode()
    assert "Project alpha already keeps 1 templates, the most it may" in _under(html, "project")
    assert "Line 1, tiers: must be a list of at least one tier" in _under(html, "source")


def test_a_viewer_is_told_under_the_project_not_in_a_developer_message(client, viewer, member, project):
    template = templates.template_create(
        user=member, project=project, name="mine", source="tiers: [{name: a, appliance: b}]"
    )
    client.force_login(viewer)
    html = client.post(
        reverse("template-edit", args=[template.pk]), {"name": "mine", "source": "tiers: [{name: z, appliance: b}]"}
    ).content.decode()
    assert "Changing the templates of project alpha needs the member role in it." in _under(html, "project")
    assert "permission" not in html.lower()
    template.refresh_from_db()
    assert template.source == "tiers: [{name: a, appliance: b}]"


def test_new_opens_with_the_starter_which_passes_the_check(signed_in, member, project, demo_catalog):
    page = signed_in.get(reverse("template-create")).content.decode()
    assert "# A stack of three tiers" in page
    source = STARTER.read_text()
    document = parse_template(source)
    assert [tier.name for tier in document.tiers] == ["db", "app", "web"]
    check = check_template(user=member, project=project, name="shop", source=source)
    assert check.problems == {}
    # Comments on almost every line: the starter teaches the format.
    lines = [line for line in source.splitlines() if line.strip()]
    assert sum("#" in line for line in lines) >= len(lines) // 2


def test_the_starter_saved_as_is_launches(
    signed_in, project, test_host, demo_catalog, django_capture_on_commit_callbacks
):
    saved = signed_in.post(
        reverse("template-create"), {"name": "starter", "project": project.pk, "source": STARTER.read_text()}
    )
    assert saved.status_code == 302, saved.content.decode()[:2000]
    template = StackTemplate.objects.get(name="starter")
    with django_capture_on_commit_callbacks(execute=True):
        launched = signed_in.post(
            reverse("template-launch", args=[template.pk]),
            {"name": "shop", "project": project.pk, "lease_seconds": 3600},
        )
    assert launched.status_code == 302
    stack = Stack.objects.get(name="shop")
    assert sorted(stack.instances.values_list("name", flat=True)) == ["shop-app", "shop-db", "shop-web"]


def test_the_live_check_answers_every_problem_in_place_and_saves_nothing(signed_in, project, demo_catalog):
    answer = signed_in.post(
        reverse("template-create"),
        {"name": "Bad Name!", "project": project.pk, "source": MANY_PROBLEMS, "action": "check"},
        headers={"HX-Request": "true"},
    )
    assert answer.status_code == 200
    panel = answer.content.decode()
    assert 'id="template-check"' not in panel  # the answer goes into the region, which stays in the page
    assert "<html" not in panel
    assert "3 problems to fix" in panel
    assert "(did you mean demo-web?)" in panel
    assert "Line 5, tiers[0].count" in panel
    assert "Line 6, tiers[1].name" in panel
    assert "HX-Request" in answer["Vary"]
    assert not StackTemplate.objects.exists()

    clean = signed_in.post(
        reverse("template-create"),
        {"name": "shop", "project": project.pk, "source": STARTER.read_text(), "action": "check"},
        headers={"HX-Request": "true"},
    ).content.decode()
    assert "No problems found in the template: 3 tiers (db, app, web). Not saved yet." in clean
    assert not StackTemplate.objects.exists()


def test_the_check_button_without_scripts_shows_the_page_with_the_problems_and_saves_nothing(signed_in, project):
    html = signed_in.post(
        reverse("template-create"),
        {
            "name": "shop",
            "project": project.pk,
            "source": "tiers: [{name: a, appliance: b, count: 0}]",
            "action": "check",
        },
    ).content.decode()
    assert "<html" in html
    assert "Line 1, tiers[0].count: a whole number from 1 to 10" in _under(html, "source")
    assert not StackTemplate.objects.exists()


def test_the_check_of_another_projects_template_is_not_found(signed_in, outsider, other_project):
    theirs = templates.template_create(
        user=outsider, project=other_project, name="theirs", source="tiers: [{name: a, appliance: b}]"
    )
    answer = signed_in.post(
        reverse("template-edit", args=[theirs.pk]),
        {"name": "theirs", "source": "tiers: [{name: a, appliance: b}]", "action": "check"},
        headers={"HX-Request": "true"},
    )
    assert answer.status_code == 404


def test_checking_against_another_projects_catalog_is_refused_at_the_project(signed_in, other_project):
    html = signed_in.post(
        reverse("template-create"),
        {"name": "x", "project": other_project.pk, "source": "tiers: [{name: a, appliance: b}]"},
    ).content.decode()
    assert "Select a valid choice" in _under(html, "project")
    # The other project's catalog is not consulted: the document is checked against no project's.
    assert "beta" not in html
    assert not StackTemplate.objects.exists()


def test_the_empty_list_offers_the_starter_not_an_operator_command(signed_in):
    html = signed_in.get(reverse("template-list")).content.decode()
    assert "setup_demo" not in html
    assert "Start from the three-tier example" in html
    assert f'href="{reverse("template-create")}"' in html


def test_a_member_editing_a_shared_template_is_told_whom_to_ask(signed_in, operator):
    shared = templates.template_create(
        user=operator, project=None, name="shared", source="tiers: [{name: a, appliance: b}]"
    )
    html = signed_in.post(
        reverse("template-edit", args=[shared.pk]), {"name": "shared", "source": "tiers: [{name: z, appliance: b}]"}
    ).content.decode()
    assert "Only operators may write shared templates: ask an operator to change this one." in _under(html, "project")
    shared.refresh_from_db()
    assert shared.source == "tiers: [{name: a, appliance: b}]"
