"""Step 4: the bootable disk, a FAT "superfloppy" that syslinux boots, converted to qcow2.

mtools writes into the image file directly, so no loop device or mount (and no root) is needed.
The filesystem does not fill the disk: the db tier keeps its record log in the raw space after it
(``records``), and the kernel command line tells the guest where that space starts.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from catalog.demo_appliances.records import MIB, RECORD_LOG_PARAMETER, record_log_reserve_mib
from catalog.demo_appliances.tools import Tools, run

# The kernel writes to the screen (tty0) and to the serial port (ttyS0); the last console named is
# /dev/console, where init's output goes, and the serial port is what the portal logs and replays.
# Its boot messages are shown (no "quiet"), so neither console looks hung while it boots: under TCG
# that costs no measurable time.
KERNEL_CMDLINE = "console=tty0 console=ttyS0 panic=10"

SYSLINUX_CFG = """DEFAULT demo
PROMPT 0
TIMEOUT 0
LABEL demo
    LINUX /vmlinuz
    INITRD /initrd.gz
    APPEND {cmdline}
"""


def syslinux_cfg(record_log_offset: int) -> str:
    return SYSLINUX_CFG.format(cmdline=f"{KERNEL_CMDLINE} {RECORD_LOG_PARAMETER}={record_log_offset}")


def filesystem_size_mib(kernel: Path, initrd: Path) -> int:
    # Room for the payload, syslinux and FAT overhead; at least 32 MiB so mformat picks FAT16.
    payload = kernel.stat().st_size + initrd.stat().st_size
    return max(32, -(-payload // MIB) + 8)


def build_disk(tools: Tools, kernel: Path, initrd: Path, label: str, qcow2: Path) -> None:
    """Kernel, initramfs and syslinux on a fresh FAT disk, written as qcow2 to ``qcow2``."""
    with tempfile.TemporaryDirectory(prefix=".disk-", dir=qcow2.parent) as scratch:
        raw = Path(scratch) / "disk.raw"
        cfg = Path(scratch) / "syslinux.cfg"
        filesystem_mib = filesystem_size_mib(kernel, initrd)
        # The log starts where the filesystem ends, on a sector boundary.
        cfg.write_text(syslinux_cfg(filesystem_mib * MIB))
        with raw.open("wb") as handle:
            handle.truncate(filesystem_mib * MIB)
        # 64 heads x 32 sectors makes one cylinder exactly 1 MiB. mformat sizes the filesystem to
        # the file, so the file grows by the log's space only once the filesystem is made.
        geometry = ["-t", str(filesystem_mib), "-h", "64", "-s", "32"]
        run([tools["mformat"], "-i", str(raw), *geometry, "-v", label[:11].upper(), "::"])
        run([tools["mcopy"], "-i", str(raw), str(kernel), "::/vmlinuz"])
        run([tools["mcopy"], "-i", str(raw), str(initrd), "::/initrd.gz"])
        run([tools["mcopy"], "-i", str(raw), str(cfg), "::/syslinux.cfg"])
        run([tools["syslinux"], "--install", str(raw)])
        with raw.open("r+b") as handle:
            handle.truncate((filesystem_mib + record_log_reserve_mib()) * MIB)
        staged = Path(scratch) / "disk.qcow2"
        run([tools["qemu-img"], "convert", "-f", "raw", "-O", "qcow2", str(raw), str(staged)])
        staged.replace(qcow2)
