"""What the demo publishes: one small appliance per tier of the classic three-tier stack, and a
test-only probe that is built only when asked for."""

from __future__ import annotations

from dataclasses import dataclass

# Under TCG the guest serves its page with 72 MiB and never starts its kernel with 64 MiB;
# 128 MiB keeps a comfortable margin above that floor.
MIN_RAM_MIB = 128

# Said on every appliance's catalog page: whoever opens the console knows what they can do there.
CONSOLE_NOTE = (
    " Its screen and serial console show the boot, and its serial console offers a root login with no "
    "password: this is a demo appliance, not one to expose."
)


@dataclass(frozen=True)
class DemoAppliance:
    appliance: str
    role: str
    port: int
    title: str
    description: str
    # The tier this one fetches its status from (its address comes from the config drive).
    upstream: DemoAppliance | None = None

    @property
    def filename(self) -> str:
        return f"{self.appliance}.qcow2"


DEMO_DB = DemoAppliance(
    appliance="demo-db",
    role="db",
    port=5432,
    title="Demo db tier",
    description=(
        "Minimal Linux guest, the db tier of the demo stack, on port 5432: keeps records on its own disk "
        "(they survive a reboot and a power-off), takes a new one by POST /records (one line of text/plain) "
        "and lists them over HTTP, with its status line." + CONSOLE_NOTE
    ),
)
DEMO_APP = DemoAppliance(
    appliance="demo-app",
    role="app",
    port=8080,
    title="Demo app tier",
    description=(
        "Minimal Linux guest, the app tier of the demo stack, on port 8080: passes records between the web "
        "and db tiers over the stack network, and serves a page with the db tier's status and every record."
        + CONSOLE_NOTE
    ),
    upstream=DEMO_DB,
)
DEMO_WEB = DemoAppliance(
    appliance="demo-web",
    role="web",
    port=80,
    title="Demo web tier",
    description=(
        "Minimal Linux guest, the web tier of the demo stack, on port 80: its page shows every tier's "
        "instance name, the db tier's status and every record, oldest first; POST /records (one line of "
        "text/plain) adds a record, which the db tier keeps on its disk." + CONSOLE_NOTE
    ),
    upstream=DEMO_APP,
)
DEMO_APPLIANCES = (DEMO_WEB, DEMO_APP, DEMO_DB)

# For end-to-end tests only: reports which address:port targets it can open TCP connections to.
DEMO_PROBE = DemoAppliance(
    appliance="demo-probe",
    role="probe",
    port=80,
    title="Network probe (tests only)",
    description=(
        "Test-only guest that tries a TCP connection to each address:port of its targets setting "
        "and serves which ones are reachable and which are blocked, on port 80." + CONSOLE_NOTE
    ),
)


def demo_appliances(*, include_probe: bool = False) -> tuple[DemoAppliance, ...]:
    return (*DEMO_APPLIANCES, DEMO_PROBE) if include_probe else DEMO_APPLIANCES
