"""What an instance's serial console wrote before anyone opened it: the end of its console log.

The host keeps the log (libvirt's log daemon appends every byte the guest writes to its serial port)
in a file of the host's storage pool, beside the instance's disk, named after the instance like its
volumes. The portal reads the last ``BACKLOG_BYTES`` through the driver's storage API, so a remote
host works the same as the local one, and the file goes with the instance's disks.

Two readers: the serial console's socket replays the raw bytes before its live output (a terminal
shows them as the guest meant), and the API and the screen page show ``text``, the same bytes with
terminal control sequences and other control characters taken out.
"""

from __future__ import annotations

import logging
import posixpath
import re
from dataclasses import dataclass

from portal.models import Role
from portal.scoping import User, require_role
from provisioning.drivers import DriverError, HypervisorDriver, NotFound
from provisioning.models import Host, Instance
from provisioning.services.hosts import driver_for

logger = logging.getLogger(__name__)

# As much as a console shows on opening: a few hundred lines, a boot's worth.
BACKLOG_BYTES = 64 * 1024

# ESC [ … final byte (CSI), ESC ] … BEL or ESC \ (OSC), ESC ( B and the like (character sets), and
# ESC with one more character (the rest: ESC c, ESC 7…).
_ESCAPES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[()*+][ -~]|\x1b[ -~]?")
# Control characters other than tab and newline; a lone carriage return ends a line like a newline.
_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


@dataclass(frozen=True)
class ConsoleBacklog:
    data: bytes  # the log's last bytes, raw
    truncated: bool  # older output was left out
    size_bytes: int  # how much the log holds in all
    available: bool  # False: the host could not be asked, or keeps no log for this instance
    reason: str = ""  # why it is not available, in the portal's words

    @property
    def text(self) -> str:
        return readable_text(self.data)


def console_log_volume_name(instance: Instance) -> str:
    """The log's name in its host's pool: its disk's (``naming.overlay_volume_name``), ``-console.log`` for ``.qcow2``.

    Made from the name the disk was given, not from today's settings, so it always finds its disk's log.
    """
    if not instance.volume_name:
        raise ValueError(f"instance {instance.pk} has no disk volume yet, so no console log")
    return f"{instance.volume_name.removesuffix('.qcow2')}-console.log"


def console_log_path(*, instance: Instance, disk_path: str) -> str:
    """Where the host keeps the log: beside the instance's disk, in the same pool folder."""
    return posixpath.join(posixpath.dirname(disk_path), console_log_volume_name(instance))


def readable_text(data: bytes) -> str:
    """The log as plain text: UTF-8 (a character cut by the cap becomes U+FFFD), without terminal
    control sequences, carriage returns as line ends, no other control characters."""
    text = data.decode("utf-8", errors="replace")
    text = _ESCAPES.sub("", text).replace("\r\n", "\n").replace("\r", "\n")
    return _CONTROLS.sub("", text)


def read_backlog(*, driver: HypervisorDriver, pool: str, name: str, max_bytes: int = BACKLOG_BYTES) -> ConsoleBacklog:
    """The log's end through an open driver; never raises a ``DriverError`` (a console opens without it)."""
    try:
        log = driver.read_console_log(pool=pool, name=name, max_bytes=max_bytes)
    except NotFound:
        return ConsoleBacklog(b"", False, 0, available=False, reason="the host keeps no console log for it")
    except DriverError as exc:
        logger.warning("console log %s in pool %s not read: %s (%s)", name, pool, exc.message, exc.detail)
        return ConsoleBacklog(b"", False, 0, available=False, reason="the host did not answer")
    return ConsoleBacklog(log.data, log.truncated, log.size_bytes, available=True)


def console_backlog(*, user: User, instance: Instance, max_bytes: int = BACKLOG_BYTES) -> ConsoleBacklog:
    """The end of ``instance``'s console log, for members and owners of its project (as its consoles).

    The caller has found ``instance`` among those ``user`` may see; the role is checked here because
    the log holds whatever was typed at the root shell, which viewers may not open either.
    """
    require_role(user, instance.stack.project, Role.MEMBER)
    host: Host | None = instance.host
    if host is None or not instance.volume_name:
        return ConsoleBacklog(b"", False, 0, available=False, reason="it has not been placed on a host")
    try:
        with driver_for(host) as driver:
            return read_backlog(
                driver=driver, pool=host.storage_pool, name=console_log_volume_name(instance), max_bytes=max_bytes
            )
    except DriverError as exc:  # the host's URI is refused, or it cannot be opened
        logger.warning("host %s: console log of %s not read: %s", host.name, instance.name, exc.message)
        return ConsoleBacklog(b"", False, 0, available=False, reason="the host did not answer")


def delete_console_log(*, driver: HypervisorDriver, host: Host, instance: Instance) -> None:
    """Remove the log with the instance's disks (the teardown's retries cover a host that did not answer)."""
    if instance.volume_name:
        driver.delete_console_log(pool=host.storage_pool, name=console_log_volume_name(instance))


__all__ = [
    "BACKLOG_BYTES",
    "ConsoleBacklog",
    "console_backlog",
    "console_log_path",
    "console_log_volume_name",
    "delete_console_log",
    "read_backlog",
    "readable_text",
]
