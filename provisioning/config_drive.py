"""NoCloud config drives: the ISO 9660 volume labelled ``cidata`` that tells a guest who it is.

Standard files for cloud-init images: ``meta-data`` (instance id, hostname), ``network-config``
(version 2: the stack NIC, matched by MAC, with its static address) and ``user-data`` (a
``#cloud-config`` document whose ``portal`` key lists the stack's peers and the template's
settings). Small appliances without cloud-init read ``portal.env`` instead: the same facts as
shell assignments, each value quoted so that no setting can run code in the guest's shell.
"""

from __future__ import annotations

import io
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pycdlib
import yaml

VOLUME_LABEL = "cidata"
# ISO 9660 names (8.3, upper case) beside the Rock Ridge and Joliet names that Linux and cloud-init use.
_FILES = (
    ("meta-data", "METADATA."),
    ("network-config", "NETCFG."),
    ("user-data", "USERDATA."),
    ("portal.env", "PORTAL.ENV"),
)
_ENV_NAME_UNSAFE = re.compile(r"[^A-Z0-9]+")


@dataclass(frozen=True)
class Peer:
    name: str
    tier: str
    address: str


@dataclass(frozen=True)
class GuestConfig:
    instance_id: str
    hostname: str
    stack: str
    tier: str
    mac_address: str
    address: str
    prefix_length: int
    peers: tuple[Peer, ...] = ()
    settings: Mapping[str, str] = field(default_factory=dict)
    # "address:port" pairs the guest waits for before it starts its own service.
    wait_for: tuple[str, ...] = ()


def _env_suffix(name: str) -> str:
    return _ENV_NAME_UNSAFE.sub("_", name.upper()).strip("_")


def _meta_data(config: GuestConfig) -> str:
    return yaml.safe_dump({"instance-id": config.instance_id, "local-hostname": config.hostname}, sort_keys=False)


def _network_config(config: GuestConfig) -> str:
    ethernet = {
        "match": {"macaddress": config.mac_address},
        "set-name": "stack0",
        "addresses": [f"{config.address}/{config.prefix_length}"],
    }
    return yaml.safe_dump({"version": 2, "ethernets": {"stack0": ethernet}}, sort_keys=False)


def _user_data(config: GuestConfig) -> str:
    portal = {
        "stack": config.stack,
        "tier": config.tier,
        "peers": [{"name": p.name, "tier": p.tier, "address": p.address} for p in config.peers],
        "settings": dict(config.settings),
        "wait_for": list(config.wait_for),
    }
    return "#cloud-config\n" + yaml.safe_dump({"portal": portal}, sort_keys=False)


def _portal_env(config: GuestConfig) -> str:
    values: dict[str, str] = {
        "PORTAL_INSTANCE": config.hostname,
        "PORTAL_INSTANCE_ID": config.instance_id,
        "PORTAL_STACK": config.stack,
        "PORTAL_TIER": config.tier,
        "PORTAL_MAC": config.mac_address,
        "PORTAL_ADDRESS": config.address,
        "PORTAL_PREFIX": str(config.prefix_length),
        "PORTAL_PEERS": " ".join(f"{p.tier}:{p.name}:{p.address}" for p in config.peers),
        "PORTAL_WAIT_FOR": " ".join(config.wait_for),
    }
    for peer in reversed(config.peers):  # the first instance of a tier wins its tier's short names
        values[f"PORTAL_PEER_{_env_suffix(peer.tier)}"] = peer.address
        values[f"PORTAL_PEER_NAME_{_env_suffix(peer.tier)}"] = peer.name
    for key, value in config.settings.items():
        values[f"PORTAL_SETTING_{_env_suffix(key)}"] = value
    return "".join(f"{name}={shlex.quote(value)}\n" for name, value in values.items())


def drive_files(config: GuestConfig) -> dict[str, bytes]:
    """The files of the drive, by name."""
    return {
        "meta-data": _meta_data(config).encode(),
        "network-config": _network_config(config).encode(),
        "user-data": _user_data(config).encode(),
        "portal.env": _portal_env(config).encode(),
    }


def write_config_drive(config: GuestConfig, path: Path) -> None:
    """Write the drive as an ISO 9660 image (Rock Ridge and Joliet names) to ``path``."""
    files = drive_files(config)
    iso = pycdlib.PyCdlib()
    iso.new(interchange_level=3, joliet=3, rock_ridge="1.09", vol_ident=VOLUME_LABEL)
    for name, iso_name in _FILES:
        data = files[name]
        iso.add_fp(io.BytesIO(data), len(data), f"/{iso_name};1", rr_name=name, joliet_path=f"/{name}")
    try:
        iso.write(str(path))
    finally:
        iso.close()
