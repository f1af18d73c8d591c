from __future__ import annotations

import json

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from catalog.selectors import appliance_version_for_launch, appliances_visible_to
from portal.api.fields import LeaseSecondsField, NameField, ScopedPrimaryKeyField
from portal.api.validation import ExactlyOneOf, StrictRequestSerializer
from portal.models import Project
from provisioning import qos
from provisioning.api.template_schema import StoredDocumentField, TemplateDocumentField
from provisioning.endpoint_states import instance_endpoint_states, stack_endpoint_states
from provisioning.lease_policy import extendable_until, latest_end
from provisioning.models import Flavor, Host, Instance, Stack, StackEvent, StackSnapshot, StackTemplate, Status
from provisioning.name_rules import SNAPSHOT_NAME, STACK_NAME, TEMPLATE_NAME
from provisioning.stack_schedules import DAYS, MAX_WINDOWS
from provisioning.template_limits import MAX_SOURCE_BYTES
from provisioning.templates import validate_document


class EndpointSerializer(serializers.Serializer):
    role = serializers.CharField()
    guest_port = serializers.IntegerField()
    url = serializers.CharField()
    ready = serializers.BooleanField(
        help_text="Whether the guest answers there: true once it first answered since its instance last started, "
        "while the stack runs"
    )
    ready_at = serializers.DateTimeField(
        allow_null=True,
        help_text="When the guest first answered there since its instance last started; null until ready",
    )


class InstanceSerializer(serializers.ModelSerializer):
    host = serializers.CharField(source="host.name", default=None, read_only=True)
    endpoints = serializers.SerializerMethodField(help_text="The instance's published ports")
    # Null once a deleted stack's feed was removed.
    appliance_version = serializers.StringRelatedField(read_only=True, allow_null=True)

    class Meta:
        model = Instance
        fields = [
            "id",
            "name",
            "role",
            "status",
            "status_reason",
            "host",
            "address",
            "vcpus",
            "memory_mib",
            "disk_gib",
            "appliance_version",
            "endpoints",
            "qos",
            "pinned_cpus",
        ]
        extra_kwargs = {
            "qos": {"help_text": "Its flavor's quality-of-service limits at launch (empty: none), under host ceilings"},
            "pinned_cpus": {"help_text": "The host CPU each vCPU is pinned to, in vCPU order (a dedicated flavor)"},
        }

    @extend_schema_field(EndpointSerializer(many=True))
    def get_endpoints(self, instance: Instance) -> list[dict]:
        return EndpointSerializer(instance_endpoint_states(instance), many=True).data


class StackSerializer(serializers.ModelSerializer):
    instances = InstanceSerializer(many=True, read_only=True)
    endpoints = serializers.SerializerMethodField()
    at_lease_end = serializers.SerializerMethodField(
        help_text="What happens at expires_at: 'shelve' or 'delete' (a shelved stack's storage lease deletes it)"
    )
    extendable_until = serializers.SerializerMethodField(
        help_text="How far an extension asked for now could take expires_at (the policy's longest extension "
        "from now, within the longest life)"
    )
    latest_end = serializers.SerializerMethodField(help_text="The end of the stack's longest life (max_life)")

    class Meta:
        model = Stack
        fields = [
            "id",
            "name",
            "project",
            "template",
            "status",
            "status_reason",
            "created_at",
            "running_at",
            "expires_at",
            "at_lease_end",
            "extendable_until",
            "latest_end",
            "shelved_at",
            "schedule",
            "deleted_at",
            "endpoints",
            "instances",
        ]

    @extend_schema_field(EndpointSerializer(many=True))
    def get_endpoints(self, stack: Stack) -> list[dict]:
        return EndpointSerializer(stack_endpoint_states(stack), many=True).data

    def get_at_lease_end(self, stack: Stack) -> str:
        if stack.status in (Status.RUNNING, Status.STOPPED):
            return str(stack.project.at_run_end)
        return "delete"

    def get_extendable_until(self, stack: Stack) -> str:
        return serializers.DateTimeField().to_representation(extendable_until(stack))

    def get_latest_end(self, stack: Stack) -> str:
        return serializers.DateTimeField().to_representation(latest_end(stack))


class StackEventSerializer(serializers.ModelSerializer):
    """A line of a stack's progress. ``moment`` is the instant the message speaks of ("lease renewed
    until"), kept apart from the words; ``actor`` is who asked (null: the portal on its own)."""

    actor = serializers.CharField(
        source="actor.username",
        default=None,
        allow_null=True,
        read_only=True,
        help_text="Who asked; null when the portal acted on its own (a lease that ran out, a schedule)",
    )

    class Meta:
        model = StackEvent
        fields = ["id", "created_at", "message", "moment", "is_error", "actor"]


class SnapshotSerializer(serializers.ModelSerializer):
    created_by = serializers.CharField(source="created_by.username", default=None, read_only=True)

    class Meta:
        model = StackSnapshot
        fields = ["id", "name", "memory", "status", "status_reason", "size_bytes", "created_by", "created_at"]


class SnapshotCreateSerializer(StrictRequestSerializer):
    name = NameField(rule=SNAPSHOT_NAME)
    memory = serializers.BooleanField(
        default=False, help_text="Save the guests' memory too: a revert resumes them where they were"
    )


class ScheduleWindowSerializer(serializers.Serializer):
    days = serializers.ListField(child=serializers.ChoiceField(choices=list(DAYS)), min_length=1, max_length=7)
    up = serializers.RegexField(r"^([01][0-9]|2[0-3]):[0-5][0-9]$", help_text="HH:MM, local time")
    down = serializers.RegexField(r"^([01][0-9]|2[0-3]):[0-5][0-9]$", help_text="HH:MM; before 'up': the next day")


class ScheduleSerializer(serializers.Serializer):
    """For the schema: the service validates (``provisioning.stack_schedules``)."""

    time_zone = serializers.CharField(default="UTC", help_text="IANA time zone, e.g. Europe/Paris")
    windows = ScheduleWindowSerializer(many=True, allow_empty=False, max_length=MAX_WINDOWS)


class ShelveSerializer(StrictRequestSerializer):
    memory = serializers.BooleanField(
        default=True, help_text="Save the guests' memory on the host, so unshelving resumes them (faster)"
    )


class StackCreateSerializer(ExactlyOneOf):
    """Either ``template`` (every tier of it) or ``appliance`` (a one-tier stack), not both."""

    exactly_one_of = ("template", "appliance")
    exactly_one_of_message = "give a template or an appliance (one of them)"

    name = NameField(rule=STACK_NAME)
    project = ScopedPrimaryKeyField(scope=Project.objects.visible_to)
    template = ScopedPrimaryKeyField(scope=StackTemplate.objects.visible_to, required=False)
    appliance = ScopedPrimaryKeyField(scope=appliances_visible_to, required=False)
    version = serializers.CharField(
        required=False, max_length=50, help_text="Appliance version; the newest when omitted"
    )
    lease = LeaseSecondsField(required=False, help_text="Lease in seconds")

    def validate(self, attrs: dict) -> dict:
        attrs = super().validate(attrs)
        if "appliance" in attrs:
            attrs["appliance_version"] = appliance_version_for_launch(
                user=self.context["request"].user, appliance=attrs["appliance"], version=attrs.get("version")
            )
        return attrs


class TemplateSerializer(serializers.ModelSerializer):
    document = StoredDocumentField(read_only=True)

    class Meta:
        model = StackTemplate
        fields = ["id", "name", "project", "description", "source", "document", "created_at", "updated_at"]


class TemplateWriteSerializer(ExactlyOneOf):
    """``source`` is the document as YAML or JSON text; ``document`` the same as a JSON object."""

    exactly_one_of = ("source", "document")
    exactly_one_of_message = "give the template as 'source' text or as 'document'"

    name = NameField(rule=TEMPLATE_NAME)
    project = ScopedPrimaryKeyField(
        scope=Project.objects.visible_to,
        required=False,
        allow_null=True,
        help_text="Leave empty (operators only) for a shared template",
    )
    description = serializers.CharField(required=False, allow_blank=True, max_length=1000, default="")
    source = serializers.CharField(required=False, max_length=MAX_SOURCE_BYTES, trim_whitespace=False)
    document = TemplateDocumentField(required=False)

    def validate(self, attrs: dict) -> dict:
        attrs = super().validate(attrs)
        if "document" in attrs:
            document = attrs.pop("document")
            # Checked before it is written out as text: its problems are named by their paths, and
            # json.dumps never meets what it cannot write (nesting deep enough to exhaust the stack).
            validate_document(document, versions_as_text=True)
            attrs["source"] = json.dumps(document, indent=2)
        return attrs


class LeaseSerializer(StrictRequestSerializer):
    lease = LeaseSecondsField(help_text="Seconds from now until the stack is destroyed")
    shorten = serializers.BooleanField(
        default=False, help_text="Required to set an end earlier than the current one; refused otherwise"
    )


def _limit_problems(attrs: dict, names: tuple[str, ...]) -> None:
    problems = {name: problem for name in names if (problem := qos.limit_problem(name, attrs.get(name)))}
    if problems:
        raise serializers.ValidationError(problems)


class HostSerializer(serializers.ModelSerializer):
    """A host's settings (with its quality-of-service ceilings and dedicated CPU set) and what is observed."""

    class Meta:
        model = Host
        fields = ["id", *Host.SETTABLE_FIELDS, *Host.OBSERVED_FIELDS]
        read_only_fields = Host.OBSERVED_FIELDS

    def validate_dedicated_cpu_set(self, value: str) -> str:
        host_cpus = self.instance.cpus if isinstance(self.instance, Host) else 0
        problem = qos.cpu_set_problem(value, host_cpus=host_cpus)
        if problem:
            raise serializers.ValidationError(problem)
        return value

    def validate(self, attrs: dict) -> dict:
        _limit_problems(attrs, ("disk_bytes_sec_ceiling", "disk_iops_sec_ceiling", "net_kib_sec_ceiling"))
        return attrs


class FlavorSerializer(serializers.ModelSerializer):
    """A named size and its quality of service: each limit is copied into an instance at launch."""

    class Meta:
        model = Flavor
        fields = ["id", "name", "project", "vcpus", "memory_mib", "disk_gib", *qos.QOS_FIELDS]
        read_only_fields = ["project"]  # null: shared by every project

    def validate(self, attrs: dict) -> dict:
        _limit_problems(attrs, (*qos.LIMIT_FIELDS, "cpu_shares"))
        return attrs
