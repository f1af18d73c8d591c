"""libvirt's error text never reaches a client: it can quote files of the portal server.

A ``test:///<path>`` URI makes libvirt parse that file as a test node and answer with its first
line. The portal says what failed in its own words, everywhere a driver error can surface (the
API, the admin, a host's health, a stack's failure reason), and keeps libvirt's words for the log.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from portal import errors
from portal import settings as production
from provisioning.drivers import HostUnreachable
from provisioning.drivers.libvirt_driver import LibvirtDriver
from provisioning.models import Host, Stack, Status
from provisioning.services import hosts
from provisioning.services.launch import stack_launch
from tests.factories import HostFactory

SECRET = "PORTAL_SECRET=do-not-show-this-line"


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    path = tmp_path / "secret.env"
    path.write_text(f"{SECRET}\nmore\n")
    return path


def test_the_test_driver_is_not_a_production_transport(operator, settings, secret_file):
    assert not any(entry.startswith("test") for entry in production.HOST_TRANSPORTS)
    settings.HOST_TRANSPORTS = production.HOST_TRANSPORTS
    with pytest.raises(errors.Invalid, match="transport 'test' is not allowed"):
        hosts.host_register(user=operator, name="peek", uri=f"test://{secret_file}")


def test_the_driver_keeps_libvirts_words_out_of_its_message(secret_file, caplog):
    with pytest.raises(HostUnreachable) as raised:
        LibvirtDriver(f"test://{secret_file}").host_info()
    assert SECRET not in str(raised.value)
    assert raised.value.message == "cannot connect to the host: the URI or the credentials were refused"
    assert SECRET in raised.value.detail  # for operators ...
    assert SECRET in caplog.text  # ... who read it in the log


def test_registering_a_file_as_a_host_does_not_show_the_file(operator, secret_file, caplog):
    with pytest.raises(errors.Invalid) as refused:
        hosts.host_register(user=operator, name="peek", uri=f"test://{secret_file}")
    assert SECRET not in str(refused.value.as_body())
    assert refused.value.fields["uri"] == [
        f"cannot use host test://{secret_file}: cannot connect to the host: the URI or the credentials were refused"
    ]
    assert SECRET in caplog.text


def test_the_api_does_not_show_the_file(operator, api, secret_file):
    response = api(operator).post("/api/v1/hosts/", {"name": "peek", "uri": f"test://{secret_file}"}, format="json")
    assert response.status_code == 400
    assert SECRET.encode() not in response.content
    assert not Host.objects.exists()


def test_the_admin_does_not_show_the_file(client, operator, secret_file):
    client.force_login(operator)
    form = {
        "name": "peek",
        "uri": f"test://{secret_file}",
        "domain_type": "qemu",
        "enabled": "on",
        "storage_pool": "p",
        "storage_pool_path": "/p",
        "public_address": "127.0.0.1",
        "cpu_overcommit": "4",
        "memory_overcommit": "1",
        "disk_overcommit": "1",
        "memory_reserved_mib": "512",
        "console_address": "127.0.0.1",
        "migration_address": "127.0.0.1",
    }
    page = client.post("/admin/provisioning/host/add/", form)
    assert page.status_code == 200
    assert SECRET not in page.content.decode()
    assert "cannot connect to the host" in page.content.decode()


def test_a_hosts_health_does_not_show_the_file(operator, api, secret_file):
    host = HostFactory(name="peek", uri=f"test://{secret_file}")
    hosts.host_refresh(host=host)
    assert Host.objects.get(pk=host.pk).health_error == (
        "cannot connect to the host: the URI or the credentials were refused"
    )
    assert SECRET.encode() not in api(operator).get("/api/v1/hosts/").content
    assert SECRET.encode() not in api(operator).post(f"/api/v1/hosts/{host.pk}/refresh/").content


def test_a_failed_build_does_not_show_the_file_to_the_project(
    member, project, api, ready_version, secret_file, django_capture_on_commit_callbacks
):
    HostFactory(name="peek", uri=f"test://{secret_file}")
    with django_capture_on_commit_callbacks(execute=True):
        stack = stack_launch(user=member, project=project, name="s", appliance_version=ready_version)
    stack = Stack.objects.get(pk=stack.pk)
    assert stack.status == Status.ERROR
    texts = [stack.status_reason, *stack.events.values_list("message", flat=True)]
    texts += list(stack.instances.values_list("status_reason", flat=True))
    assert not [text for text in texts if SECRET in text]
    assert SECRET.encode() not in api(member).get(f"/api/v1/stacks/{stack.pk}/").content
    assert "cannot connect to the host" in stack.status_reason
