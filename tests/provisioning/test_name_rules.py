"""One rule for a stack's name, said one way: by the launch service, the API and the web form."""

from __future__ import annotations

import pytest

from portal import errors
from provisioning.forms import TemplateLaunchForm
from provisioning.models import Stack
from provisioning.name_rules import STACK_NAME, TEMPLATE_NAME
from provisioning.services.launch import stack_launch

# An empty name is a missing one, which forms and the API say as such ("required", "blank").
BAD_NAMES = ["UPPER", "-dash", "dash-", "a" * 41, "x_y", "bad name", "ünï", "a-\n"]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_the_service_the_api_and_the_form_refuse_a_bad_name_in_the_same_words(
    api, member, project, test_host, ready_version, name
):
    with pytest.raises(errors.Invalid) as refused:
        stack_launch(user=member, project=project, name=name, appliance_version=ready_version)
    assert refused.value.detail == STACK_NAME.message

    body = {"name": name, "project": project.pk, "appliance": ready_version.appliance_id}
    answer = api(member).post("/api/v1/stacks/", body, format="json")
    assert answer.status_code == 400
    assert answer.json()["fields"]["name"] == [STACK_NAME.message]

    form = TemplateLaunchForm({"name": name, "project": project.pk, "lease_seconds": 3600}, user=member)
    assert not form.is_valid()
    assert form.errors["name"] == [STACK_NAME.message] or (
        name == "" and form.errors["name"] == ["This field is required."]
    )
    assert not Stack.objects.exists()


@pytest.mark.parametrize("name", ["a", "shop", "shop-2", "a" * 40, "9lives"])
def test_good_names_pass_everywhere(member, name):
    assert STACK_NAME.pattern.fullmatch(name)
    assert TemplateLaunchForm({"name": name}, user=member).fields["name"].clean(name) == name


def test_the_help_text_states_the_rule():
    assert (
        STACK_NAME.form_field().help_text
        == "1-40 lowercase letters, digits or '-', starting and ending with a letter or digit"
    )
    assert TEMPLATE_NAME.message.startswith("name must be 1-63 lowercase")
