"""Hosts the portal places stacks on, and the base images it keeps on each (re-exported by
``provisioning.models``, where the rest of the app's models live)."""

from __future__ import annotations

from django.db import models

from catalog.models import CachedImage


class Host(models.Model):
    """A libvirt host. The portal only ever talks to it through ``uri`` and the driver."""

    # What operators set (through the host services); everything else is observed.
    SETTABLE_FIELDS = (
        "name",
        "uri",
        "domain_type",
        "enabled",
        "storage_pool",
        "storage_pool_path",
        "public_address",
        "cpu_overcommit",
        "memory_overcommit",
        "memory_reserved_mib",
        "disk_overcommit",
        "console_address",
        "migration_address",
        "dedicated_cpu_set",
        "disk_bytes_sec_ceiling",
        "disk_iops_sec_ceiling",
        "net_kib_sec_ceiling",
    )
    # Fields the driver reads from the host; operators and API clients never set them.
    OBSERVED_FIELDS = (
        "cpus",
        "memory_mib",
        "free_memory_mib",
        "hypervisor",
        "libvirt_version",
        "hostname",
        "healthy",
        "health_error",
        "last_checked_at",
        "guests_bind_host_ports",
        "guest_arches",
        "pool_capacity_bytes",
        "pool_available_bytes",
    )

    class DomainType(models.TextChoices):
        KVM = "kvm", "KVM (hardware virtualisation)"
        QEMU = "qemu", "QEMU (software emulation)"

    name = models.CharField(max_length=100, unique=True)
    uri = models.CharField(
        max_length=300, unique=True, help_text="libvirt URI, e.g. qemu:///system", verbose_name="libvirt URI"
    )
    domain_type = models.CharField(max_length=10, choices=DomainType.choices, default=DomainType.KVM)
    enabled = models.BooleanField(default=True, help_text="Disabled hosts keep their VMs but get no new ones")
    draining = models.BooleanField(
        default=False, help_text="Draining hosts keep their stacks until they end but get no new ones"
    )
    storage_pool = models.CharField(max_length=100, default="portal")
    storage_pool_path = models.CharField(max_length=300, default="/var/lib/libvirt/images/portal")
    public_address = models.GenericIPAddressField(
        default="127.0.0.1", help_text="Address on which published guest ports are reachable"
    )
    cpu_overcommit = models.DecimalField(
        max_digits=4,
        decimal_places=2,
        default=4,
        verbose_name="CPU overcommit",
        help_text="Virtual CPUs placed per physical CPU: 2 CPUs at 4 give 8 vCPUs to place",
    )
    memory_overcommit = models.DecimalField(
        max_digits=4, decimal_places=2, default=1, help_text="RAM is not over-committed unless raised above 1"
    )
    disk_overcommit = models.DecimalField(
        max_digits=4,
        decimal_places=2,
        default=1,
        help_text="Overlays are thin: above 1 their sizes may pass the pool",
    )
    memory_reserved_mib = models.PositiveIntegerField(
        default=512, help_text="Kept for the host itself", verbose_name="memory kept for the host (MiB)"
    )
    # Read from the host by the driver (capacity and health).
    cpus = models.PositiveIntegerField(default=0, verbose_name="physical CPUs")
    memory_mib = models.PositiveBigIntegerField(default=0, verbose_name="physical memory (MiB)")
    free_memory_mib = models.PositiveBigIntegerField(default=0, verbose_name="free memory (MiB)")
    hypervisor = models.CharField(max_length=50, blank=True)
    libvirt_version = models.CharField(max_length=20, blank=True)
    hostname = models.CharField(max_length=255, blank=True)
    healthy = models.BooleanField(default=False)
    health_error = models.TextField(blank=True, verbose_name="health problem")
    last_checked_at = models.DateTimeField(null=True, blank=True, verbose_name="last checked")
    guests_bind_host_ports = models.BooleanField(
        default=True, help_text="Whether published ports are bound on the host (not on simulated hosts)"
    )
    guest_arches = models.CharField(
        max_length=200,
        default="x86_64",
        help_text="Comma-separated architectures its guests may have",
        verbose_name="guest architectures",
    )
    pool_capacity_bytes = models.PositiveBigIntegerField(default=0, verbose_name="storage pool size (bytes)")
    pool_available_bytes = models.PositiveBigIntegerField(default=0, verbose_name="storage pool free (bytes)")
    # Bumped by every claim on the host: a launch that read an older value retries (optimistic claims).
    generation = models.PositiveBigIntegerField(
        default=0, verbose_name="claim generation", help_text="Bumped by every claim on the host"
    )
    # What placement has handed out on the host: the sizes and count of its instances in
    # ``ACTIVE_STATUSES``. The claim adds a stack's demand in the statement that claims the host; an
    # instance gives its share back when its teardown marks it deleted or its row is deleted
    # (``provisioning.allocations``). Placement reads these instead of summing the host's instances;
    # the reconciler recounts them from the instances, so a drift heals.
    allocated_vcpus = models.BigIntegerField(default=0, verbose_name="allocated virtual CPUs")
    allocated_memory_mib = models.BigIntegerField(default=0, verbose_name="allocated memory (MiB)")
    allocated_disk_gib = models.BigIntegerField(default=0, verbose_name="allocated disk (GiB)")
    allocated_instances = models.BigIntegerField(default=0)
    console_address = models.GenericIPAddressField(
        default="127.0.0.1",
        help_text="The host's management address: its VMs' VNC servers listen only there, for the console proxy",
    )

    migration_address = models.GenericIPAddressField(
        default="127.0.0.1",
        help_text="Where this host receives live migrations (QEMU's memory stream and the copy of the disks)",
    )
    # Maintenance: drained, then evacuated; its libvirtd may then be stopped, and health checks and the
    # reconciler do not count that as a failure. Undraining ends it.
    maintenance = models.BooleanField(
        default=False, help_text="Drained and evacuated for maintenance: its libvirtd may be stopped"
    )
    maintenance_since = models.DateTimeField(null=True, blank=True, verbose_name="in maintenance since")
    # Quality of service: what no guest on this host may exceed, whatever its flavor says (empty: no ceiling).
    disk_bytes_sec_ceiling = models.PositiveBigIntegerField(
        null=True, blank=True, verbose_name="disk ceiling (bytes/s per guest)", help_text="Empty: none"
    )
    disk_iops_sec_ceiling = models.PositiveBigIntegerField(
        null=True, blank=True, verbose_name="disk ceiling (operations/s per guest)", help_text="Empty: none"
    )
    net_kib_sec_ceiling = models.PositiveBigIntegerField(
        null=True, blank=True, verbose_name="network ceiling (KiB/s per guest)", help_text="Empty: none"
    )
    dedicated_cpu_set = models.CharField(
        max_length=200,
        blank=True,
        verbose_name="dedicated CPU set",
        help_text="Physical CPUs that dedicated flavors' vCPUs are pinned to, one vCPU each (e.g. 2-7); empty: none",
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def vcpu_capacity(self) -> int:
        return int(self.cpus * self.cpu_overcommit)

    @property
    def memory_capacity_mib(self) -> int:
        return max(0, self.memory_mib - self.memory_reserved_mib)


class HostImage(models.Model):
    """A cached image uploaded once into a host's storage pool; overlays of instances point at it.

    The row is also the upload's claim: one build uploads while the others wait for "ready". While
    an idle copy is being removed ("removing") builds wait too, then upload it again.
    """

    class State(models.TextChoices):
        UPLOADING = "uploading", "Uploading"
        READY = "ready", "Ready"
        REMOVING = "removing", "Removing"

    host = models.ForeignKey(Host, on_delete=models.CASCADE, related_name="images")
    image = models.ForeignKey(CachedImage, on_delete=models.CASCADE, related_name="host_copies")
    state = models.CharField(max_length=10, choices=State.choices, default=State.UPLOADING)
    volume_name = models.CharField(max_length=200)
    volume_path = models.CharField(max_length=500, blank=True)
    capacity_bytes = models.BigIntegerField(default=0, verbose_name="size (bytes)")
    bytes_done = models.BigIntegerField(default=0, verbose_name="bytes uploaded")
    bytes_total = models.BigIntegerField(default=0, verbose_name="bytes to upload")
    updated_at = models.DateTimeField(auto_now=True, verbose_name="last changed")
    uploaded_at = models.DateTimeField(null=True, blank=True, verbose_name="uploaded")
    # When a build last laid an overlay on it: copies idle for PORTAL_BASE_VOLUME_IDLE are removed.
    last_used_at = models.DateTimeField(null=True, blank=True, verbose_name="last used")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["host", "image"], name="one_base_volume_per_host")]

    def __str__(self) -> str:
        return f"{self.volume_name} on {self.host}"
