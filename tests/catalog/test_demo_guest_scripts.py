"""The demo appliances' guest scripts, run with this machine's ``sh`` against fake trees.

The functions in ``rootfs/lib/demo`` take their paths from variables and call busybox applets by
name, so each test points them at ``tmp_path`` and puts stand-ins for ``mount``, ``ip``, ``nc``,
``wget`` and friends first on PATH. The stand-ins record their calls; none touches a device or
the network. Booting the real images is for the end-to-end tests.
"""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from catalog.demo_appliances.appliances import DEMO_APP, DEMO_DB, DEMO_PROBE, DEMO_WEB, DemoAppliance
from catalog.demo_appliances.guest import ROOTFS, render_appliance_env
from provisioning.config_drive import GuestConfig, Peer, drive_files

LIBRARY = ("boot.sh", "page.sh", "serve.sh", "probe.sh", "records.sh", "http.sh", "power.sh")

# Each stand-in logs "name args" to $CALLS; nc and wget answer only for the addresses listed in
# $REACHABLE, and wget prints $ANSWER, as a peer's /status.txt would.
STUBS = {
    "findfs": "exit 1",
    "mount": "exit 0",
    "insmod": "exit 0",
    "ip": "exit 0",
    "ifconfig": "exit 0",
    "route": "exit 0",
    "udhcpc": "exit 0",
    "sync": "exit 0",
    "poweroff": 'rm -f "$POWER_BUTTON"',
    "timeout": 'shift; exec "$@"',
    "nc": 'for a in $REACHABLE; do [ "$3" = "$a" ] && exit 0; done; exit 1',
    "wget": 'for a in $REACHABLE; do case "$4" in "http://$a:"*) echo "$ANSWER"; exit 0;; esac; done; exit 1',
}


@dataclass
class Guest:
    """A fake guest root in ``tmp_path``: sysfs NICs, a web root, stand-in commands."""

    root: Path

    @property
    def calls_file(self) -> Path:
        return self.root / "calls"

    def calls(self) -> list[str]:
        return self.calls_file.read_text().splitlines() if self.calls_file.exists() else []

    def served(self, name: str) -> str:
        """A file the guest's httpd would serve."""
        return (self.root / "www" / name).read_text()

    def add_nic(self, name: str, mac: str, kind: int = 1) -> None:
        nic = self.root / "sys" / "class" / "net" / name
        nic.mkdir(parents=True)
        (nic / "address").write_text(f"{mac}\n")
        (nic / "type").write_text(f"{kind}\n")

    def run(
        self, commands: str, *, appliance: DemoAppliance = DEMO_WEB, env: Mapping[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Source the appliance's settings and the library, then run ``commands`` (and print ``$?``)."""
        settings = self.root / "appliance.env"
        settings.write_text(render_appliance_env(appliance, "1.0.0+test", ("virtio", "isofs")))
        sources = "\n".join(f". {shlex.quote(str(ROOTFS / 'lib' / 'demo' / name))}" for name in LIBRARY)
        script = f". {shlex.quote(str(settings))}\n{sources}\n{commands}\n"
        variables = {
            "PATH": f"{self.root / 'bin'}:/usr/bin:/bin",
            "CALLS": str(self.calls_file),
            "SYS_NET": str(self.root / "sys" / "class" / "net"),
            "CIDATA_DIR": str(self.root / "cidata"),
            "CIDATA_DEVICE": str(self.root / "dev" / "vdb"),
            "WWW": str(self.root / "www"),
            "SYS_INPUT": str(self.root / "sys" / "class" / "input"),
            "INPUT_DEVICES": str(self.root / "dev" / "input"),
            "RECORD_LOCK": str(self.root / "record-log.lock"),
            **(env or {}),
        }
        return subprocess.run(["sh", "-c", script], env=variables, capture_output=True, text=True, check=False)


@pytest.fixture
def guest(tmp_path: Path) -> Guest:
    stubs = tmp_path / "bin"
    stubs.mkdir()
    for name, body in STUBS.items():
        stub = stubs / name
        stub.write_text(f'#!/bin/sh\necho "{name} $*" >>"$CALLS"\n{body}\n')
        stub.chmod(0o755)
    (tmp_path / "www").mkdir()
    return Guest(tmp_path)


def portal_env(settings: dict[str, str]) -> bytes:
    """The portal.env the portal writes for shop-web, whose peers are shop-db and shop-app."""
    config = GuestConfig(
        instance_id="portal-i3",
        hostname="shop-web",
        stack="shop",
        tier="web",
        mac_address="52:54:00:00:00:03",
        address="10.240.0.12",
        prefix_length=24,
        peers=(Peer("shop-db", "db", "10.240.0.10"), Peer("shop-app", "app", "10.240.0.11")),
        settings=settings,
    )
    return drive_files(config)["portal.env"]


@pytest.mark.parametrize(
    "script", ["init", "etc/udhcpc.script", "lib/demo/handle-request", *(f"lib/demo/{name}" for name in LIBRARY)]
)
def test_every_script_parses(script: str) -> None:
    subprocess.run(["sh", "-n", str(ROOTFS / script)], check=True)


def test_a_guest_without_a_config_drive_serves_standalone(guest: Guest) -> None:
    result = guest.run('read_config_drive; echo "status=$? instance=$PORTAL_INSTANCE"')
    assert "no config drive: serving standalone" in result.stdout
    assert result.stdout.rstrip().endswith("status=1 instance=")
    assert not any(call.startswith("mount") for call in guest.calls())


def test_a_drive_without_portal_env_is_standalone_too(guest: Guest) -> None:
    result = guest.run(f'load_portal_env {guest.root}/cidata/portal.env; echo "status=$?"')
    assert "the config drive has no portal.env" in result.stdout
    assert result.stdout.rstrip().endswith("status=1")


def test_portal_env_only_assigns_even_with_hostile_settings(guest: Guest) -> None:
    record = 'it\'s $(touch pwned) `touch pwned` "quoted"; touch pwned'
    env_file = guest.root / "portal.env"
    env_file.write_bytes(portal_env(settings={"record": record, "targets": "db:5432"}))
    result = guest.run(
        f"cd {guest.root} && load_portal_env {env_file} && "
        'printf "%s|%s|%s|%s\\n" "$PORTAL_INSTANCE" "$PORTAL_PEER_APP" '
        '"$PORTAL_SETTING_TARGETS" "$PORTAL_SETTING_RECORD"'
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == f"shop-web|10.240.0.11|db:5432|{record}"
    assert not (guest.root / "pwned").exists()


def test_the_stack_nic_is_found_by_mac_whatever_its_name(guest: Guest) -> None:
    guest.add_nic("lo", "00:00:00:00:00:00", kind=772)
    guest.add_nic("eth0", "52:54:00:aa:00:03")  # the public NIC comes first here
    guest.add_nic("eth1", "52:54:00:00:00:03")
    result = guest.run(
        "PORTAL_MAC=52:54:00:00:00:03 PORTAL_ADDRESS=10.240.0.12 PORTAL_PREFIX=24\n"
        "configure_stack_nic && configure_public_nics 52:54:00:00:00:03"
    )
    assert result.returncode == 0, result.stdout + result.stderr
    calls = guest.calls()
    assert "ip addr add 10.240.0.12/24 dev eth1" in calls
    assert [call for call in calls if call.startswith("udhcpc")] == [
        "udhcpc -i eth0 -s /etc/udhcpc.script -t 10 -T 1 -A 1 -n"
    ]


def test_mac_matching_ignores_case(guest: Guest) -> None:
    guest.add_nic("ens4", "52:54:00:0a:0b:0c")
    assert guest.run("nic_with_mac 52:54:00:0A:0B:0C").stdout.strip() == "ens4"


def test_without_a_drive_every_ethernet_nic_asks_dhcp(guest: Guest) -> None:
    guest.add_nic("lo", "00:00:00:00:00:00", kind=772)
    guest.add_nic("eth0", "52:54:00:aa:00:01")
    guest.run('configure_public_nics ""')
    assert [call.split()[2] for call in guest.calls() if call.startswith("udhcpc")] == ["eth0"]


def test_db_serves_its_record_or_a_default(guest: Guest) -> None:
    named = guest.run('NAME=shop-db PORTAL_SETTING_RECORD="it\'s a record" tier_status', appliance=DEMO_DB)
    assert named.stdout.strip() == "db shop-db: it's a record"
    default = guest.run("NAME=shop-db tier_status", appliance=DEMO_DB)
    assert default.stdout.strip() == "db shop-db: hello from the demo database"


def test_app_passes_on_what_db_says_and_says_what_it_waits_for(guest: Guest) -> None:
    env = {"PORTAL_PEER_DB": "10.240.0.10", "NAME": "shop-app", "ANSWER": "db shop-db: a record"}
    up = guest.run("tier_status", appliance=DEMO_APP, env={**env, "REACHABLE": "10.240.0.10"})
    assert up.stdout.strip() == "app shop-app | db shop-db: a record"
    assert "wget -q -O - http://10.240.0.10:5432/status.txt" in guest.calls()
    down = guest.run('tier_status; echo "status=$?"', appliance=DEMO_APP, env=env)
    assert down.stdout.split("\n")[:2] == ["app shop-app | waiting for db at 10.240.0.10:5432", "status=1"]
    alone = guest.run("NAME=demo-app tier_status", appliance=DEMO_APP)
    assert alone.stdout.strip() == "app demo-app | no db tier in this stack"


def test_web_page_shows_the_chain_escaped_with_its_marker(guest: Guest) -> None:
    env = {
        "PORTAL_PEER_APP": "10.240.0.11",
        "PORTAL_INSTANCE": "shop-web",
        "REACHABLE": "10.240.0.11",
        "ANSWER": "app shop-app | db shop-db: <b>&</b>",
    }
    result = guest.run("publish_first_page && publish_status", env=env)
    assert result.returncode == 0, result.stderr
    status = guest.served("status.txt")
    assert status == "web shop-web | app shop-app | db shop-db: <b>&</b>\n"
    page = guest.served("index.html")
    assert "<h1>demo-web appliance</h1>" in page
    assert "web shop-web | app shop-app | db shop-db: &lt;b&gt;&amp;&lt;/b&gt;" in page
    assert "refresh" not in page  # complete, so browsers need not reload it


def test_a_waiting_page_says_what_for_and_reloads(guest: Guest) -> None:
    result = guest.run(
        "NAME=shop-web WAIT_CAP_SECONDS=0 wait_for_peers",
        env={"PORTAL_WAIT_FOR": "10.240.0.11:8080 10.240.0.10:5432", "REACHABLE": "10.240.0.10"},
    )
    assert "gave up waiting for 10.240.0.11:8080" in result.stdout
    page = guest.served("index.html")
    assert "web shop-web | waiting for 10.240.0.11:8080" in page
    assert '<meta http-equiv="refresh"' in page


def test_the_probe_reports_each_target_and_the_round(guest: Guest) -> None:
    # Reachable: db only. my-cache resolves (non-alphanumerics as "_") but does not answer.
    peers = {"PORTAL_PEER_DB": "10.240.0.10", "PORTAL_PEER_MY_CACHE": "10.240.0.14", "REACHABLE": "10.240.0.10"}
    targets = "10.0.2.2:34567 db:5432 my-cache:6379 nosuch:80 10.240.1.10:http"
    guest.run("probe_round; probe_round", appliance=DEMO_PROBE, env={**peers, "PORTAL_SETTING_TARGETS": targets})
    assert guest.served("status.txt").splitlines() == [
        "target 10.0.2.2:34567 blocked",
        "target 10.240.0.10:5432 reachable",
        "target 10.240.0.14:6379 blocked",
        "target nosuch:80 unresolved",
        "target 10.240.1.10:http invalid",
        "round 2 done",
    ]
    assert "nc -w 2 10.0.2.2 34567 -e true" in guest.calls()


def test_a_probe_without_targets_says_so(guest: Guest) -> None:
    guest.run("probe_round", appliance=DEMO_PROBE)
    assert guest.served("status.txt").splitlines() == [
        "no targets: set the probe's targets setting",
        "round 1 done",
    ]


def add_input_device(guest: Guest, number: int, name: str, event: int) -> Path:
    """An input device in sysfs and its event device (a plain file here, each read an event)."""
    device = guest.root / "sys" / "class" / "input" / f"input{number}"
    (device / f"event{event}").mkdir(parents=True)
    (device / "name").write_text(f"{name}\n")
    node = guest.root / "dev" / "input" / f"event{event}"
    node.parent.mkdir(parents=True, exist_ok=True)
    node.write_bytes(bytes(24))
    return node


def test_the_power_button_is_found_by_name_among_the_input_devices(guest: Guest) -> None:
    add_input_device(guest, 0, "AT Translated Set 2 keyboard", 0)
    add_input_device(guest, 3, "Power Button", 2)
    assert guest.run("power_button_device").stdout.strip() == str(guest.root / "dev" / "input" / "event2")


def test_without_a_power_button_the_guest_says_shutdowns_will_be_forced(guest: Guest) -> None:
    add_input_device(guest, 0, "AT Translated Set 2 keyboard", 0)
    result = guest.run('watch_power_button; echo "status=$?"')
    assert "no ACPI power button: a shutdown will end in a forced power-off" in result.stdout
    assert result.stdout.rstrip().endswith("status=1")
    assert not any(call.startswith("poweroff") for call in guest.calls())


def test_a_press_syncs_and_powers_off_with_a_line_on_the_console(guest: Guest) -> None:
    button = add_input_device(guest, 1, "Power Button", 1)
    # The stand-in poweroff removes the device, so the watch ends after one press.
    result = guest.run("watch_power_button", env={"POWER_BUTTON": str(button)})
    calls = [call.strip() for call in guest.calls()]
    assert [call for call in calls if call.split()[0] in ("sync", "poweroff")] == ["sync", "poweroff -f"]
    lines = result.stdout.splitlines()
    assert any(line.endswith("power button pressed: flushing the disks, then powering off") for line in lines)
    assert lines[-1].endswith("demo-web: powering off")
    # The record log stays locked: no append starts between the sync and the power cut.
    assert (guest.root / "record-log.lock").is_dir()


def test_a_power_off_waits_for_an_append_but_not_forever(guest: Guest) -> None:
    (guest.root / "record-log.lock").mkdir()
    result = guest.run("power_off", env={"RECORD_LOCK_TRIES": "2"})
    assert "an append to the record log did not finish in time" in result.stdout
    assert [call.strip() for call in guest.calls()][-2:] == ["sync", "poweroff -f"]
