"""What each image was built from, kept next to the images so unchanged inputs are not rebuilt.

An image's input hash covers everything that shapes it (package versions, every guest file, boot
configuration, the tier); its version carries the hash, so a changed input publishes a new
version and a rerun with the same inputs leaves images, manifest and feed byte-identical.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

from catalog.demo_appliances.appliances import DemoAppliance
from catalog.demo_appliances.disk import syslinux_cfg
from catalog.demo_appliances.files import write_if_changed
from catalog.demo_appliances.guest import EXECUTABLES, render_appliance_env
from catalog.demo_appliances.kernel import ROOT_MODULES
from catalog.demo_appliances.packages import BuildInputs
from catalog.demo_appliances.records import record_log_reserve_mib

# Bump whenever a change to the builder alters the images in a way the hash does not see.
BUILDER_VERSION = "3"
BASE_VERSION = "1.0.0"
MANIFEST_NAME = "manifest.json"
_ENTRY_KEYS = ("input_hash", "version", "filename", "built_at")

# Appliance identifier -> {"input_hash", "version", "filename", "built_at"}.
Manifest = dict[str, dict[str, str]]


def input_hash(inputs: BuildInputs, appliance: DemoAppliance, files: Mapping[str, bytes]) -> str:
    """Everything that shapes an image, ``files`` being the guest's shared rootfs.

    The generated ``/etc/appliance.env`` is hashed as rendered without its version (the version is
    made from this hash) and with the root modules (the full list needs the unpacked kernel).
    """
    description = {
        "builder": BUILDER_VERSION,
        "kernel": [inputs.kernel.name, inputs.kernel.version],
        "busybox": [inputs.busybox.name, inputs.busybox.version],
        "modules": list(ROOT_MODULES),
        "rootfs": {path: hashlib.sha256(data).hexdigest() for path, data in sorted(files.items())},
        "executables": sorted(EXECUTABLES),
        # The log's offset follows from the payload's size, which the package versions and files fix.
        "syslinux": syslinux_cfg(0),
        "record_log_reserve_mib": record_log_reserve_mib(),
        "appliance": render_appliance_env(appliance, "", ROOT_MODULES),
    }
    return hashlib.sha256(json.dumps(description, sort_keys=True).encode()).hexdigest()


def version_for(digest: str) -> str:
    return f"{BASE_VERSION}+{digest[:12]}"


def new_entry(appliance: DemoAppliance, digest: str) -> dict[str, str]:
    return {
        "input_hash": digest,
        "version": version_for(digest),
        "filename": appliance.filename,
        "built_at": datetime.now(UTC).replace(microsecond=0).isoformat(),
    }


def is_current(entry: object, digest: str, image: Path) -> bool:
    return (
        isinstance(entry, dict)
        and all(isinstance(entry.get(key), str) for key in _ENTRY_KEYS)
        and entry["input_hash"] == digest
        and image.is_file()
    )


def load_manifest(out_dir: Path) -> Manifest:
    try:
        data = json.loads((out_dir / MANIFEST_NAME).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def save_manifest(out_dir: Path, manifest: Manifest) -> None:
    write_if_changed(out_dir / MANIFEST_NAME, json.dumps(manifest, indent=2, sort_keys=True).encode() + b"\n")
