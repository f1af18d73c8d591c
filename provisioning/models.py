"""Hosts and what runs on them: stacks, their instances, published ports, progress events."""

from __future__ import annotations

import secrets
import string

from django.conf import settings
from django.db import models

from catalog.models import ApplianceVersion
from portal import errors
from portal.models import Project
from provisioning.endpoints import endpoint_url
from provisioning.host_models import Host as Host  # the app's models, defined apart
from provisioning.host_models import HostImage as HostImage
from provisioning.operation_models import Operation as Operation
from provisioning.querysets import (
    ConsoleTicketQuerySet,
    FlavorQuerySet,
    InstanceQuerySet,
    PublishedPortQuerySet,
    StackEventQuerySet,
    StackNetworkQuerySet,
    StackQuerySet,
    StackTemplateQuerySet,
)


class Status(models.TextChoices):
    PENDING = "pending", "Pending"
    BUILDING = "building", "Building"
    RUNNING = "running", "Running"
    STOPPING = "stopping", "Stopping"
    STOPPED = "stopped", "Stopped"
    STARTING = "starting", "Starting"
    SHELVING = "shelving", "Shelving"
    SHELVED = "shelved", "Shelved"
    UNSHELVING = "unshelving", "Unshelving"
    SNAPSHOTTING = "snapshotting", "Snapshotting"
    REVERTING = "reverting", "Reverting"
    MIGRATING = "migrating", "Moving to another host"
    RESIZING = "resizing", "Resizing"
    DELETING = "deleting", "Deleting"
    DELETED = "deleted", "Deleted"
    ERROR = "error", "Error"


# Statuses in which an instance holds quota, its disk on a host and a place in its host's count.
ACTIVE_STATUSES = tuple(status for status in Status if status != Status.DELETED)
# Of those, the ones in which it also holds vCPUs and memory (quota and host capacity): a shelved
# instance keeps its disks but gives its vCPUs and memory back.
COMPUTE_STATUSES = tuple(status for status in ACTIVE_STATUSES if status != Status.SHELVED)
# Statuses from which a stack may be deleted or have its lease changed: every settled one, and
# the ones of a build (a stack may be deleted while it builds).
SETTLED_STATUSES = (Status.RUNNING, Status.STOPPED, Status.SHELVED, Status.ERROR)
DELETABLE_STATUSES = (Status.PENDING, Status.BUILDING, *SETTLED_STATUSES)
# Statuses in which a background job owns the stack: no other action starts until it is done.
BUSY_STATUSES = (
    Status.STOPPING,
    Status.STARTING,
    Status.SHELVING,
    Status.UNSHELVING,
    Status.SNAPSHOTTING,
    Status.REVERTING,
    Status.MIGRATING,
    Status.RESIZING,
)


def new_vnc_password() -> str:
    """A random VNC password. VNC authentication uses at most 8 characters (a DES key)."""
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(8))


def _limit(verbose_name: str) -> models.PositiveBigIntegerField:
    return models.PositiveBigIntegerField(null=True, blank=True, verbose_name=verbose_name, help_text="Empty: no limit")


class Flavor(models.Model):
    """A named size (vCPUs, RAM, disk) that templates may use instead of numbers; shared when it has no project."""

    project = models.ForeignKey(Project, null=True, blank=True, on_delete=models.CASCADE, related_name="flavors")
    name = models.CharField(max_length=50)
    vcpus = models.PositiveIntegerField(verbose_name="virtual CPUs")
    memory_mib = models.PositiveIntegerField(verbose_name="memory (MiB)")
    disk_gib = models.PositiveIntegerField(verbose_name="disk (GiB)")
    # Quality of service (provisioning.qos): each limit is libvirt's own (<iotune>, <bandwidth>,
    # <cputune>), copied into an instance's ``qos`` at launch; empty means no limit.
    disk_read_bytes_sec = _limit("disk reads (bytes/s)")
    disk_write_bytes_sec = _limit("disk writes (bytes/s)")
    disk_read_iops_sec = _limit("disk reads (operations/s)")
    disk_write_iops_sec = _limit("disk writes (operations/s)")
    net_inbound_kib_sec = _limit("network in (KiB/s)")
    net_outbound_kib_sec = _limit("network out (KiB/s)")
    cpu_shares = models.PositiveIntegerField(
        null=True,
        blank=True,
        verbose_name="CPU shares",
        help_text="Its weight when guests compete for the host's CPUs (libvirt's default is 1024 per vCPU)",
    )
    dedicated_cpus = models.BooleanField(
        default=False,
        verbose_name="dedicated CPUs",
        help_text="Each vCPU pinned to a physical CPU of its own, from the host's dedicated CPU set",
    )

    objects = FlavorQuerySet.as_manager()

    class Meta:
        ordering = ["vcpus", "memory_mib", "name"]
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="one_flavor_name_per_project"),
            models.UniqueConstraint(
                fields=["name"], condition=models.Q(project__isnull=True), name="one_shared_flavor_name"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.vcpus} vCPU, {self.memory_mib} MiB, {self.disk_gib} GiB)"


class StackTemplate(models.Model):
    """A document listing a stack's tiers (see ``provisioning.templates``); shared when it has no project."""

    project = models.ForeignKey(Project, null=True, blank=True, on_delete=models.CASCADE, related_name="templates")
    name = models.CharField(max_length=63)
    description = models.TextField(blank=True)
    source = models.TextField(help_text="The document as written (YAML or JSON)")
    document = models.JSONField(help_text="The validated document")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True, verbose_name="created")
    updated_at = models.DateTimeField(auto_now=True, verbose_name="last changed")

    objects = StackTemplateQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="one_template_name_per_project"),
            models.UniqueConstraint(
                fields=["name"], condition=models.Q(project__isnull=True), name="one_shared_template_name"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Stack(models.Model):
    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="stacks")
    template = models.ForeignKey(StackTemplate, null=True, blank=True, on_delete=models.SET_NULL, related_name="stacks")
    # The tiers as launched: later edits of the template do not change a stack that exists.
    document = models.JSONField(default=dict, blank=True, verbose_name="template document")
    name = models.CharField(max_length=63)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True)
    status_reason = models.TextField(blank=True, verbose_name="status details")
    created_at = models.DateTimeField(auto_now_add=True, verbose_name="launched")
    updated_at = models.DateTimeField(auto_now=True, verbose_name="last changed")
    expires_at = models.DateTimeField(db_index=True, verbose_name="lease ends")
    running_at = models.DateTimeField(null=True, blank=True, verbose_name="running since")
    deleted_at = models.DateTimeField(null=True, blank=True, verbose_name="deleted")
    # Deletes that failed in a row, and when the lease sweep may try again (growing pauses, so a
    # host that stays away is not asked every minute); see provisioning.services.lifecycle.
    teardown_failures = models.PositiveIntegerField(default=0, verbose_name="failed teardowns")
    teardown_retry_at = models.DateTimeField(null=True, blank=True, verbose_name="next teardown attempt")
    # While a job owns the stack (``BUSY_STATUSES``): the settled status it came from, which it goes
    # back to when the job fails or is found dead.
    status_before = models.CharField(
        max_length=16, choices=Status.choices, blank=True, verbose_name="status before the current action"
    )
    # Set while shelved: when, and whether its guests' memory was kept (a managed save on its host).
    shelved_at = models.DateTimeField(null=True, blank=True, verbose_name="shelved")
    shelved_with_memory = models.BooleanField(default=False)
    # A weekly schedule (``provisioning.stack_schedules``): shelved when it says down, unshelved when
    # up; ``schedule_state`` is what it wanted at the last sweep ("up", "down", "" before the first).
    schedule = models.JSONField(null=True, blank=True)
    schedule_state = models.CharField(max_length=4, blank=True)
    # While an unshelve moves the stack to another host (``services.stack_move``): the host its disks
    # are copied from, which keeps them (the reconciler counts them as claimed) until the move ends.
    moving_from = models.ForeignKey(
        Host,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="stacks_moving_away",
        verbose_name="moving from host",
    )

    objects = StackQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name


class Instance(models.Model):
    stack = models.ForeignKey(Stack, on_delete=models.CASCADE, related_name="instances")
    name = models.CharField(max_length=63)
    role = models.CharField(max_length=30, verbose_name="tier")
    # Empty once a deleted stack's feed was removed: a feed may go when no live instance uses it.
    appliance_version = models.ForeignKey(
        ApplianceVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="instances"
    )
    host = models.ForeignKey(Host, null=True, blank=True, on_delete=models.PROTECT, related_name="instances")
    vcpus = models.PositiveIntegerField(verbose_name="virtual CPUs")
    memory_mib = models.PositiveIntegerField(verbose_name="memory (MiB)")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True)
    status_reason = models.TextField(blank=True, verbose_name="status details")
    disk_gib = models.PositiveIntegerField(
        default=0, help_text="Size of the overlay disk; 0: the image's own", verbose_name="disk (GiB)"
    )
    domain_name = models.CharField(max_length=100, blank=True, verbose_name="libvirt domain")
    volume_name = models.CharField(max_length=200, blank=True, verbose_name="disk volume")
    config_volume_name = models.CharField(
        max_length=200, blank=True, help_text="Its NoCloud config drive", verbose_name="config drive volume"
    )
    address = models.GenericIPAddressField(null=True, blank=True, help_text="On the stack network")
    mac_address = models.CharField(
        max_length=17, blank=True, help_text="Of its NIC on the stack network", verbose_name="MAC address"
    )
    vnc_port = models.PositiveIntegerField(null=True, blank=True, verbose_name="VNC port")
    # Known to the portal and its console proxy only (never serialised, never shown): the proxy does the
    # VNC authentication itself. Empty for domains defined before consoles had passwords.
    vnc_password = models.CharField(
        max_length=8, blank=True, default=new_vnc_password, editable=False, verbose_name="VNC password"
    )
    # Its flavor's quality-of-service limits at launch (provisioning.qos), written into its domain.
    qos = models.JSONField(default=dict, blank=True, verbose_name="quality of service")
    pinned_cpus = models.CharField(
        max_length=200,
        blank=True,
        verbose_name="pinned CPUs",
        help_text="Physical CPUs its vCPUs are pinned to (a dedicated flavor)",
    )
    restart_needed = models.BooleanField(
        default=False,
        help_text="Resized while it ran, beyond what could change live: the new size takes effect at its next start",
    )

    objects = InstanceQuerySet.as_manager()

    class Meta:
        ordering = ["stack", "id"]

    def __str__(self) -> str:
        return self.name

    @property
    def live_version(self) -> ApplianceVersion:
        """The appliance version this instance was built from. Only a deleted stack's instances can have
        lost theirs (its feed removed since), and no build, move or copy reads it for them."""
        version = self.appliance_version
        if version is None:
            raise errors.WrongState(f"instance '{self.name}' no longer has the appliance version it was built from")
        return version

    @property
    def project(self) -> Project:
        return self.stack.project


class StackSnapshot(models.Model):
    """A snapshot of every tier of a stack taken at one moment (the guests paused together).

    Each instance's domain holds a libvirt snapshot named ``libvirt_name``; ``size_bytes`` is what
    they take on their hosts' pools, counted against the project's disk quota.
    """

    class State(models.TextChoices):
        CREATING = "creating", "Creating"
        READY = "ready", "Ready"
        FAILED = "failed", "Failed"
        DELETING = "deleting", "Deleting"

    stack = models.ForeignKey(Stack, on_delete=models.CASCADE, related_name="snapshots")
    name = models.CharField(max_length=63)
    libvirt_name = models.CharField(max_length=100, verbose_name="libvirt snapshot")
    memory = models.BooleanField(default=False, help_text="Whether the guests' memory is in it (a revert resumes them)")
    # Whether the stack ran when it was taken: a revert without memory boots it only then.
    taken_running = models.BooleanField(default=True)
    status = models.CharField(max_length=10, choices=State.choices, default=State.CREATING)
    status_reason = models.TextField(blank=True, verbose_name="status details")
    size_bytes = models.BigIntegerField(default=0, verbose_name="size (bytes)")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True, verbose_name="taken")

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["stack", "name"], name="one_snapshot_name_per_stack")]

    def __str__(self) -> str:
        return f"{self.stack}: {self.name}"


class PublishedPort(models.Model):
    """A guest port reachable at host.public_address:host_port. The row is the reservation."""

    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="published_ports")
    host = models.ForeignKey(Host, on_delete=models.CASCADE, related_name="published_ports")
    host_port = models.PositiveIntegerField()
    guest_port = models.PositiveIntegerField()
    # When the guest first answered on this port since its instance last started (None: not yet);
    # a running stack's endpoint is only offered as ready from then on.
    ready_at = models.DateTimeField(null=True, blank=True, verbose_name="first answered")
    # When the portal last tried the port, answered or not.
    probed_at = models.DateTimeField(null=True, blank=True, verbose_name="last probed")

    objects = PublishedPortQuerySet.as_manager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["host", "host_port"], name="one_reservation_per_port")]

    def __str__(self) -> str:
        return f"{self.host.public_address}:{self.host_port} -> {self.instance}:{self.guest_port}"

    @property
    def url(self) -> str:
        # On a host name of the endpoints' own, never the portal's (provisioning.endpoints says why).
        return endpoint_url(host=self.host, host_port=self.host_port, guest_port=self.guest_port)


class StackNetwork(models.Model):
    """A stack's private network: an isolated libvirt network on the stack's host, with no host address."""

    stack = models.OneToOneField(Stack, on_delete=models.CASCADE, related_name="network")
    host = models.ForeignKey(Host, on_delete=models.PROTECT, related_name="stack_networks")
    name = models.CharField(max_length=100)
    cidr = models.CharField(
        max_length=43, help_text="The subnet the portal hands addresses out of", verbose_name="subnet (CIDR)"
    )
    # Set when the network is gone from the host; the subnet is free again.
    released_at = models.DateTimeField(null=True, blank=True, verbose_name="released")

    objects = StackNetworkQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["host", "cidr"], condition=models.Q(released_at__isnull=True), name="one_live_subnet_per_host"
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.cidr})"


class StackEvent(models.Model):
    """A line of progress shown on the stack page (image download, upload, boot...)."""

    stack = models.ForeignKey(Stack, on_delete=models.CASCADE, related_name="events")
    created_at = models.DateTimeField(auto_now_add=True, verbose_name="when")
    message = models.CharField(max_length=500)
    # A moment the message speaks of ("lease renewed until" ...), kept as data: pages and the API
    # render it in the reader's time zone, after the message.
    moment = models.DateTimeField(null=True, blank=True)
    # Who asked for what the line reports; None when the portal did it on its own (a lease that ran
    # out, a worker's retry).
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    is_error = models.BooleanField(default=False, verbose_name="error")

    objects = StackEventQuerySet.as_manager()

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return self.message


class ConsoleTicket(models.Model):
    """A console ticket and, once redeemed, the console session it opened (see ``provisioning.consoles``).

    Only the SHA-256 digest of the ticket is stored. A ticket opens one websocket, once, before
    ``expires_at``; the row then records the session: from where, when it opened and closed.
    """

    class Kind(models.TextChoices):
        VNC = "vnc", "VNC (screen)"
        SERIAL = "serial", "Serial console"

    digest = models.CharField(max_length=64, unique=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="console_tickets")
    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="console_tickets")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(help_text="The socket must be opened before this")
    used_at = models.DateTimeField(null=True, blank=True, help_text="When the ticket was presented (once)")
    opened_at = models.DateTimeField(null=True, blank=True, help_text="When the console session began")
    closed_at = models.DateTimeField(null=True, blank=True)
    last_seen_at = models.DateTimeField(null=True, blank=True, help_text="Heartbeat of an open session")
    client_address = models.CharField(max_length=45, blank=True)
    # The user's session auth hash (an HMAC of the password hash) when the ticket was issued: a
    # password change ends the console as it ends the user's other sessions.
    user_auth_hash = models.CharField(max_length=128, blank=True)

    objects = ConsoleTicketQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["user", "closed_at"], name="console_open_per_user")]

    def __str__(self) -> str:
        return f"{self.kind} console of {self.instance} for {self.user}"


class StackActivity(models.Model):
    """What the idle sweep last saw of a running stack (``provisioning.services.idle``).

    Kept only while the stack runs in a project that shelves idle stacks: any other status drops
    the row, so counters from before a stop or a shelve never judge the stack afterwards.
    """

    class Kind(models.TextChoices):
        CPU = "cpu", "CPU use"
        CONSOLE = "console", "A console session"
        CONNECTION = "connection", "A connection to a published port"

    stack = models.OneToOneField(Stack, on_delete=models.CASCADE, related_name="activity")
    sampled_at = models.DateTimeField(help_text="When its guests were last sampled")
    # CPU time each guest had used at ``sampled_at`` (ns), by instance id: the next sample's baseline.
    cpu_ns = models.JSONField(default=dict, blank=True)
    last_active_at = models.DateTimeField(help_text="When it was last seen in use (or first sampled)")
    last_activity = models.CharField(max_length=10, choices=Kind.choices, blank=True)
    idle_warned_at = models.DateTimeField(null=True, blank=True)
    idle_shelve_at = models.DateTimeField(null=True, blank=True, help_text="When the warning said it would be shelved")

    class Meta:
        verbose_name_plural = "stack activities"

    def __str__(self) -> str:
        return f"activity of {self.stack}"
