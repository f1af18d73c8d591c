"""Build the three demo appliances (web, app, db) and the VMcast that publishes them.

Each appliance is a tiny qcow2 disk: a FAT filesystem made bootable by syslinux that holds a
Debian cloud kernel and a busybox initramfs that serves HTTP on the tier's port, and raw space
after the filesystem where the db tier keeps its records (``records``). A guest given a NoCloud
config drive joins its stack: the db serves its status and its records, the app passes them on
over the stack network, and the web page shows the whole chain and every record; a record POSTed
to web or app lands on the db's disk. Every guest powers off cleanly on the ACPI power button. A
test-only probe (``include_probe``) reports which addresses a guest can connect to. Everything
runs without root, and nothing here imports Django, so it runs anywhere.

One module per step, in the order ``build`` runs them:

- ``packages``: resolve, download (``apt-get download``) and unpack (``dpkg-deb -x``) the kernel
  and busybox packages;
- ``kernel``: the kernel image and the modules the guest loads, in dependency order;
- ``guest`` and ``initramfs``: the files the guest runs (``rootfs/``, shell run by busybox, and
  each appliance's settings), packed into a reproducible cpio archive;
- ``disk``: a syslinux-bootable FAT disk holding kernel and initramfs, with the record log's
  space after it, converted to qcow2;
- ``feed``: the VMcast naming each image, with its size and sha256.

Around them: ``appliances`` (what the demo publishes), ``records`` (the record log's place and
caps), ``manifest`` (what each image was built from, so unchanged ones are reused), ``tools`` (the
programs run and the build's error) and ``files`` (writes that are safe to repeat and to race).
"""

from catalog.demo_appliances.appliances import DEMO_APPLIANCES, DEMO_PROBE, DemoAppliance, demo_appliances
from catalog.demo_appliances.build import build_demo_appliances
from catalog.demo_appliances.tools import ApplianceBuildError

__all__ = [
    "DEMO_APPLIANCES",
    "DEMO_PROBE",
    "ApplianceBuildError",
    "DemoAppliance",
    "build_demo_appliances",
    "demo_appliances",
]
