"""A short history of what each guest and each host used, one row per sample (``metrics.sampler``).

Counters (CPU time, bytes read and written, sent and received) are kept as libvirt reports them,
cumulative since the guest started; rates are worked out against the sample before and stored
beside them, so a page reads them without arithmetic. A counter that went down (the guest booted
again) starts a new run: that sample has no rate.
"""

from __future__ import annotations

from django.db import models

from portal.querysets import ProjectScopedQuerySet
from provisioning.models import Host, Instance


class InstanceSampleQuerySet(ProjectScopedQuerySet["InstanceSample"]):
    project_path = "instance__stack__project"


class InstanceSample(models.Model):
    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="samples")
    host = models.ForeignKey(Host, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    sampled_at = models.DateTimeField(db_index=True, verbose_name="sampled")
    running = models.BooleanField(default=True)
    vcpus = models.PositiveIntegerField(default=0, verbose_name="virtual CPUs")
    # Cumulative counters, as libvirt reports them.
    cpu_time_ns = models.BigIntegerField(default=0, verbose_name="CPU time (ns)")
    disk_read_bytes = models.BigIntegerField(default=0)
    disk_write_bytes = models.BigIntegerField(default=0)
    net_rx_bytes = models.BigIntegerField(default=0, verbose_name="network received (bytes)")
    net_tx_bytes = models.BigIntegerField(default=0, verbose_name="network sent (bytes)")
    # Memory now: what the guest was given, and what it uses where the guest says (balloon), else
    # what QEMU holds for it (resident set).
    memory_mib = models.PositiveIntegerField(default=0, verbose_name="memory (MiB)")
    memory_used_mib = models.PositiveIntegerField(null=True, blank=True, verbose_name="memory used (MiB)")
    # Rates since the sample before (null on a run's first sample).
    cpu_percent = models.FloatField(null=True, blank=True, help_text="Of all its vCPUs: 100 is every vCPU busy")
    disk_read_bytes_sec = models.FloatField(null=True, blank=True, verbose_name="disk reads (bytes/s)")
    disk_write_bytes_sec = models.FloatField(null=True, blank=True, verbose_name="disk writes (bytes/s)")
    net_rx_bytes_sec = models.FloatField(null=True, blank=True, verbose_name="network in (bytes/s)")
    net_tx_bytes_sec = models.FloatField(null=True, blank=True, verbose_name="network out (bytes/s)")

    objects = InstanceSampleQuerySet.as_manager()

    class Meta:
        ordering = ["instance", "sampled_at"]
        indexes = [models.Index(fields=["instance", "sampled_at"])]

    def __str__(self) -> str:
        return f"{self.instance} at {self.sampled_at:%Y-%m-%d %H:%M:%S}"


class HostSample(models.Model):
    host = models.ForeignKey(Host, on_delete=models.CASCADE, related_name="samples")
    sampled_at = models.DateTimeField(db_index=True, verbose_name="sampled")
    cpus = models.PositiveIntegerField(default=0, verbose_name="physical CPUs")
    cpu_busy_ns = models.BigIntegerField(default=0, help_text="Cumulative CPU time not idle, all CPUs")
    cpu_total_ns = models.BigIntegerField(default=0, help_text="Cumulative CPU time, all CPUs")
    cpu_percent = models.FloatField(null=True, blank=True, help_text="Of all its CPUs, since the sample before")
    memory_mib = models.PositiveBigIntegerField(default=0, verbose_name="memory (MiB)")
    memory_free_mib = models.PositiveBigIntegerField(default=0, verbose_name="free memory (MiB)")
    domains = models.PositiveIntegerField(default=0, help_text="The portal's guests running on it")
    load_1m = models.FloatField(null=True, blank=True, verbose_name="load average (1 min)")

    class Meta:
        ordering = ["host", "sampled_at"]
        indexes = [models.Index(fields=["host", "sampled_at"])]

    def __str__(self) -> str:
        return f"{self.host} at {self.sampled_at:%Y-%m-%d %H:%M:%S}"
