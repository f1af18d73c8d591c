"""An upload may say the port its image's service listens on and the tier name it runs as: refused
when unusable, named in the same words as the other metadata, then carried to the version, whose
one-click launch publishes the port. Bad values first."""

from __future__ import annotations

import pytest

from provisioning.name_rules import TIER_NAME
from provisioning.services.plans import single_tier_document
from tests.transfers.upload_helpers import (
    ENDPOINT,
    TUS,
    create,
    head,
    metadata_header,
    qcow2_image,
    send_whole,
    use_private_folders,
)
from transfers import tus, upload_tasks
from transfers.models import Upload

PORT_MESSAGE = "the service port is a whole number from 1 to 65535"


@pytest.fixture(autouse=True)
def folders(settings, tmp_path):
    return use_private_folders(settings, tmp_path)


@pytest.fixture
def client(api, member):
    return api(member)


def _refused(client, project, **meta: str) -> dict[str, list[str]]:
    response = create(client, project=project, length=10, **meta)
    assert response.status_code == 400, response.content
    assert not Upload.objects.exists()
    return response.json()["fields"]


@pytest.mark.parametrize(
    "port", ["0", "65536", "-1", "+80", "80.0", "1e3", "0x50", "eighty", "\uff18\uff10", "8 0", "99999999999999999999"]
)
def test_a_port_outside_1_to_65535_or_no_whole_number_is_refused_naming_the_field(client, project, port):
    assert _refused(client, project, port=port) == {"port": [PORT_MESSAGE]}


@pytest.mark.parametrize("role", ["Web", "1web", "-web", "w" * 16, "web server", "../db", "wéb", "web\x00"])
def test_a_role_that_is_no_tier_name_is_refused_naming_the_field(client, project, role):
    assert _refused(client, project, role=role) == {"role": [f"the role is a tier name: {TIER_NAME.rule}"]}


def test_every_field_at_fault_is_named_at_once(client, project):
    fields = _refused(client, project, version="", port="70000", role="Web")
    assert sorted(fields) == ["port", "role", "version"]


def test_a_bad_port_for_another_tenants_project_tells_nothing_of_that_project(client, other_project):
    # The metadata is read before the project is looked up: the answer is the same for any project id.
    theirs = create(client, project=other_project, length=10, port="0")
    unknown = create(client, project=str(other_project.pk + 1000), length=10, port="0")
    assert theirs.status_code == unknown.status_code == 400
    assert theirs.json() == unknown.json()
    good_port = create(client, project=other_project, length=10, port="8080", role="web")
    assert good_port.status_code == 404
    assert not Upload.objects.exists()


def test_the_port_and_role_are_kept_with_the_upload_and_told_back(client, project):
    response = create(client, project=project, length=10, port=" 8080 ", role="web")
    assert response.status_code == 201, response.content
    upload = Upload.objects.get()
    assert (upload.service_port, upload.role) == (8080, "web")
    assert (response.json()["service_port"], response.json()["role"]) == (8080, "web")
    told = tus.parse_metadata(head(client, response["Location"])["Upload-Metadata"])
    assert (told["port"], told["role"]) == ("8080", "web")


def test_without_them_or_empty_the_upload_has_neither(client, project):
    header = metadata_header(project=str(project.pk), appliance="my-web", version="1.0", port="", role="")
    assert client.post(ENDPOINT, HTTP_UPLOAD_LENGTH="10", HTTP_UPLOAD_METADATA=header, **TUS).status_code == 201
    assert create(client, project=project, length=10, version="2.0").status_code == 201
    assert list(Upload.objects.values_list("service_port", "role")) == [(None, ""), (None, "")]


def _ready_version(client, project, tmp_path, **meta: str):
    data = qcow2_image(tmp_path / "web.qcow2")
    response = create(client, project=project, length=len(data), **meta)
    assert response.status_code == 201, response.content
    send_whole(client, response["Location"], data, chunk=64 * 1024)
    upload_id = response.json()["id"]
    upload_tasks.process_upload(upload_id)
    upload = Upload.objects.get(pk=upload_id)
    assert upload.status == Upload.Status.READY, upload.error
    return upload.result


def test_the_version_made_gets_the_port_and_role_and_its_one_click_launch_publishes_the_port(client, project, tmp_path):
    version = _ready_version(client, project, tmp_path, appliance="my-web", port="8080", role="web")
    assert (version.service_port, version.appliance.role) == (8080, "web")
    (tier,) = single_tier_document(version).tiers
    assert (tier.name, tier.publish) == ("web", (8080,))


def test_a_version_uploaded_without_them_publishes_nothing(client, project, tmp_path):
    version = _ready_version(client, project, tmp_path, appliance="my-disk")
    assert (version.service_port, version.appliance.role) == (None, "")
    (tier,) = single_tier_document(version).tiers
    assert (tier.name, tier.publish) == ("main", ())
