"""What the demo publishes: one small appliance per tier of the classic three-tier stack."""

from __future__ import annotations

from dataclasses import dataclass

# Under TCG the guest serves its page with 72 MiB and never starts its kernel with 64 MiB;
# 128 MiB keeps a comfortable margin above that floor.
MIN_RAM_MIB = 128


@dataclass(frozen=True)
class DemoAppliance:
    appliance: str
    role: str
    port: int
    title: str

    @property
    def filename(self) -> str:
        return f"{self.appliance}.qcow2"


DEMO_APPLIANCES = (
    DemoAppliance(appliance="demo-web", role="web", port=80, title="Demo web tier"),
    DemoAppliance(appliance="demo-app", role="app", port=8080, title="Demo app tier"),
    DemoAppliance(appliance="demo-db", role="db", port=5432, title="Demo db tier"),
)
