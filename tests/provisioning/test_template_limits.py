"""How much a project may put into templates: a number of templates, and limits inside each one."""

from __future__ import annotations

import pytest

from portal import errors
from provisioning.models import StackTemplate
from provisioning.services import templates
from provisioning.templates import Dependency, TemplateDocument

ONE_TIER = "tiers: [{name: web, appliance: a}]"


def test_a_project_keeps_at_most_the_configured_number_of_templates(member, project, settings, api):
    settings.TEMPLATES_PER_PROJECT = 3
    for number in range(3):
        templates.template_create(user=member, project=project, name=f"t{number}", source=ONE_TIER)
    with pytest.raises(errors.QuotaExceeded, match="at most 3 templates"):
        templates.template_create(user=member, project=project, name="one-more", source=ONE_TIER)
    response = api(member).post(
        "/api/v1/templates/", {"name": "by-api", "project": project.pk, "source": ONE_TIER}, format="json"
    )
    assert response.status_code == 403
    assert response.json()["code"] == "quota_exceeded"
    assert StackTemplate.objects.filter(project=project).count() == 3


def test_the_limit_counts_per_project_and_leaves_shared_templates_alone(
    member, project, outsider, other_project, operator, settings
):
    settings.TEMPLATES_PER_PROJECT = 1
    templates.template_create(user=member, project=project, name="mine", source=ONE_TIER)
    templates.template_create(user=outsider, project=other_project, name="theirs", source=ONE_TIER)
    for number in range(2):
        templates.template_create(user=operator, project=None, name=f"shared-{number}", source=ONE_TIER)
    # Editing one that exists is not adding one.
    template = StackTemplate.objects.get(name="mine")
    templates.template_update(user=member, template=template, name="mine", source=ONE_TIER, description="new")


def test_a_document_stored_with_one_dependency_repeated_still_reads():
    """Documents saved before a repeated dependency was refused (30,000 times the same tier) read as one."""
    repeated = [{"tier": "db", "wait_for_port": False}] * 29_999 + [{"tier": "db", "wait_for_port": True}]
    stored = {
        "description": "",
        "tiers": [
            {"name": "db", "appliance": "a", "depends_on": [], "publish": [], "settings": {}},
            {
                "name": "web",
                "appliance": "a",
                "depends_on": repeated,
                "publish": [],
                "settings": {},
            },
        ],
    }
    document = TemplateDocument.from_json(stored)
    assert document.tier("web").depends_on == (Dependency(tier="db", wait_for_port=True),)
