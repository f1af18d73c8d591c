"""What every API viewset shares: scoping to the caller's projects and error translation."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

from portal.scoping import PermissionDeniedForRole, scope_to_user


class ProjectScopedMixin:
    """Restricts ``queryset`` to the caller's projects; rows elsewhere answer 404."""

    project_field = "project"
    include_shared = False

    def get_queryset(self):
        return scope_to_user(
            super().get_queryset(),
            self.request.user,
            project_field=self.project_field,
            include_shared=self.include_shared,
        )


class ServiceError(exceptions.APIException):
    """A service refused the request; ``code`` is a stable machine-readable reason."""

    def __init__(self, detail: str, *, code: str, status_code: int) -> None:
        super().__init__(detail=detail, code=code)
        self.status_code = status_code


def api_exception_handler(exc, context):
    if isinstance(exc, PermissionDeniedForRole):
        exc = exceptions.PermissionDenied(str(exc))
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    elif isinstance(exc, DjangoValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else {"detail": exc.messages}
        return Response(detail, status=status.HTTP_400_BAD_REQUEST)
    return exception_handler(exc, context)
