"""The launch dialog, one for appliances and templates: the project it starts on, the projects it
offers, the quota and host previews (which agree with the launch), and refusals shown in place."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from portal import errors
from portal.models import Role
from provisioning.launch_preview import preview_launch
from provisioning.models import Host, Stack
from provisioning.placement import room_for
from provisioning.services import templates
from provisioning.services.launch import stack_launch
from provisioning.services.plans import single_tier_document
from tests.factories import ApplianceVersionFactory, FeedFactory, HostFactory, MembershipFactory, ProjectFactory
from tests.provisioning.conftest import CLASSIC

DIALOG = {"HTTP_X_LAUNCH_DIALOG": "modal"}


@pytest.fixture
def signed_in(client, member):
    client.force_login(member)
    return client


@pytest.fixture
def small_host(db):
    """The only host: room for 2 vCPUs and 512 MiB (the ready version needs 1 vCPU, 128 MiB, 1 GiB)."""
    return HostFactory(
        name="small", uri="test:///small", cpus=2, cpu_overcommit=1, memory_mib=512, memory_reserved_mib=0
    )


def _dialog(client, **params):
    return client.get(reverse("stack-launch"), params, **DIALOG)


def _launch_button(page: str) -> str:
    start = page.index("data-launch-submit")
    return page[page.rindex("<button", 0, start) : page.index(">", start) + 1]


# Bad input first: what the dialog refuses, and where it says so.


def test_a_bad_name_comes_back_next_to_the_name_field_in_the_dialog(signed_in, project, small_host, ready_version):
    data = {"appliance_version": ready_version.pk, "name": "Bad Name", "project": project.pk, "lease_seconds": 3600}
    response = signed_in.post(reverse("stack-launch"), data, **DIALOG)
    page = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in page  # the form alone, put in place by the dialog's script
    assert 'id="id_name_error" data-launch-error>Name must be 1-40 lowercase letters' in page
    assert 'aria-invalid="true"' in page
    assert not Stack.objects.exists()


def test_over_quota_the_project_field_says_why_and_launch_is_off(signed_in, project, small_host, ready_version):
    project.max_instances = 0
    project.save()
    page = _dialog(signed_in, version=ready_version.pk).content.decode()
    assert "Over the quota of alpha: 0 of 0 instances in use, this launch needs 1 more." in page
    assert "disabled" in _launch_button(page)
    assert 'aria-describedby="launch-why"' in _launch_button(page)
    assert "Launch is off: choose a project with room." in page

    # Sent anyway (an old page, a script): refused, and said next to the project.
    data = {"appliance_version": ready_version.pk, "name": "site", "project": project.pk, "lease_seconds": 3600}
    refused = signed_in.post(reverse("stack-launch"), data, **DIALOG).content.decode()
    assert 'id="id_project_error" data-launch-error>Project &#x27;alpha&#x27; may hold 0 instances' in refused
    assert "Choose another project, or free some of this one&#x27;s quota first." in refused
    assert not Stack.objects.exists()


def test_no_host_with_room_is_said_before_launch_and_after(signed_in, project, small_host, ready_version):
    HostFactory(name="gone", enabled=False)
    small_host.allocated_vcpus = 2
    small_host.save()
    page = _dialog(signed_in, version=ready_version.pk).content.decode()
    assert "Within the quota of alpha." in page
    assert "No host has room for 1 vCPU and 128 MiB of memory plus 1 GiB of disk right now." in page
    assert "disabled" in _launch_button(page)
    assert "Launch is off: no host can take it now." in page

    data = {"appliance_version": ready_version.pk, "name": "site", "project": project.pk, "lease_seconds": 3600}
    refused = signed_in.post(reverse("stack-launch"), data, **DIALOG).content.decode()
    assert 'id="launch-form-errors"' in refused
    assert "No host has room for 1 vCPU and 128 MiB" in refused.split('id="launch-form-errors"')[1]
    assert not Stack.objects.exists()


def test_a_draining_host_takes_no_launch_in_the_preview_nor_in_placement(member, project, small_host, ready_version):
    Host.objects.filter(pk=small_host.pk).update(draining=True)
    document = single_tier_document(ready_version)
    preview = preview_launch(user=member, project=project, document=document, lease_seconds=3600)
    assert preview.quota_problems == []
    assert preview.capacity_problem == (
        "Every enabled and healthy host is draining; ask an operator to undrain or add one."
    )
    with pytest.raises(errors.NoCapacity, match="draining"):
        stack_launch(user=member, project=project, name="site", appliance_version=ready_version)


def test_the_preview_and_the_launch_agree_on_the_last_room(member, project, small_host, test_host, ready_version):
    Host.objects.filter(name="test-host").update(enabled=False)  # the libvirt test host only runs what is placed
    document = single_tier_document(ready_version)
    demand = preview_launch(user=member, project=project, document=document, lease_seconds=3600).demand
    small_host.allocated_vcpus, small_host.allocated_memory_mib = 1, 384
    small_host.save()
    assert room_for(demand) is None  # exactly one vCPU and 128 MiB left
    small_host.allocated_memory_mib = 385
    small_host.save()
    assert "no host has room" in room_for(demand).detail
    with pytest.raises(errors.NoCapacity, match="no host has room"):
        stack_launch(user=member, project=project, name="site", appliance_version=ready_version)


def test_another_projects_private_appliance_and_project_are_not_offered(
    signed_in, project, other_project, small_host, ready_version
):
    private = ApplianceVersionFactory(appliance__feed=FeedFactory(project=other_project), appliance__title="Secret")
    page = _dialog(signed_in, version=private.pk, project=other_project.pk).content.decode()
    assert "Secret" not in page
    assert "beta" not in page
    assert 'name="picker"' in page  # an unknown version: the picker, as from the dashboard
    data = {"appliance_version": private.pk, "name": "site", "project": other_project.pk, "lease_seconds": 3600}
    refused = signed_in.post(reverse("stack-launch"), data, **DIALOG).content.decode()
    assert "Select a valid choice" in refused
    assert not Stack.objects.exists()


def test_a_project_template_offers_only_its_project(client, member, project, small_host, demo_catalog):
    other = ProjectFactory(name="aaa-first")
    MembershipFactory(project=other, user=member, role=Role.MEMBER)
    own = templates.template_create(user=member, project=project, name="mine", source=CLASSIC.read_text())
    client.force_login(member)
    page = client.get(reverse("template-launch", args=[own.pk])).content.decode()
    assert f'<option value="{project.pk}" selected>alpha</option>' in page
    assert ">aaa-first</option>" not in page
    data = {"name": "shop", "project": other.pk, "lease_seconds": 3600}
    refused = client.post(reverse("template-launch", args=[own.pk]), data, **DIALOG).content.decode()
    assert "Select a valid choice" in refused
    assert not Stack.objects.exists()


# The project the dialog starts on.


@pytest.fixture
def full_first(member, project):
    """The member is in "aaa-full" too, which is first by name and has no room."""
    full = ProjectFactory(name="aaa-full", max_stacks=0)
    MembershipFactory(project=full, user=member, role=Role.MEMBER)
    return full


def _selected_project(page: str) -> str:
    select = page[page.index('name="project"') :]
    select = select[: select.index("</select>")]
    return select.split(" selected>")[1].split("<")[0]


def test_the_dialog_starts_on_a_project_with_room_not_the_first_by_name(
    signed_in, full_first, small_host, ready_version
):
    page = _dialog(signed_in, version=ready_version.pk).content.decode()
    assert _selected_project(page) == "alpha"
    assert "disabled" not in _launch_button(page)


def test_the_project_the_reader_came_from_wins_even_when_full(signed_in, full_first, small_host, ready_version):
    page = _dialog(signed_in, version=ready_version.pk, project=full_first.pk).content.decode()
    assert _selected_project(page) == "aaa-full"
    assert "disabled" in _launch_button(page)  # and the reader may still switch


def test_the_project_last_launched_in_comes_next(signed_in, member, project, small_host, ready_version):
    later = ProjectFactory(name="zzz-last")
    MembershipFactory(project=later, user=member, role=Role.MEMBER)
    stack_launch(user=member, project=later, name="earlier", appliance_version=ready_version)
    page = _dialog(signed_in, version=ready_version.pk).content.decode()
    assert _selected_project(page) == "zzz-last"


# What the dialog offers.


def test_the_dashboard_dialog_offers_each_appliance_once_grouped_by_feed(signed_in, project, small_host, ready_version):
    ready_version.published_at = timezone.now()
    ready_version.save()
    older = ApplianceVersionFactory(
        appliance=ready_version.appliance, version="0.9", published_at=ready_version.published_at - timedelta(days=1)
    )
    own_feed = FeedFactory(project=project, title="Alpha's images")
    ApplianceVersionFactory(appliance__feed=own_feed, appliance__title="Demo web", appliance__identifier="web2")
    page = _dialog(signed_in).content.decode()
    assert "---------" not in page
    assert '<option value="" selected>Choose an appliance</option>' in page
    assert page.count(">Demo web ") == 2  # once per feed, never once per version
    assert '<optgroup label="Alpha&#x27;s images (alpha)">' in page
    assert f'<optgroup label="{ready_version.appliance.feed.title} (shared)">' in page
    assert "Choose an appliance to see what it takes" in page
    assert "disabled" in _launch_button(page)

    chosen = _dialog(signed_in, appliance_version=ready_version.pk, picker="1").content.decode()
    assert f'<option value="{ready_version.pk}" selected>' in chosen
    # The name the dialog suggested follows the appliance until the reader types their own.
    assert f'value="{ready_version.appliance.identifier}-' in chosen
    assert "data-suggested" in chosen
    typed = _dialog(signed_in, appliance_version=ready_version.pk, picker="1", name="mine").content.decode()
    assert 'value="mine"' in typed
    assert "data-suggested" not in typed
    assert "Within the quota of alpha." in chosen
    assert "disabled" not in _launch_button(chosen)
    # An older version the reader came with stays chosen, in its appliance's place.
    kept = _dialog(signed_in, appliance_version=older.pk, picker="1").content.decode()
    assert f'<option value="{older.pk}" selected>Demo web 0.9 ' in kept
    assert kept.count(">Demo web ") == 2


def test_the_dialog_suggests_a_valid_name_and_the_whole_page_works_without_scripts(
    signed_in, project, small_host, ready_version, django_capture_on_commit_callbacks
):
    page = signed_in.get(reverse("stack-launch"), {"version": ready_version.pk}).content.decode()
    assert "<html" in page
    assert f'value="{ready_version.appliance.identifier}-' in page
    data = {"appliance_version": ready_version.pk, "name": "site", "project": project.pk, "lease_seconds": 3600}
    preview = signed_in.post(reverse("stack-launch"), {**data, "preview": "1"})
    assert preview.status_code == 200
    assert not Stack.objects.exists()
    with django_capture_on_commit_callbacks(execute=False):
        launched = signed_in.post(reverse("stack-launch"), data, **DIALOG)
    stack = Stack.objects.get()
    assert launched.status_code == 204
    assert launched["X-Launch-Location"] == reverse("stack-detail", args=[stack.pk])


def test_the_template_page_previews_quota_and_hosts(signed_in, project, small_host, demo_catalog, operator):
    shared = templates.template_create(user=operator, project=None, name="classic", source=CLASSIC.read_text())
    page = signed_in.get(reverse("template-launch", args=[shared.pk])).content.decode()
    assert "What this launch takes: 3 vCPU" in page
    assert '<th scope="row" class="fw-normal">vCPUs</th>' in page
    assert '<th scope="row" class="fw-normal">Stacks</th>' in page
    assert "Within the quota of alpha." in page
    # Three tiers of 1 vCPU, and the only host has 2.
    assert "No host is large enough for 3 vCPU and 288 MiB of memory plus 3 GiB of disk, even empty." in page
    assert 'value="classic-' in page


def test_the_dashboard_opens_the_dialog_and_a_viewer_gets_none(client, member, viewer, project, ready_version):
    client.force_login(member)
    page = client.get(reverse("dashboard")).content.decode()
    assert 'id="launch-dialog"' in page
    assert 'data-bs-target="#launch-dialog">Launch a stack</a>' in page
    assert f'data-project="{project.pk}">Launch here' in page
    client.force_login(viewer)
    page = client.get(reverse("dashboard")).content.decode()
    assert 'id="launch-dialog"' not in page
    assert "Launch a stack" not in page


def test_with_nothing_chosen_yet_the_dialog_starts_on_a_project_with_room_for_a_stack(
    signed_in, full_first, small_host, ready_version
):
    assert _selected_project(_dialog(signed_in).content.decode()) == "alpha"


def test_a_version_whose_image_failed_is_not_offered_and_its_dialog_says_why(
    signed_in, project, small_host, ready_version
):
    from catalog.models import ImageDelivery

    broken = ApplianceVersionFactory(appliance__title="Broken image", delivered=True)
    ImageDelivery.objects.filter(version=broken).update(status=ImageDelivery.Status.ERROR, error="HTTP 404 Not Found")
    picker = _dialog(signed_in).content.decode()
    assert "Broken image" not in picker
    assert ">Demo web " in picker
    page = _dialog(signed_in, version=broken.pk).content.decode()
    assert 'role="alert"' in page.split("Launch Broken image")[1]
    assert "disabled" in _launch_button(page)
    assert "Launch is off: see above." in page
