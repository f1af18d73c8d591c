"""Web pages for stack templates: list, write, remove, and launch one in a click. Thin: services do the work."""

from __future__ import annotations

from pathlib import Path

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.forms import ModelChoiceField
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_http_methods

from catalog.paging import page_of
from portal import errors
from portal.models import Project
from portal.scoping import is_operator
from portal.web_errors import add_problems, errors_as_messages, errors_on
from provisioning import launch_views
from provisioning.diagram import Diagram, tier_diagram
from provisioning.forms import TemplateForm
from provisioning.models import StackTemplate
from provisioning.services import templates
from provisioning.template_check import TemplateCheck, check_document, check_template
from provisioning.templates import TemplateDocument

# What "New template" opens with: a commented example that passes the check as it stands.
STARTER = Path(__file__).resolve().parent / "stack_templates" / "starters" / "three-tier.yaml"
CHECK = "check"


# Each card draws its template's diagram: a page of them, not every template a person can see.
TEMPLATES_PER_PAGE = 20


@login_required
def template_list(request: HttpRequest) -> HttpResponse:
    rows = StackTemplate.objects.visible_to(request.user).select_related("project").order_by("project", "name", "pk")
    pages = page_of(request, rows, per_page=TEMPLATES_PER_PAGE, label="Template pages")
    items = [(template, _diagram(template)) for template in pages.page]
    return render(request, "provisioning/template_list.html", {"items": items, "pages": pages})


def _diagram(template: StackTemplate) -> Diagram | None:
    """The template's tiers as a diagram; None for a document saved before today's limits (more
    settings than a tier may now have, say), which its page asks to be edited instead of failing."""
    try:
        return tier_diagram(TemplateDocument.from_json(template.document))
    except errors.Invalid:
        return None


@login_required
def template_create(request: HttpRequest) -> HttpResponse:
    """GET: the editor, holding the starter; POST: save, or with ``action=check`` only check."""
    if request.method != "POST":
        form = TemplateForm(user=request.user, initial={"source": STARTER.read_text()})
        return _editor(request, form, template=None)
    form = TemplateForm(request.POST, user=request.user)
    return _write(request, form, template=None)


@login_required
def template_edit(request: HttpRequest, pk: int) -> HttpResponse:
    template = StackTemplate.objects.get_visible(request.user, pk=pk)
    initial = {"name": template.name, "project": template.project, "description": template.description}
    form = TemplateForm(request.POST or None, user=request.user, initial={**initial, "source": template.source})
    # Chosen once (see the admin), and shown whatever the reader's role in it: who may save is said
    # under it then, rather than the field refusing its own value.
    form.fields["project"].disabled = True
    project_field = form.fields["project"]
    assert isinstance(project_field, ModelChoiceField)
    project_field.queryset = (
        Project.objects.filter(pk=template.project.pk) if template.project else Project.objects.none()
    )
    if request.method != "POST":
        return _editor(request, form, template=template)
    return _write(request, form, template=template)


def _write(request: HttpRequest, form: TemplateForm, *, template: StackTemplate | None) -> HttpResponse:
    """Every problem of the form at once, each under its field; saved only when there is none.

    The form's own checks (a name's characters) and the template's (the document, the catalog, the
    name being free) run together, so a bad name never hides a broken document.
    """
    form.is_valid()
    data = form.cleaned_data
    source = form.data.get("source", "")
    if "project" in form.errors:
        check = TemplateCheck()  # who may write where is decided once a project is chosen
        check_document(check, user=request.user, project=None, source=source)
    else:
        project = template.project if template else data.get("project")
        name = data.get("name")
        check = check_template(user=request.user, project=project, name=name, source=source, editing=template)
    add_problems(form, check.problems)
    if request.POST.get("action") == CHECK:
        return _checked(request, form, template=template, check=check)
    if form.is_valid():
        fields = {key: data[key] for key in ("name", "source", "description")}
        with errors_on(form):
            if template is None:
                template = templates.template_create(user=request.user, project=data["project"], **fields)
            else:
                templates.template_update(user=request.user, template=template, **fields)
            messages.success(request, f"Template {template.name} saved.")
            return redirect("template-list")
    return _editor(request, form, template=template)


def _checked(
    request: HttpRequest, form: TemplateForm, *, template: StackTemplate | None, check: TemplateCheck
) -> HttpResponse:
    """The live check's answer (htmx: only the panel under the document), or the page with it."""
    live = bool(request.headers.get("HX-Request"))
    problems = list(form["source"].errors)
    # A whole page shows the problems under the field already; the panel then only says when there are none.
    context = {
        "checked": True,
        "document": check.document,
        "document_clean": not problems,
        "panel_problems": problems if live else [],
    }
    if live:
        response = render(request, "provisioning/_template_check_result.html", context)
    else:
        response = _editor(request, form, template=template, **context)
    patch_vary_headers(response, ["HX-Request"])
    return response


def _editor(
    request: HttpRequest, form: TemplateForm, *, template: StackTemplate | None, **extra: object
) -> HttpResponse:
    context = {"form": form, "template": template, "checked": False, **extra}
    return render(request, "provisioning/template_form.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def template_delete(request: HttpRequest, pk: int) -> HttpResponse:
    """GET: the confirmation step (what the edit page's dialog shows, for browsers without scripts); POST: remove."""
    template = StackTemplate.objects.get_visible(request.user, pk=pk)
    if request.method == "GET":
        return render(request, "provisioning/template_delete.html", {"template": template})
    with errors_as_messages(request):
        templates.template_delete(user=request.user, template=template)
        messages.success(request, f"Template {template.name} removed; stacks launched from it keep running.")
    return redirect("template-list")


@login_required
@require_http_methods(["GET", "POST"])
def template_launch(request: HttpRequest, pk: int) -> HttpResponse:
    """A template's page: its tiers, and the launch dialog's form with its preview (``launch_views``)."""
    template = StackTemplate.objects.get_visible(request.user, pk=pk)
    page = {"diagram": _diagram(template), "may_write": template.project_id is not None or is_operator(request.user)}
    return launch_views.template_launch(request, template, page=page)
