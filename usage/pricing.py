"""Prices per unit-hour and what holding resources costs at them.

The prices are settings (``PRICE_VCPU_HOUR``, ``PRICE_MEMORY_GIB_HOUR``, ``PRICE_DISK_GIB_HOUR``,
``PRICE_SNAPSHOT_GIB_HOUR``, from the ``PORTAL_PRICE_*`` variables) in ``settings.CURRENCY``. They are
read at each use, so a changed price applies from the next sample on and what was already recorded
keeps the price it was sampled at.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings

MIB_PER_GIB = 1024
BYTES_PER_GIB = 1024**3
SECONDS_PER_HOUR = 3600
# How amounts of money are shown: cents, rounded half up as people round.
CENTS = Decimal("0.01")


@dataclass(frozen=True)
class Prices:
    vcpu_hour: Decimal
    memory_gib_hour: Decimal
    disk_gib_hour: Decimal
    snapshot_gib_hour: Decimal
    currency: str


def current_prices() -> Prices:
    return Prices(
        vcpu_hour=Decimal(settings.PRICE_VCPU_HOUR),
        memory_gib_hour=Decimal(settings.PRICE_MEMORY_GIB_HOUR),
        disk_gib_hour=Decimal(settings.PRICE_DISK_GIB_HOUR),
        snapshot_gib_hour=Decimal(settings.PRICE_SNAPSHOT_GIB_HOUR),
        currency=settings.CURRENCY,
    )


@dataclass(frozen=True)
class UnitHours:
    """What was held over some time, in unit-hours (exact ``Decimal``s, not yet rounded)."""

    vcpu: Decimal = Decimal(0)
    memory_gib: Decimal = Decimal(0)
    disk_gib: Decimal = Decimal(0)
    snapshot_gib: Decimal = Decimal(0)

    def cost(self, prices: Prices) -> Decimal:
        return (
            self.vcpu * prices.vcpu_hour
            + self.memory_gib * prices.memory_gib_hour
            + self.disk_gib * prices.disk_gib_hour
            + self.snapshot_gib * prices.snapshot_gib_hour
        )


def held_for(*, hours: Decimal, vcpus: int, memory_mib: int, disk_gib: int, snapshot_bytes: int = 0) -> UnitHours:
    """Holding these amounts for ``hours`` hours."""
    return UnitHours(
        vcpu=vcpus * hours,
        memory_gib=Decimal(memory_mib) / MIB_PER_GIB * hours,
        disk_gib=disk_gib * hours,
        snapshot_gib=Decimal(snapshot_bytes) / BYTES_PER_GIB * hours,
    )


def launch_cost(*, vcpus: int, memory_mib: int, disk_gib: int, lease_seconds: int) -> tuple[Decimal, Decimal]:
    """What a stack of this size costs per hour while running, and over its whole lease (if it runs throughout).

    Both rounded to cents: the launch dialog shows an estimate, the records keep the exact amounts.
    """
    prices = current_prices()
    per_hour = held_for(hours=Decimal(1), vcpus=vcpus, memory_mib=memory_mib, disk_gib=disk_gib).cost(prices)
    for_lease = per_hour * Decimal(lease_seconds) / SECONDS_PER_HOUR
    return money(per_hour), money(for_lease)


def money(amount: Decimal) -> Decimal:
    """An amount as it is shown: to the cent."""
    return amount.quantize(CENTS, rounding=ROUND_HALF_UP)


def money_text(amount: Decimal) -> str:
    """``0.42 EUR``: the amount to the cent and the currency."""
    return f"{money(amount)} {settings.CURRENCY}"
