"""The external programs the build runs, and the one error every step raises."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

# apt and dpkg fetch and unpack the packages; mtools, syslinux and qemu-img make the disk.
REQUIRED_TOOLS = ("apt-get", "apt-cache", "dpkg-deb", "mformat", "mcopy", "syslinux", "qemu-img")

Log = Callable[[str], None]
# Tool name -> absolute path, as found by ``find_tools``.
Tools = dict[str, str]


class ApplianceBuildError(RuntimeError):
    """A tool, package or build step the demo appliances depend on is missing or failed."""


def find_tools(names: tuple[str, ...] = REQUIRED_TOOLS) -> Tools:
    """Resolve each tool to an absolute path, naming every missing one in a single error."""
    found = {name: shutil.which(name) for name in names}
    missing = sorted(name for name, path in found.items() if path is None)
    if missing:
        raise ApplianceBuildError(
            f"missing tools: {', '.join(missing)} "
            "(install the Debian packages apt, dpkg, mtools, syslinux, syslinux-common and qemu-utils)"
        )
    return {name: path for name, path in found.items() if path is not None}


def run(args: list[str], *, cwd: Path | None = None) -> str:
    """Run a command from a fixed argument list and return stdout, or raise with its stderr."""
    try:
        result = subprocess.run(args, cwd=cwd, capture_output=True, text=True, check=False)  # noqa: S603
    except OSError as exc:
        raise ApplianceBuildError(f"could not run {args[0]}: {exc}") from exc
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip()
        raise ApplianceBuildError(f"{Path(args[0]).name} failed (exit {result.returncode}): {' '.join(args)}\n{detail}")
    return result.stdout
