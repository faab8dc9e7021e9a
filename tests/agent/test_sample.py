"""Building the wire sample: the mAh-as-mWh lie, and what a sample carries."""

from __future__ import annotations

from datetime import UTC, datetime

from agent.model import BatteryReading, OsInfo, Reading
from agent.privacy import PrivacyPolicy
from agent.sample import build_sample

POLICY = PrivacyPolicy(frozenset(), b"")
TS = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)


def _battery(design: float, full: float) -> dict[str, object]:
    b = BatteryReading(
        "BAT0",
        design_capacity_mwh=design,
        full_capacity_mwh=full,
        health_pct=round(full / design * 100, 2),
    )
    sample = build_sample(Reading(OsInfo("windows"), [b]), TS, POLICY)
    battery: dict[str, object] = sample["batteries"][0]
    return battery


def test_capacities_that_cannot_be_mwh_are_nulled_but_health_is_kept() -> None:
    # 4474 "mWh" is a 4474 mAh pack (the Dell uevent fixture's design charge)
    b = _battery(4474.0, 3750.0)
    assert (b["design_capacity_mwh"], b["full_capacity_mwh"]) == (None, None)
    assert b["health_pct"] == 83.82
    assert _battery(500_000.0, 400_000.0)["design_capacity_mwh"] is None


def test_plausible_laptop_capacities_are_kept() -> None:
    b = _battery(57_020.0, 42_490.0)
    assert (b["design_capacity_mwh"], b["full_capacity_mwh"], b["health_pct"]) == (
        57_020.0,
        42_490.0,
        74.52,
    )


def test_sample_shape_and_timestamp() -> None:
    sample = build_sample(Reading(OsInfo("linux", "6.1")), TS, POLICY)
    assert sample == {
        "ts": "2026-11-02T08:00:00Z",
        "os": {"platform": "linux", "release": "6.1"},
        "batteries": [],
        "wifi": None,
        "connectivity": None,
        "agent": None,
    }
