from __future__ import annotations

from datetime import timedelta

from collector.rules.config import Trust
from collector.rules.state import BatteryState
from collector.rules.trust import (
    COLLAPSE,
    CYCLES_STUCK_ZERO,
    DESIGN_OUT_OF_RANGE,
    FULL_OVER_DESIGN,
    HEALTH_MISMATCH,
    UNIT_MISMATCH,
    battery_trust,
    capacity_trusted,
    cycles_trusted,
    health_of,
)
from tests.rules.factory import T0, battery


def test_plausible_reading_is_trusted() -> None:
    assert battery_trust(None, battery(88.0)) == []
    assert battery_trust(None, battery(105.0)) == []  # new packs exceed 100 %


def test_full_over_110_percent_of_design() -> None:
    assert battery_trust(None, battery(health=None, full_capacity_mwh=55_000.0)) == []  # 110 %
    assert battery_trust(None, battery(health=None, full_capacity_mwh=55_500.0)) == [
        FULL_OVER_DESIGN
    ]
    # health alone, no capacities
    only_health = battery(
        health=None, design_capacity_mwh=None, full_capacity_mwh=None, health_pct=130.0
    )
    assert battery_trust(None, only_health) == [FULL_OVER_DESIGN]


def test_unit_confusion() -> None:
    # design in mAh (4,200) where mWh was expected: below 10 Wh
    mah = battery(health=None, design_capacity_mwh=4_200.0, full_capacity_mwh=3_900.0)
    assert battery_trust(None, mah) == [DESIGN_OUT_OF_RANGE]
    # design in µWh-scale mistake: above 200 Wh
    big = battery(health=None, design_capacity_mwh=500_000.0, full_capacity_mwh=450_000.0)
    assert battery_trust(None, big) == [DESIGN_OUT_OF_RANGE]
    # full in mAh next to design in mWh: ratio 0.08
    mixed = battery(health=None, full_capacity_mwh=4_000.0)
    assert battery_trust(None, mixed) == [UNIT_MISMATCH]
    # full in mWh next to design in mAh: ratio 12 (reported as over design)
    reverse = battery(health=None, design_capacity_mwh=10_000.0, full_capacity_mwh=120_000.0)
    assert battery_trust(None, reverse) == [FULL_OVER_DESIGN]


def test_health_disagreeing_with_capacities() -> None:
    assert battery_trust(None, battery(80.0, full_capacity_mwh=40_000.0)) == []
    assert battery_trust(None, battery(80.0, full_capacity_mwh=42_600.0)) == [HEALTH_MISMATCH]


def test_collapse_from_previous_sample() -> None:
    prev = BatteryState()
    prev.update(battery(80.0), T0)
    assert battery_trust(prev, battery(65.0)) == []  # 15 points: the limit
    assert battery_trust(prev, battery(64.9)) == [COLLAPSE]
    assert battery_trust(prev, battery(95.0)) == []  # a rise (recalibration) is not a collapse
    prev.update(battery(50.0), T0 + timedelta(hours=1))
    assert battery_trust(prev, battery(50.0)) == [COLLAPSE]  # second sight of 3
    assert battery_trust(prev, battery(66.0)) == []  # back within 15 points of 80: no collapse


def test_cycles_stuck_at_zero() -> None:
    assert battery_trust(None, battery(97.0, cycle_count=0)) == []  # a new pack
    assert battery_trust(None, battery(79.0, cycle_count=0)) == [CYCLES_STUCK_ZERO]
    prev = BatteryState()
    prev.update(battery(95.0, cycle_count=0), T0)
    prev.update(battery(93.0, cycle_count=0), T0 + timedelta(days=30))
    assert battery_trust(prev, battery(91.0, cycle_count=0)) == []  # 4 points from 95
    assert battery_trust(prev, battery(90.0, cycle_count=0)) == [CYCLES_STUCK_ZERO]  # 5 points
    assert battery_trust(prev, battery(90.0, cycle_count=12)) == []


def test_reason_families() -> None:
    assert not capacity_trusted([COLLAPSE])
    assert capacity_trusted([CYCLES_STUCK_ZERO])
    assert not cycles_trusted([CYCLES_STUCK_ZERO])
    assert cycles_trusted([UNIT_MISMATCH])


def test_thresholds_are_configurable() -> None:
    strict = Trust(full_over_design_max_pct=105, collapse_drop_pct=5)
    assert battery_trust(None, battery(health=None, full_capacity_mwh=53_000.0), strict) == [
        FULL_OVER_DESIGN
    ]
    prev = BatteryState()
    prev.update(battery(80.0), T0, strict)
    assert battery_trust(prev, battery(74.0), strict) == [COLLAPSE]


def test_health_of() -> None:
    assert health_of(battery(72.5)) == 72.5
    assert health_of(battery(health=None, full_capacity_mwh=30_000.0)) == 60.0
    assert health_of(battery(health=None, full_capacity_mwh=None)) is None


def test_state_counts_untrusted_and_keeps_them_out_of_the_forecast() -> None:
    st = BatteryState()
    st.update(battery(90.0), T0)
    st.update(battery(health=None, full_capacity_mwh=70_000.0), T0 + timedelta(days=1))
    st.update(battery(50.0), T0 + timedelta(days=2))  # collapse: not yet confirmed
    assert st.untrusted_samples == 2
    assert st.fade.n == 1
    assert (st.last_health_pct, st.collapse_from_pct, st.collapse_seen) == (90.0, 90.0, 1)
    st.update(battery(50.0), T0 + timedelta(days=3))
    st.update(battery(50.0), T0 + timedelta(days=4))  # third sight: confirmed
    assert (st.last_health_pct, st.collapse_from_pct, st.collapse_seen) == (50.0, None, 0)
    assert st.fade.n == 2
