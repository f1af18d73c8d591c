"""Step 4: the bootable disk, a FAT "superfloppy" that syslinux boots, converted to qcow2.

mtools writes into the image file directly, so no loop device or mount (and no root) is needed.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from catalog.demo_appliances.tools import Tools, run

MIB = 1024 * 1024
KERNEL_CMDLINE = "console=ttyS0 quiet loglevel=3 panic=10"

SYSLINUX_CFG = f"""DEFAULT demo
PROMPT 0
TIMEOUT 0
LABEL demo
    LINUX /vmlinuz
    INITRD /initrd.gz
    APPEND {KERNEL_CMDLINE}
"""


def disk_size_mib(kernel: Path, initrd: Path) -> int:
    # Room for the payload, syslinux and FAT overhead; at least 32 MiB so mformat picks FAT16.
    payload = kernel.stat().st_size + initrd.stat().st_size
    return max(32, -(-payload // MIB) + 8)


def build_disk(tools: Tools, kernel: Path, initrd: Path, label: str, qcow2: Path) -> None:
    """Kernel, initramfs and syslinux on a fresh FAT disk, written as qcow2 to ``qcow2``."""
    with tempfile.TemporaryDirectory(prefix=".disk-", dir=qcow2.parent) as scratch:
        raw = Path(scratch) / "disk.raw"
        cfg = Path(scratch) / "syslinux.cfg"
        cfg.write_text(SYSLINUX_CFG)
        size_mib = disk_size_mib(kernel, initrd)
        with raw.open("wb") as handle:
            handle.truncate(size_mib * MIB)
        # 64 heads x 32 sectors makes one cylinder exactly 1 MiB.
        geometry = ["-t", str(size_mib), "-h", "64", "-s", "32"]
        run([tools["mformat"], "-i", str(raw), *geometry, "-v", label[:11].upper(), "::"])
        run([tools["mcopy"], "-i", str(raw), str(kernel), "::/vmlinuz"])
        run([tools["mcopy"], "-i", str(raw), str(initrd), "::/initrd.gz"])
        run([tools["mcopy"], "-i", str(raw), str(cfg), "::/syslinux.cfg"])
        run([tools["syslinux"], "--install", str(raw)])
        staged = Path(scratch) / "disk.qcow2"
        run([tools["qemu-img"], "convert", "-f", "raw", "-O", "qcow2", str(raw), str(staged)])
        staged.replace(qcow2)
