"""Writing stack templates: shared ones by operators, a project's own by its members."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.db import transaction

from portal import audit, errors
from portal.models import Project, Role
from portal.scoping import Account, User, is_operator, require_role
from provisioning.models import StackTemplate
from provisioning.name_rules import TEMPLATE_NAME
from provisioning.templates import parse_template


def _require_writer(user: User, project: Project | None) -> None:
    if project is None:
        if not is_operator(user):
            raise errors.PermissionDenied("only operators may write shared templates")
    else:
        require_role(user, project, Role.MEMBER)


def _check_name(name: str, project: Project | None, *, exclude: int | None = None) -> None:
    TEMPLATE_NAME.check(name)
    taken = StackTemplate.objects.filter(project=project, name=name)
    if exclude is not None:
        taken = taken.exclude(pk=exclude)
    if taken.exists():
        where = f"project '{project.name}'" if project else "the shared catalog"
        raise errors.Invalid.for_field("name", f"{where} already has a template called '{name}'")


def _claim_room(project: Project) -> None:
    """Refuse a template past the project's limit. Inside the creating transaction, with the project's
    row locked, so parallel requests cannot each see room for one more."""
    Project.objects.select_for_update().get(pk=project.pk)
    limit = settings.TEMPLATES_PER_PROJECT
    if StackTemplate.objects.filter(project=project).count() >= limit:
        raise errors.QuotaExceeded(
            f"project '{project.name}' may keep at most {limit} templates; remove one to add another"
        )


def template_create(
    *, user: User, project: Project | None, name: str, source: str, description: str = ""
) -> StackTemplate:
    _require_writer(user, project)
    _check_name(name, project)
    document = parse_template(source)
    with transaction.atomic():
        if project is not None:
            _claim_room(project)
        template = StackTemplate.objects.create(
            project=project,
            name=name,
            description=description or document.description,
            source=source,
            document=document.as_json(),
            created_by=user if isinstance(user, Account) else None,
        )
        audit.record(actor=user, action="template.create", target=template, project=project)
    return template


def template_update(
    *, user: User, template: StackTemplate, name: str, source: str, description: str = ""
) -> StackTemplate:
    """Replace a template's name, text and description. Stacks launched from it keep what they were launched with."""
    _require_writer(user, template.project)
    _check_name(name, template.project, exclude=template.pk)
    document = parse_template(source)
    with transaction.atomic():
        template.name = name
        template.source = source
        template.description = description or document.description
        template.document = document.as_json()
        template.save(update_fields=["name", "source", "description", "document", "updated_at"])
        audit.record(actor=user, action="template.update", target=template, project=template.project)
    return template


def template_delete(*, user: User, template: StackTemplate) -> None:
    _require_writer(user, template.project)
    with transaction.atomic():
        audit.record(actor=user, action="template.delete", target=template, project=template.project)
        template.delete()


SHIPPED_TEMPLATES = Path(__file__).resolve().parent.parent / "stack_templates"


def install_shipped_templates(*, user: User) -> list[StackTemplate]:
    """Create or refresh the shared templates that come with the portal (``provisioning/stack_templates``)."""
    installed = []
    for path in sorted(SHIPPED_TEMPLATES.glob("*.yaml")):
        source = path.read_text()
        existing = StackTemplate.objects.filter(project=None, name=path.stem).first()
        if existing is None:
            installed.append(template_create(user=user, project=None, name=path.stem, source=source))
        elif existing.source != source:
            installed.append(template_update(user=user, template=existing, name=path.stem, source=source))
        else:
            installed.append(existing)
    return installed
