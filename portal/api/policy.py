"""``GET, PATCH /api/v1/projects/{id}/policy/``: a project's lease policy and webhook.

Everyone in the project reads it; owners (and operators) change it, through the same service as
the policy page (``portal.policy``). Durations are seconds. The webhook's secret is write-only: the
answer says only whether one is set. Its URL often holds a credential of its own (a chat service's
hook), so only those who may change it read it whole; the others see its origin.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from drf_spectacular.utils import extend_schema, extend_schema_field, extend_schema_view
from rest_framework import generics, serializers
from rest_framework.request import Request
from rest_framework.response import Response

from portal import errors, scoping
from portal.api.fields import LeaseSecondsField
from portal.api.validation import StrictRequestSerializer
from portal.models import Project, Role, RunEnd
from portal.policy import (
    MAX_WARNINGS,
    MIN_EXTENSION_SECONDS,
    MIN_IDLE_SECONDS,
    SECRET_MAX_LENGTH,
    SECRET_MIN_LENGTH,
    WARNING_LIMIT_SECONDS,
    project_policy_update,
)

# The API's names of the policy's fields, and the project's.
API_NAMES = {
    "run_lease_seconds": "run_lease",
    "at_run_end": "at_run_end",
    "storage_lease_seconds": "storage_lease",
    "max_extension_seconds": "max_extension",
    "max_lease_seconds": "max_life",
    "warn_before": "warn_before",
    "idle_after_seconds": "idle_after",
    "webhook_url": "webhook_url",
    "webhook_secret": "webhook_secret",
}


class JsonIntegerField(serializers.IntegerField):
    """An integer inside a list: in a JSON body it must be a JSON integer ("60" and 60.0 are refused),
    as ``StrictRequestSerializer`` asks of the body's own fields."""

    def to_internal_value(self, data: Any) -> int:
        in_json = type(getattr(self.root, "initial_data", None)) is dict
        if in_json and (not isinstance(data, int) or isinstance(data, bool)):
            self.fail("invalid")
        return super().to_internal_value(data)


@extend_schema_field(
    {
        "type": "array",
        "items": {"type": "integer", "minimum": 1, "maximum": WARNING_LIMIT_SECONDS - 1},
        "maxItems": MAX_WARNINGS,
        "uniqueItems": True,
    }
)
class WarningsField(serializers.ListField):
    """Seconds before a lease ends at which members are warned: at most 10, each once."""

    def __init__(self, **kwargs: Any) -> None:
        child = JsonIntegerField(min_value=1, max_value=WARNING_LIMIT_SECONDS - 1)
        super().__init__(child=child, max_length=MAX_WARNINGS, **kwargs)

    def to_internal_value(self, data: Any) -> list[int]:
        offsets = super().to_internal_value(data)
        if len(set(offsets)) != len(offsets):
            raise serializers.ValidationError("each warning may be given once")
        return offsets


def _seconds(*, minimum: int, help_text: str, **kwargs: Any) -> serializers.IntegerField:
    return serializers.IntegerField(
        min_value=minimum, max_value=settings.MAX_LEASE_SECONDS, help_text=help_text, **kwargs
    )


class PolicyChangeSerializer(StrictRequestSerializer):
    """What ``PATCH`` takes; fields left out stay as they are."""

    unknown_key = "no such policy field"

    run_lease = LeaseSecondsField(
        subject="the run lease", required=False, help_text="The lease a stack launched without one gets"
    )
    at_run_end = serializers.ChoiceField(
        choices=RunEnd.choices, required=False, help_text="What happens when a running stack's lease ends"
    )
    storage_lease = LeaseSecondsField(
        subject="the storage lease", required=False, help_text="How long a shelved stack is kept"
    )
    max_extension = _seconds(
        minimum=MIN_EXTENSION_SECONDS, required=False, help_text="The longest single extension, counted from asking"
    )
    max_life = LeaseSecondsField(
        subject="the longest life", required=False, help_text="The longest a stack may live, from its creation"
    )
    warn_before = WarningsField(required=False)
    idle_after = _seconds(
        minimum=MIN_IDLE_SECONDS,
        required=False,
        allow_null=True,
        help_text="A stack idle this long is warned, then shelved; null: never",
    )
    webhook_url = serializers.CharField(
        required=False,
        allow_null=True,
        max_length=500,
        help_text="http(s) URL that gets a signed POST per event; null removes the webhook and its secret",
    )
    webhook_secret = serializers.CharField(
        required=False,
        write_only=True,
        trim_whitespace=False,
        min_length=SECRET_MIN_LENGTH,
        max_length=SECRET_MAX_LENGTH,
        help_text="Signs every delivery (X-Portal-Signature: sha256=HMAC of the body); never returned",
    )


class PolicySerializer(serializers.Serializer):
    run_lease = serializers.IntegerField(source="run_lease_seconds")
    at_run_end = serializers.ChoiceField(choices=RunEnd.choices)
    storage_lease = serializers.IntegerField(source="storage_lease_seconds")
    max_extension = serializers.IntegerField(source="max_extension_seconds")
    max_life = serializers.IntegerField(source="max_lease_seconds")
    warn_before = serializers.ListField(child=serializers.IntegerField())
    idle_after = serializers.IntegerField(source="idle_after_seconds", allow_null=True)
    webhook_url = serializers.SerializerMethodField(
        help_text="The webhook's URL (its origin only, for those who may not change it); null: none"
    )
    webhook_secret_set = serializers.SerializerMethodField()

    @extend_schema_field({"type": "string", "nullable": True})
    def get_webhook_url(self, project: Project) -> str | None:
        if not project.webhook_url:
            return None
        if self.context.get("can_change"):
            return project.webhook_url
        parts = urlsplit(project.webhook_url)
        return f"{parts.scheme}://{parts.netloc}/…"

    def get_webhook_secret_set(self, project: Project) -> bool:
        return bool(project.webhook_secret)


@extend_schema_view(
    get=extend_schema(summary="Get a project's lease policy"),
    patch=extend_schema(summary="Change a project's lease policy"),
)
class ProjectPolicyView(generics.GenericAPIView):
    """A project's lease policy: read by everyone in it, changed by its owners."""

    serializer_class = PolicySerializer
    queryset = Project.objects.none()  # the model, for the schema's path parameter; rows come from get_project
    http_method_names = ["get", "patch", "head", "options"]

    def _project(self, pk: int) -> Project:
        return Project.objects.get_visible(self.request.user, pk=pk)

    def _answer(self, project: Project) -> Response:
        can_change = scoping.role_in(self.request.user, project) == Role.OWNER
        return Response(PolicySerializer(project, context={"can_change": can_change}).data)

    @extend_schema(responses={200: PolicySerializer})
    def get(self, request: Request, pk: int) -> Response:
        return self._answer(self._project(pk))

    @extend_schema(request=PolicyChangeSerializer, responses={200: PolicySerializer})
    def patch(self, request: Request, pk: int) -> Response:
        """Change the policy (owners only): ``{"run_lease": 7200, "warn_before": [3600, 600]}``."""
        project = self._project(pk)  # outsiders: 404
        scoping.require_role(request.user, project, Role.OWNER)  # members and viewers: 403, whatever they send
        given = PolicyChangeSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        model_names = {api: model for model, api in API_NAMES.items()}
        changes = {model_names[name]: value for name, value in given.validated_data.items()}
        try:
            project = project_policy_update(user=request.user, project=project, **changes)
        except errors.Invalid as exc:
            # The service names the project's fields (run_lease_seconds); the API names them as in the body.
            raise errors.Invalid(
                exc.detail, fields={API_NAMES.get(name, name): messages for name, messages in exc.fields.items()}
            ) from None
        return self._answer(project)
