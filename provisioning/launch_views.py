"""The launch dialog's server side, one flow for an appliance and for a template.

One address per kind of launch answers three ways. A plain request gets a whole page (the form and
its preview, for browsers without scripts). A request from the dialog's script (header
``X-Launch-Dialog``: ``modal`` or ``inline``) gets only the form, which the script puts in place:
asked with GET and the form's values, after each choice, it shows the preview for them; a POST
launches, and when the launch is refused the form comes back with each problem next to its field,
so the reader never leaves the dialog. A launch that succeeds answers with the stack page's address
in ``X-Launch-Location`` (the script goes there) or, without the script, a redirect.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.cache import patch_vary_headers

from catalog.image_problems import launch_block
from catalog.models import ApplianceVersion
from catalog.selectors import appliance_versions_visible_to
from portal import errors
from portal.models import Project
from portal.scoping import Account
from provisioning.forms import LEASE_CHOICES, LaunchForm, StackLaunchFields, TemplateLaunchForm, default_lease
from provisioning.launch_choices import (
    appliance_picker,
    default_project,
    last_used_project_id,
    projects_for_template,
    projects_for_version,
)
from provisioning.launch_preview import planned_demand, preview_launch, sentence, suggested_name_for
from provisioning.models import Stack, StackTemplate
from provisioning.services import launch
from provisioning.services.plans import single_tier_document
from provisioning.templates import TemplateDocument

DIALOG_HEADER = "X-Launch-Dialog"
LOCATION_HEADER = "X-Launch-Location"
FRAGMENT = "provisioning/_launch_form.html"


@dataclass(frozen=True)
class Subject:
    """What is being launched, as the dialog needs it."""

    heading: str
    action: str
    document: TemplateDocument | None  # None: nothing chosen yet (the appliance picker)
    document_problem: str | None  # why it cannot be launched whatever the project: an image that failed, say
    projects: list[Project]
    name_stem: str
    launch: Callable[[dict[str, Any]], Stack]
    page: str  # the whole page's template, for browsers without scripts


def appliance_launch(request: HttpRequest) -> HttpResponse:
    """``stack-launch``: one appliance; from the catalog with ``version``, else with a picker."""
    user = _account(request)
    values = _values(request)
    versions = appliance_versions_visible_to(user)
    version = _visible_version(versions, values.get("appliance_version") or values.get("version"))
    picker = version is None or values.get("picker") == "1"
    projects = list(projects_for_version(user, version))
    problem = None
    if version is None:
        heading, document, stem = "Launch a stack", None, "stack"
    else:
        heading = f"Launch {version.appliance.title} {version.version}"
        document, stem = single_tier_document(version), version.appliance.identifier
        block = launch_block(version)
        if block is not None:
            problem = f"{block.summary} {block.advice}"

    def start(data: dict[str, Any]) -> Stack:
        return launch.stack_launch(user=user, **data)

    subject = Subject(
        heading, reverse("stack-launch"), document, problem, projects, stem, start, "provisioning/launch.html"
    )
    groups, more = appliance_picker(user, chosen=version) if picker else ([], False)
    choices = [(group.label, group.options) for group in groups] if picker else None
    extra_initial = {"appliance_version": version.pk if version else None}

    def make_form(data: QueryDict | None, initial: dict[str, Any]) -> StackLaunchFields:
        return LaunchForm(
            data, user=user, versions=versions, projects=_queryset(projects), picker=choices, initial=initial
        )

    return _respond(
        request, subject, make_form, values, extra_initial, {"picker": picker, "picker_more": more, "version": version}
    )


def template_launch(request: HttpRequest, template: StackTemplate, *, page: dict[str, Any]) -> HttpResponse:
    """``template-launch``: every tier of ``template``, in a project it may be launched in."""
    user = _account(request)
    try:
        document: TemplateDocument | None = TemplateDocument.from_json(template.document)
        problem = None
    except errors.Invalid:
        document, problem = None, "This template was saved under older rules and must be edited before it can launch."

    def start(data: dict[str, Any]) -> Stack:
        return launch.stack_launch_template(user=user, template=template, **data)

    projects = list(projects_for_template(user, template))
    action = reverse("template-launch", args=[template.pk])
    subject = Subject(
        f"Launch {template.name}",
        action,
        document,
        problem,
        projects,
        template.name,
        start,
        "provisioning/template_launch.html",
    )

    def make_form(data: QueryDict | None, initial: dict[str, Any]) -> StackLaunchFields:
        return TemplateLaunchForm(data, user=user, projects=_queryset(projects), initial=initial)

    return _respond(request, subject, make_form, _values(request), {}, {"template": template, **page})


def _respond(
    request: HttpRequest,
    subject: Subject,
    make_form: Callable[[QueryDict | None, dict[str, Any]], StackLaunchFields],
    values: Mapping[str, str],
    extra_initial: dict[str, Any],
    extra_context: dict[str, Any],
) -> HttpResponse:
    mode = request.headers.get(DIALOG_HEADER, "")
    launching = request.method == "POST" and "preview" not in request.POST
    initial = {**_initial(request, subject, values), **extra_initial}
    form = make_form(request.POST if launching else None, initial)
    if initial.pop("name_suggested") and not launching:
        # The script asks for a fresh suggestion (another appliance's name) until the reader types one.
        form.fields["name"].widget.attrs["data-suggested"] = ""
    if launching and subject.document_problem is None and form.is_valid():
        try:
            stack = subject.launch(form.cleaned_data)
        except errors.NotFound:
            raise
        except errors.PortalError as exc:
            place_error(form, exc)
        else:
            messages.success(request, f"Stack {stack.name} is being built.", extra_tags="while-pending while-building")
            url = reverse("stack-detail", args=[stack.pk])
            if mode:
                response = HttpResponse(status=204)
                response[LOCATION_HEADER] = url
                return response
            return redirect(url)
    project = _chosen(form, subject, initial) if launching else initial.get("project")
    preview = None
    if isinstance(project, Project):
        lease = _lease(values.get("lease_seconds")) or default_lease()
        preview = preview_launch(user=request.user, project=project, document=subject.document, lease_seconds=lease)
    context = {
        "form": form,
        "subject": subject,
        "preview": preview,
        "launchable": bool(preview and preview.launchable and subject.document_problem is None),
        "in_dialog": mode == "modal",
        **extra_context,
    }
    response = render(request, FRAGMENT if mode else subject.page, context)
    patch_vary_headers(response, [DIALOG_HEADER])
    return response


def _account(request: HttpRequest) -> Account:
    assert isinstance(request.user, Account), "login_required lets no anonymous caller through"
    return request.user


def _values(request: HttpRequest) -> Mapping[str, str]:
    """The form's values as sent: a POST's, or a GET's (the dialog asking for a preview)."""
    return request.POST if request.method == "POST" else request.GET


def _visible_version(versions: Any, raw: str | None) -> ApplianceVersion | None:
    if not raw or not raw.isdigit():
        return None
    version: ApplianceVersion | None = versions.filter(pk=int(raw)).first()
    return version


def _lease(raw: str | None) -> int | None:
    offered = {seconds for seconds, _label in LEASE_CHOICES}
    return int(raw) if raw and raw.isdigit() and int(raw) in offered else None


def _queryset(projects: list[Project]) -> Any:
    return Project.objects.filter(pk__in=[project.pk for project in projects]).order_by("name", "pk")


def _initial(request: HttpRequest, subject: Subject, values: Mapping[str, str]) -> dict[str, Any]:
    """What the form starts with: the values sent (a preview keeps what the reader chose), else suggestions."""
    raw_project = values.get("project", "")
    came_from = int(raw_project) if raw_project.isdigit() else None
    user = _account(request)
    demand = None
    if came_from not in {project.pk for project in subject.projects} and subject.document and subject.projects:
        # Room is judged on the first project's plan: sizes and flavors rarely differ between projects.
        seconds = _lease(values.get("lease_seconds")) or default_lease()
        demand = planned_demand(
            user=user, project=subject.projects[0], document=subject.document, lease_seconds=seconds
        )
    project = default_project(
        subject.projects,
        came_from=came_from,
        last_used=last_used_project_id(user, subject.projects),
        demand=demand,
    )
    initial: dict[str, Any] = {"project": project, "name": values.get("name") or suggested_name_for(subject.name_stem)}
    initial["name_suggested"] = not values.get("name")
    lease = _lease(values.get("lease_seconds"))
    if lease:
        initial["lease_seconds"] = lease
    return initial


def _chosen(form: StackLaunchFields, subject: Subject, initial: dict[str, Any]) -> Project | None:
    """The project a sent form names, if the launch may go there; else the one it started on."""
    raw = form.data.get("project", "")
    by_id = {str(project.pk): project for project in subject.projects}
    return by_id.get(raw) or initial.get("project")


# Where each field a service names shows its problem in the dialog.
_FIELD_OF = {"name": "name", "lease": "lease_seconds", "appliance": "appliance_version", "version": "appliance_version"}


def place_error(form: StackLaunchFields, exc: errors.PortalError) -> None:
    """A refused launch's problem next to the field it is about, in the reader's words.

    Over quota is about the project (another may have room); no room on any host is about the
    launch as a whole and shows above the buttons.
    """
    if isinstance(exc, errors.QuotaExceeded):
        form.add_error("project", quota_words(exc.detail))
        return
    placed = False
    for key, field_messages in exc.fields.items():
        name = _FIELD_OF.get(key)
        if name and name in form.fields:
            for message in field_messages:
                form.add_error(name, sentence(message))
            placed = True
    if not placed:
        form.add_error(None, sentence(exc.detail))


def quota_words(detail: str) -> str:
    """``quota exceeded: project 'a' may hold ...`` as a sentence for the reader, with what to do."""
    text = detail.removeprefix("quota exceeded: ")
    return f"{sentence(text)} Choose another project, or free some of this one's quota first."
