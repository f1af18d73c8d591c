"""The flavor suggestion's rules: smaller, bigger, keep, too little data, no flavor fits."""

from __future__ import annotations

import pytest

from metrics.page_data import TierUse
from metrics.suggest import MIN_OBSERVED_SECONDS, suggest_flavor
from provisioning.models import Flavor

HOUR = 3600

FLAVORS = [
    Flavor(name="tiny", vcpus=1, memory_mib=1024, disk_gib=10),
    Flavor(name="small", vcpus=2, memory_mib=2048, disk_gib=20),
    Flavor(name="medium", vcpus=4, memory_mib=4096, disk_gib=40),
    Flavor(name="large", vcpus=8, memory_mib=8192, disk_gib=80),
]


def use(
    *, cpu: float | None, vcpus: int = 4, memory_mib: int = 4096, memory_used: int | None = None, hours=23, disk=10
):
    return TierUse(
        tier="web",
        vcpus=vcpus,
        memory_mib=memory_mib,
        disk_gib=disk,
        samples=int(hours * 60),
        observed_seconds=hours * HOUR,
        peak_cpu_percent=cpu,
        average_cpu_percent=cpu,
        peak_memory_used_mib=memory_used,
    )


def test_a_quiet_tier_is_offered_the_smallest_flavor_that_holds_its_peaks_with_headroom():
    # 12% of 4 vCPUs is 0.48 busy vCPUs: 1 vCPU holds it under 60%; 700 MiB used needs 875 MiB.
    suggestion = suggest_flavor(use=use(cpu=12.0, memory_used=700), flavors=FLAVORS)
    assert suggestion.verdict == "smaller"
    assert suggestion.flavor.name == "tiny"
    assert suggestion.reason.startswith("peak 12% of 4 vCPUs over 23 hours, memory peak 700 MiB of 4096 MiB")


def test_headroom_rules_out_a_flavor_the_peak_would_fill():
    # 18% of 4 is 0.72 busy vCPUs: under 60% of 1 vCPU it is not; 2 vCPUs hold it.
    suggestion = suggest_flavor(use=use(cpu=18.0, memory_used=700), flavors=FLAVORS)
    assert (suggestion.verdict, suggestion.flavor.name) == ("smaller", "small")


def test_memory_not_reported_is_not_taken_away():
    suggestion = suggest_flavor(use=use(cpu=5.0, memory_used=None), flavors=FLAVORS)
    assert suggestion.verdict == "keep"  # every flavor with less than 4096 MiB would shrink memory blindly
    assert "no smaller flavor" in suggestion.reason


def test_a_busy_tier_is_offered_a_bigger_flavor():
    suggestion = suggest_flavor(use=use(cpu=92.0, vcpus=2, memory_mib=2048, memory_used=1000), flavors=FLAVORS)
    assert suggestion.verdict == "bigger"
    assert suggestion.flavor.name == "medium"  # 1.84 busy vCPUs need 4 at 60%
    assert suggestion.reason.startswith("peak 92% of 2 vCPUs over 23 hours")


def test_full_memory_asks_for_more_whatever_the_cpu_did():
    suggestion = suggest_flavor(use=use(cpu=40.0, vcpus=2, memory_mib=2048, memory_used=1950), flavors=FLAVORS)
    assert suggestion.verdict == "bigger"
    assert suggestion.flavor.name == "medium"


def test_a_tier_in_between_keeps_its_size():
    suggestion = suggest_flavor(use=use(cpu=45.0, memory_used=2000), flavors=FLAVORS)
    assert suggestion.verdict == "keep"
    assert suggestion.flavor is None
    assert (
        suggestion.reason
        == "peak 45% of 4 vCPUs over 23 hours, memory peak 2000 MiB of 4096 MiB: the size fits what it uses."
    )


def test_no_flavor_bigger_than_the_biggest():
    suggestion = suggest_flavor(use=use(cpu=99.0, vcpus=8, memory_mib=8192, memory_used=4000), flavors=FLAVORS)
    assert suggestion.verdict == "none_fits"
    assert suggestion.flavor is None
    assert "no flavor of the project has it" in suggestion.reason


def test_no_flavor_at_all_fits_nothing():
    assert suggest_flavor(use=use(cpu=95.0, vcpus=2), flavors=[]).verdict == "none_fits"
    assert suggest_flavor(use=use(cpu=5.0, memory_used=100), flavors=[]).verdict == "keep"


def test_a_flavor_must_hold_the_tiers_disk():
    suggestion = suggest_flavor(use=use(cpu=12.0, memory_used=700, disk=15), flavors=FLAVORS)
    assert suggestion.flavor.name == "small"  # tiny's 10 GiB disk cannot hold 15 GiB


@pytest.mark.parametrize(
    ("hours", "peak", "said"),
    [
        (3, 5.0, "Too few samples to judge (watched for 3 hours): another 9 hours of samples are needed."),
        (0, None, "Too few samples to judge (no samples yet): another 12 hours of samples are needed."),
        (
            11.5,
            95.0,
            "Too few samples to judge (watched for 11 hours 30 minutes): another 30 minutes of samples are needed.",
        ),
    ],
)
def test_too_short_a_watch_says_how_much_longer(hours, peak, said):
    short = use(cpu=peak, hours=hours)
    assert short.observed_seconds < MIN_OBSERVED_SECONDS
    suggestion = suggest_flavor(use=short, flavors=FLAVORS)
    assert (suggestion.verdict, suggestion.flavor) == ("wait", None)
    assert suggestion.reason == said
