"""Web pages for stack templates: list, write, remove, and launch one in a click. Thin: services do the work."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from catalog.paging import page_of
from portal import errors
from portal.scoping import is_operator
from portal.web_errors import errors_as_messages, errors_on
from provisioning.diagram import Diagram, tier_diagram
from provisioning.forms import TemplateForm, TemplateLaunchForm
from provisioning.models import StackTemplate
from provisioning.services import launch, templates
from provisioning.templates import TemplateDocument

NOT_SAVED = "The template was not saved: the form says why."


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
    form = TemplateForm(request.POST or None, user=request.user)
    if request.method == "POST":
        if form.is_valid():
            with errors_on(form):
                template = templates.template_create(user=request.user, **form.cleaned_data)
                messages.success(request, f"Template {template.name} saved.")
                return redirect("template-list")
        messages.error(request, NOT_SAVED)
    return render(request, "provisioning/template_form.html", {"form": form, "template": None})


@login_required
def template_edit(request: HttpRequest, pk: int) -> HttpResponse:
    template = StackTemplate.objects.get_visible(request.user, pk=pk)
    initial = {"name": template.name, "project": template.project, "description": template.description}
    form = TemplateForm(request.POST or None, user=request.user, initial={**initial, "source": template.source})
    form.fields["project"].disabled = True  # chosen once; see the admin
    if request.method == "POST":
        if form.is_valid():
            data = {key: form.cleaned_data[key] for key in ("name", "source", "description")}
            with errors_on(form):
                templates.template_update(user=request.user, template=template, **data)
                messages.success(request, f"Template {template.name} saved.")
                return redirect("template-list")
        messages.error(request, NOT_SAVED)
    return render(request, "provisioning/template_form.html", {"form": form, "template": template})


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
def template_launch(request: HttpRequest, pk: int) -> HttpResponse:
    template = StackTemplate.objects.get_visible(request.user, pk=pk)
    form = TemplateLaunchForm(request.POST or None, user=request.user, initial={"project": template.project})
    if request.method == "POST":
        if form.is_valid():
            with errors_on(form):
                stack = launch.stack_launch_template(user=request.user, template=template, **form.cleaned_data)
                messages.success(request, f"Stack {stack.name} is being built.")
                return redirect("stack-detail", pk=stack.pk)
        messages.error(request, "The stack was not launched: the form says why.")
    context = {
        "form": form,
        "template": template,
        "diagram": _diagram(template),
        "may_write": template.project_id is not None or is_operator(request.user),
    }
    return render(request, "provisioning/template_launch.html", context)
