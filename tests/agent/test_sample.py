"""Building the wire sample: the mAh-as-mWh lie, and what a sample carries."""

from __future__ import annotations

import json
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


def test_firmware_garbage_in_text_fields_does_not_cost_the_sample() -> None:
    """NUL padding, an 8-bit escape and an over-long model name are cleaned on the
    laptop: the collector's contract would reject the whole sample (health included)."""
    from collector.contract import Sample  # noqa: PLC0415 - the contract is the judge

    battery = BatteryReading(
        name="\x00\x00",
        design_capacity_mwh=50_000.0,
        full_capacity_mwh=40_000.0,
        health_pct=80.0,
        manufacturer="SMP\x00\x00\x00",
        model="5B10W13975" + "\x9b" + "X" * 80,
        technology="\x01",
    )
    reading = Reading(os=OsInfo(platform="linux", release="6.1.0\n"), batteries=[battery])
    sample = build_sample(reading, TS, POLICY)
    model = Sample.model_validate_json(json.dumps(sample))
    [out] = model.batteries
    assert (out.name, out.manufacturer, out.technology) == ("battery0", "SMP", None)
    assert out.model is not None and out.model.startswith("5B10W13975X") and len(out.model) == 64
    assert out.health_pct == 80.0
    assert model.os.release == "6.1.0"
