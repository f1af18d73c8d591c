"""Tenancy: projects, who belongs to them with which role, and the audit trail."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.conf import settings
from django.db import models
from django.db.models import OuterRef, Subquery, Value

from portal.actors import actor_name
from portal.moments import moment_text
from portal.querysets import ProjectScopedQuerySet

if TYPE_CHECKING:
    from portal.scoping import User


class Role(models.TextChoices):
    VIEWER = "viewer", "Viewer"
    MEMBER = "member", "Member"
    OWNER = "owner", "Owner"

    @property
    def rank(self) -> int:
        # Roles are ordered: every right of a viewer is a member's too, and an owner's.
        return [Role.VIEWER, Role.MEMBER, Role.OWNER].index(self)


class RunEnd(models.TextChoices):
    SHELVE = "shelve", "Shelve it"
    DELETE = "delete", "Delete it"


def default_warnings() -> list[int]:
    """A day, an hour and ten minutes before a lease ends."""
    return [24 * 3600, 3600, 600]


class ProjectQuerySet(ProjectScopedQuerySet["Project"]):
    project_path = "pk"

    def with_role(self, user: User) -> ProjectQuerySet:
        """The user's projects, each annotated with ``user_role`` (operators count as owners everywhere)."""
        from portal.scoping import is_operator

        if is_operator(user):
            role = Value(Role.OWNER.value)
        else:
            role = Subquery(Membership.objects.filter(project=OuterRef("pk"), user=user).values("role")[:1])
        return self.visible_to(user).annotate(user_role=role)


class Project(models.Model):
    """A tenant. Every resource users create belongs to exactly one project."""

    name = models.CharField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True, verbose_name="created")
    # Quotas: the most a project may hold at once (claimed under a row lock at launch).
    max_instances = models.PositiveIntegerField(
        default=10, verbose_name="most instances", help_text="Instances the project may hold at once"
    )
    max_vcpus = models.PositiveIntegerField(
        default=16, verbose_name="most vCPUs", help_text="Virtual CPUs its instances may hold at once"
    )
    max_memory_mib = models.PositiveIntegerField(
        default=16 * 1024, verbose_name="most memory (MiB)", help_text="Memory its instances may hold at once"
    )
    max_stacks = models.PositiveIntegerField(
        default=5, verbose_name="most stacks", help_text="Stacks the project may hold at once"
    )
    max_disk_gib = models.PositiveIntegerField(
        default=200, verbose_name="most disk (GiB)", help_text="Disk its instances may hold at once"
    )
    # Exported images (disks and OVAs) kept for download at once, in GiB.
    max_export_gib = models.PositiveIntegerField(
        default=50, verbose_name="most exports (GiB)", help_text="Exported images kept for download at once"
    )
    # The secret in the URL of the project's own VMcast (its uploads and captures, served to other
    # portals); empty while none was made. Replacing it revokes every URL handed out.
    vmcast_token = models.CharField(
        max_length=64,
        blank=True,
        verbose_name="VMcast feed token",
        help_text="The secret in the address of the project's own VMcast feed; a new one revokes every old address",
    )
    max_lease_seconds = models.PositiveIntegerField(
        default=7 * 24 * 3600,
        help_text="The longest life of a stack, counted from its creation (the API's max_life)",
        verbose_name="longest lease (seconds)",
    )
    # The lease policy: what a stack's lease is and what happens when it runs out.
    run_lease_seconds = models.PositiveIntegerField(
        default=4 * 3600,
        help_text="The lease a stack launched without one gets",
        verbose_name="default lease (seconds)",
    )
    at_run_end = models.CharField(
        max_length=10,
        choices=RunEnd.choices,
        default=RunEnd.SHELVE,
        help_text="What happens when a running stack's lease ends",
        verbose_name="when a lease ends",
    )
    storage_lease_seconds = models.PositiveIntegerField(
        default=7 * 24 * 3600,
        help_text="How long a shelved stack is kept, counted from its shelving",
        verbose_name="longest shelving (seconds)",
    )
    max_extension_seconds = models.PositiveIntegerField(
        default=24 * 3600,
        help_text="The longest single extension of a lease, counted from the moment of asking",
        verbose_name="longest extension (seconds)",
    )
    warn_before = models.JSONField(
        default=default_warnings,
        help_text="Seconds before a lease ends at which members are warned",
        verbose_name="lease warnings (seconds before the end)",
    )
    idle_after_seconds = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="A stack idle this long is warned, then shelved; empty: never",
        verbose_name="idle after (seconds)",
    )
    webhook_url = models.URLField(
        max_length=500,
        blank=True,
        verbose_name="webhook URL",
        help_text="Where the project's events are posted; empty: nowhere",
    )
    webhook_secret = models.CharField(
        max_length=200,
        blank=True,
        verbose_name="webhook secret",
        help_text="Signs each webhook body, so the receiver can tell it came from this portal",
    )

    members = models.ManyToManyField(settings.AUTH_USER_MODEL, through="Membership", related_name="projects")

    objects = ProjectQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class MembershipQuerySet(ProjectScopedQuerySet["Membership"]):
    project_path = "project"


class Membership(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)
    created_at = models.DateTimeField(auto_now_add=True, verbose_name="added")

    objects = MembershipQuerySet.as_manager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "user"], name="one_membership_per_user")]
        ordering = ["project__name", "user__username"]

    def __str__(self) -> str:
        return f"{self.user} in {self.project} as {self.role}"


class AuditEvent(models.Model):
    """Who did what to which object; written by services, read by operators in the admin."""

    created_at = models.DateTimeField(auto_now_add=True, db_index=True, verbose_name="when")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    project = models.ForeignKey(Project, null=True, blank=True, on_delete=models.SET_NULL)
    action = models.CharField(max_length=64)
    target = models.CharField(max_length=200)
    detail = models.JSONField(default=dict, blank=True, verbose_name="details")

    class Meta:
        ordering = ["-created_at"]
        # /metrics counts lease actions by action on every scrape.
        indexes = [models.Index(fields=["action"], name="audit_action")]

    def __str__(self) -> str:
        return f"{moment_text(self.created_at)} {actor_name(self.actor)} {self.action} {self.target}"


class ApiToken(models.Model):
    """A bearer token for the API. Only its SHA-256 digest is stored; the secret is shown once."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100, blank=True)
    prefix = models.CharField(max_length=8, help_text="First characters of the secret, to tell tokens apart")
    digest = models.CharField(max_length=64, unique=True, verbose_name="SHA-256 digest of the secret")
    created_at = models.DateTimeField(auto_now_add=True, verbose_name="created")
    last_used_at = models.DateTimeField(null=True, blank=True, verbose_name="last used")
    expires_at = models.DateTimeField(verbose_name="expires")

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API token"
        verbose_name_plural = "API tokens"

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.user})"
