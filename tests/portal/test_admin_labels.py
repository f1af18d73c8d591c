"""The admin speaks to people: no raw field names ("Max lease seconds", "Api tokens"), and hosts show overcommit."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.test import Client

from tests.factories import HostFactory

OUR_APPS = {"portal", "catalog", "provisioning", "transfers", "notices", "usage"}
# Parts of a field name that never read well as they are: units and abbreviations.
RAW_WORDS = {"mib", "gib", "url", "uri", "api", "cpus", "vcpus", "sha256", "ms", "ns", "cidr", "mac", "vnc", "seconds"}


def _our_admins():
    return [
        (model, model_admin) for model, model_admin in admin.site._registry.items() if model._meta.app_label in OUR_APPS
    ]


def _shown_fields(model):
    return [field for field in model._meta.get_fields() if hasattr(field, "verbose_name") and not field.auto_created]


@pytest.fixture
def operator_client(operator):
    client = Client()
    client.force_login(operator)
    return client


def test_no_field_in_the_admin_is_labelled_with_its_raw_name():
    raw = []
    for model, _model_admin in _our_admins():
        for field in _shown_fields(model):
            words = set(field.name.split("_"))
            if words & RAW_WORDS and field.verbose_name == field.name.replace("_", " "):
                raw.append(f"{model.__name__}.{field.name}")
    assert raw == []


@pytest.mark.parametrize("model_admin_pair", _our_admins(), ids=lambda pair: pair[0].__name__)
def test_every_changelist_renders(operator_client, model_admin_pair):
    model, _model_admin = model_admin_pair
    url = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
    assert operator_client.get(url).status_code == 200


def test_the_admin_index_says_api_tokens(operator_client):
    html = operator_client.get("/admin/").content.decode()
    assert ">API tokens<" in html
    assert "Api tokens" not in html


def test_project_quotas_and_leases_have_human_labels(operator_client, project):
    html = operator_client.get("/admin/portal/project/").content.decode()
    assert "Longest lease (seconds)" in html
    assert "Most memory (MiB)" in html
    assert "Max lease seconds" not in html
    form = operator_client.get(f"/admin/portal/project/{project.pk}/change/").content.decode()
    assert "Longest lease (seconds)" in form
    assert "Instances the project may hold at once" in form


def test_host_changelist_shows_physical_size_with_its_overcommit(operator_client):
    HostFactory(name="hv-small", uri="test:///labels", cpus=2, cpu_overcommit=4, draining=True)
    html = operator_client.get("/admin/provisioning/host/").content.decode()
    assert "Virtual CPUs to place" in html
    assert "2 CPUs \u00d7 4 overcommit = 8 vCPUs to place" in html
    assert "draining: keeps its stacks, takes no new ones" in html
