"""What runs inside each appliance: the files under ``rootfs/`` and one generated settings file.

``rootfs/`` mirrors the guest's root: ``init`` (busybox sh as PID 1), the DHCP hook, the files of the
serial console's root login (``etc/passwd`` with no password, ``etc/issue``, ``etc/motd``,
``etc/profile``), and the shell library in ``lib/demo`` that shows the guest's output on both
consoles and offers that login, reads the NoCloud config drive, configures the NICs by MAC, keeps the
tier's status fresh, answers HTTP requests (``handle-request``, one per connection), keeps the db
tier's record log and powers off on the ACPI power button. Those files are the same in every
appliance; what makes an appliance the web, app or db tier (or the probe) is
``/etc/appliance.env``, written here. Keeping the scripts as real files lets the tests run their
functions with the build machine's shell.
"""

from __future__ import annotations

import shlex
from pathlib import Path

from catalog.demo_appliances.appliances import DemoAppliance
from catalog.demo_appliances.records import RECORD_LOG_HEADER_BYTES, RECORD_LOG_MAX_BYTES, RECORD_MAX_BYTES

ROOTFS = Path(__file__).with_name("rootfs")
# Printed on the serial console once httpd serves, so a log shows when the guest came up.
READY_MARKER = "DEMO-APPLIANCE-READY"
# Files the guest runs directly; everything else is sourced or read.
EXECUTABLES = frozenset({"init", "etc/udhcpc.script", "etc/acpi/power-off", "lib/demo/handle-request"})
APPLIANCE_ENV = "etc/appliance.env"


def rootfs_files(root: Path = ROOTFS) -> dict[str, bytes]:
    """Guest path (relative, as in the initramfs) -> content, for every file under ``root``."""
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts
    }


def render_appliance_env(appliance: DemoAppliance, version: str, modules: tuple[str, ...]) -> str:
    """The settings that make the shared scripts this appliance, as shell assignments."""
    upstream = appliance.upstream
    values = {
        "APPLIANCE": appliance.appliance,
        "ROLE": appliance.role,
        "PORT": str(appliance.port),
        "VERSION": version,
        "MODULES": " ".join(modules),
        "UPSTREAM_ROLE": upstream.role if upstream else "",
        "UPSTREAM_PORT": str(upstream.port) if upstream else "",
        "READY_MARKER": READY_MARKER,
        "RECORD_MAX_BYTES": str(RECORD_MAX_BYTES),
        "RECORD_LOG_MAX_BYTES": str(RECORD_LOG_MAX_BYTES),
        "RECORD_LOG_HEADER_BYTES": str(RECORD_LOG_HEADER_BYTES),
    }
    return "".join(f"{name}={shlex.quote(value)}\n" for name, value in values.items())
