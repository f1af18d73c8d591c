"""What the admin pages share so that operators change state only through the services.

- ``ObservedOnlyAdmin`` and ``ObservedOnlyInline``: state the portal owns (instances, ports, base
  volumes...) is shown, never added, edited or deleted by hand.
- ``ServiceForm``: an admin form whose save is a service call, made while the form is validated so
  that a refusal (the last owner leaving, an unreachable host) shows on the form like any error.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import Model
from django.http import HttpRequest

from portal import errors
from portal.web_errors import add_to_form


class _LookOnly:
    """Refuses every write Django's admin could make on its own."""

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


class ObservedOnlyAdmin(_LookOnly, admin.ModelAdmin):
    """Rows the portal writes itself: operators may look but not touch."""

    def get_readonly_fields(self, request: HttpRequest, obj: Model | None = None) -> list[str]:
        # Every field as plain text: no form field is built for a form nobody may submit.
        return [field.name for field in self.model._meta.fields]


class ObservedOnlyInline(_LookOnly, admin.TabularInline):
    """Related rows shown on their parent's page, read-only (see ``ObservedOnlyAdmin``)."""

    extra = 0
    can_delete = False
    show_change_link = True


class ServiceForm(forms.ModelForm):
    """Subclasses implement ``save_through_service``; the admin's own save then has nothing left to do."""

    request: HttpRequest

    def save_through_service(self, cleaned: dict[str, Any]) -> Model:
        raise NotImplementedError

    def _post_clean(self) -> None:
        super()._post_clean()
        if self.errors:
            return
        try:
            self.instance = self.save_through_service(self.cleaned_data)
        except errors.PortalError as exc:
            add_to_form(self, exc)

    def save(self, commit: bool = True) -> Model:
        return self.instance  # saved by the service during validation


class ServiceFormAdmin(admin.ModelAdmin):
    """Hands the request to its ``ServiceForm`` (services need the acting user) and skips Django's save."""

    def get_form(self, request: HttpRequest, obj: Model | None = None, change: bool = False, **kwargs: Any):
        form_class = super().get_form(request, obj, change=change, **kwargs)
        return type(form_class.__name__, (form_class,), {"request": request})

    def save_model(self, request: HttpRequest, obj: Model, form: forms.ModelForm, change: bool) -> None:
        pass  # the form's service call saved it

    def save_related(self, request: HttpRequest, form: forms.ModelForm, formsets: Any, change: bool) -> None:
        pass

    def construct_change_message(self, request: HttpRequest, form: Any, formsets: Any, add: bool = False) -> Any:
        # Inlines here are read-only (state the portal owns) and never saved by this admin, so their
        # formsets have no saved objects to describe; Django's own message would fail on them.
        return super().construct_change_message(request, form, [], add)
