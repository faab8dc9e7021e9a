from __future__ import annotations

import copy
import dataclasses
import random
from datetime import timedelta
from types import SimpleNamespace

import pytest

from collector.contract import Battery
from collector.rules.config import Trust
from collector.rules.state import BatteryState
from collector.rules.trust import (
    CAPACITY_REASONS,
    COLLAPSE,
    CYCLE_REASONS,
    CYCLES_STUCK_ZERO,
    DEFAULT_TRUST,
    DESIGN_OUT_OF_RANGE,
    FULL_OVER_DESIGN,
    HEALTH_MISMATCH,
    UNIT_MISMATCH,
    Assessment,
    assess,
    health_of,
)
from tests.rules.factory import T0, battery, feed

H = timedelta(hours=1)


def reasons(
    history: BatteryState | None, reading: Battery, config: Trust = DEFAULT_TRUST
) -> tuple[str, ...]:
    return assess(history, reading, config).reasons


def test_plausible_reading_is_trusted() -> None:
    verdict = assess(None, battery(88.0))
    assert verdict == Assessment((), 88.0)
    assert verdict.capacity_trusted and verdict.cycles_trusted
    assert verdict.trusted_health_pct == 88.0
    assert reasons(None, battery(105.0)) == ()  # new packs exceed 100 %


def test_full_over_110_percent_of_design() -> None:
    assert reasons(None, battery(health=None, full_capacity_mwh=55_000.0)) == ()  # 110 %
    assert reasons(None, battery(health=None, full_capacity_mwh=55_500.0)) == (FULL_OVER_DESIGN,)
    # health alone, no capacities
    only_health = battery(
        health=None, design_capacity_mwh=None, full_capacity_mwh=None, health_pct=130.0
    )
    assert reasons(None, only_health) == (FULL_OVER_DESIGN,)


def test_unit_confusion() -> None:
    # design in mAh (4,200) where mWh was expected: below 10 Wh
    mah = battery(health=None, design_capacity_mwh=4_200.0, full_capacity_mwh=3_900.0)
    assert reasons(None, mah) == (DESIGN_OUT_OF_RANGE,)
    # design in µWh-scale mistake: above 200 Wh
    big = battery(health=None, design_capacity_mwh=500_000.0, full_capacity_mwh=450_000.0)
    assert reasons(None, big) == (DESIGN_OUT_OF_RANGE,)
    # full in mAh next to design in mWh: ratio 0.08
    mixed = battery(health=None, full_capacity_mwh=4_000.0)
    assert reasons(None, mixed) == (UNIT_MISMATCH,)
    # full in mWh next to design in mAh: ratio 12 (reported as over design)
    reverse = battery(health=None, design_capacity_mwh=10_000.0, full_capacity_mwh=120_000.0)
    assert reasons(None, reverse) == (FULL_OVER_DESIGN,)


def test_health_disagreeing_with_capacities() -> None:
    assert reasons(None, battery(80.0, full_capacity_mwh=40_000.0)) == ()
    assert reasons(None, battery(80.0, full_capacity_mwh=42_600.0)) == (HEALTH_MISMATCH,)


def test_an_untrusted_assessment_keeps_the_readings_health() -> None:
    verdict = assess(None, battery(health=None, full_capacity_mwh=60_000.0))
    assert verdict.health_pct == 120.0  # what the gauge said
    assert not verdict.capacity_trusted
    assert verdict.trusted_health_pct is None  # what the rules may use


def test_collapse_from_previous_sample() -> None:
    prev = BatteryState()
    feed(prev, battery(80.0), T0)
    assert reasons(prev, battery(65.0)) == ()  # 15 points: the limit
    assert reasons(prev, battery(64.9)) == (COLLAPSE,)
    assert reasons(prev, battery(95.0)) == ()  # a rise (recalibration) is not a collapse
    feed(prev, battery(50.0), T0 + H)  # first sight of 3
    assert (prev.collapse_from_pct, prev.collapse_seen) == (80.0, 1)
    assert reasons(prev, battery(50.0)) == (COLLAPSE,)  # second sight of 3
    assert reasons(prev, battery(66.0)) == ()  # back within 15 points of 80: no collapse
    feed(prev, battery(50.0), T0 + 2 * H)  # second sight
    assert reasons(prev, battery(50.0)) == ()  # the third sight is believed


def test_cycles_stuck_at_zero() -> None:
    assert reasons(None, battery(97.0, cycle_count=0)) == ()  # a new pack
    assert reasons(None, battery(79.0, cycle_count=0)) == (CYCLES_STUCK_ZERO,)
    prev = BatteryState()
    feed(prev, battery(95.0, cycle_count=0), T0)
    feed(prev, battery(93.0, cycle_count=0), T0 + timedelta(days=30))
    assert reasons(prev, battery(91.0, cycle_count=0)) == ()  # 4 points from 95
    assert reasons(prev, battery(90.0, cycle_count=0)) == (CYCLES_STUCK_ZERO,)  # 5 points
    assert reasons(prev, battery(90.0, cycle_count=12)) == ()
    stuck = assess(prev, battery(90.0, cycle_count=0))
    assert stuck.capacity_trusted and not stuck.cycles_trusted
    assert stuck.trusted_health_pct == 90.0  # the health still counts


def test_an_untrusted_reading_does_not_set_the_zero_cycle_baseline() -> None:
    prev = BatteryState()
    # a new pack's first reading: 0 cycles, full at 120 % of design (untrusted)
    feed(prev, battery(health=None, full_capacity_mwh=60_000.0, cycle_count=0), T0)
    # then a plausible 97 % with 0 cycles: a new pack, nothing has moved
    assert reasons(prev, battery(97.0, cycle_count=0)) == ()


def test_reason_families() -> None:
    assert not Assessment((COLLAPSE,), 50.0).capacity_trusted
    assert Assessment((CYCLES_STUCK_ZERO,), 50.0).capacity_trusted
    assert not Assessment((CYCLES_STUCK_ZERO,), 50.0).cycles_trusted
    assert Assessment((UNIT_MISMATCH,), 50.0).cycles_trusted
    assert Assessment((UNIT_MISMATCH,), 50.0).trusted_health_pct is None
    assert CAPACITY_REASONS.isdisjoint(CYCLE_REASONS)
    assert {
        FULL_OVER_DESIGN,
        DESIGN_OUT_OF_RANGE,
        UNIT_MISMATCH,
        HEALTH_MISMATCH,
        COLLAPSE,
    } == CAPACITY_REASONS
    assert {CYCLES_STUCK_ZERO} == CYCLE_REASONS


def test_thresholds_are_configurable() -> None:
    strict = Trust(full_over_design_max_pct=105, collapse_drop_pct=5)
    assert reasons(None, battery(health=None, full_capacity_mwh=53_000.0), strict) == (
        FULL_OVER_DESIGN,
    )
    assert reasons(None, battery(health=None, full_capacity_mwh=53_000.0)) == ()
    prev = BatteryState()
    feed(prev, battery(80.0), T0)
    assert reasons(prev, battery(74.0), strict) == (COLLAPSE,)
    assert reasons(prev, battery(74.0)) == ()


def test_collapse_believed_at_once_when_confirmation_is_one_sample() -> None:
    at_once = Trust(collapse_confirm_samples=1)
    prev = BatteryState()
    feed(prev, battery(85.0), T0)
    assert reasons(prev, battery(40.0), at_once) == ()


def test_health_of() -> None:
    assert health_of(battery(72.5)) == 72.5
    assert health_of(battery(health=None, full_capacity_mwh=30_000.0)) == 60.0
    assert health_of(battery(health=None, full_capacity_mwh=None)) is None


# --- assess is a pure value ------------------------------------------------------------


def _history_mid_collapse() -> BatteryState:
    """A battery with everything trust reads: a last trusted health, a collapse
    awaiting confirmation and a zero-cycle streak."""
    st = BatteryState()
    feed(st, battery(85.0, cycle_count=0), T0)
    feed(st, battery(40.0, cycle_count=0), T0 + H)
    assert (st.collapse_from_pct, st.collapse_seen, st.zero_cycle_streak) == (85.0, 1, 2)
    return st


def test_assess_is_pure_same_inputs_same_result() -> None:
    history = _history_mid_collapse()
    reading = battery(41.0, cycle_count=0)
    first = assess(history, reading)
    # judged again and again, nothing accumulates: still the second sight of 3
    assert [assess(history, reading) for _ in range(5)] == [first] * 5
    assert first == Assessment((COLLAPSE, CYCLES_STUCK_ZERO), 41.0)


def test_assess_does_not_modify_the_history_or_the_reading() -> None:
    history = _history_mid_collapse()
    before = copy.deepcopy(history)
    reading = battery(41.0, cycle_count=0)
    reading_before = reading.model_dump()
    assess(history, reading)
    assess(history, battery(90.0, cycle_count=5))  # a trusted reading changes nothing either
    assert history == before
    assert reading.model_dump() == reading_before


def test_assessment_is_frozen() -> None:
    verdict = assess(None, battery(88.0))
    with pytest.raises(dataclasses.FrozenInstanceError):
        verdict.reasons = (COLLAPSE,)  # type: ignore[misc]


def test_history_is_anything_with_the_protocol_fields() -> None:
    # `TrustHistory` is a protocol: a stored or synthetic history works as well.
    history = SimpleNamespace(
        last_health_pct=80.0,
        collapse_from_pct=None,
        collapse_seen=0,
        zero_cycle_start_health_pct=None,
        last_trusted=True,
        design_capacity_mwh=50_000.0,
        full_capacity_mwh=40_000.0,
    )
    assert assess(history, battery(60.0)).reasons == (COLLAPSE,)  # type: ignore[arg-type]
    assert history.collapse_seen == 0


def test_state_update_uses_the_given_assessment() -> None:
    # The state folds in what it is told, without judging trust again.
    st = BatteryState()
    feed(st, battery(90.0), T0)
    # a plausible reading, declared a collapse by its assessment: held back
    st.update(battery(89.0), T0 + H, Assessment((COLLAPSE,), 89.0))
    assert (st.last_health_pct, st.collapse_from_pct, st.collapse_seen) == (90.0, 90.0, 1)
    assert st.untrusted_samples == 1
    assert st.fade.n == 1
    # a reading whose assessment is trusted: its health (the assessment's) is taken
    st.update(battery(40.0), T0 + 2 * H, Assessment((), 40.0))
    assert (st.last_health_pct, st.collapse_from_pct, st.collapse_seen) == (40.0, None, 0)
    assert st.last_ts == T0 + 2 * H
    assert st.fade.n == 2
    # a capacity reason keeps the reading out of the fade and the history
    st.update(battery(88.0), T0 + 3 * H, Assessment((UNIT_MISMATCH,), 88.0))
    assert (st.last_health_pct, st.fade.n, st.untrusted_samples) == (40.0, 2, 2)


def test_state_counts_untrusted_and_keeps_them_out_of_the_forecast() -> None:
    st = BatteryState()
    feed(st, battery(90.0), T0)
    feed(st, battery(health=None, full_capacity_mwh=70_000.0), T0 + timedelta(days=1))
    feed(st, battery(50.0), T0 + timedelta(days=2))  # collapse: not yet confirmed
    assert st.untrusted_samples == 2
    assert st.fade.n == 1
    assert (st.last_health_pct, st.collapse_from_pct, st.collapse_seen) == (90.0, 90.0, 1)
    feed(st, battery(50.0), T0 + timedelta(days=3))
    feed(st, battery(50.0), T0 + timedelta(days=4))  # third sight: confirmed
    assert (st.last_health_pct, st.collapse_from_pct, st.collapse_seen) == (50.0, None, 0)
    assert st.fade.n == 2
    assert st.untrusted_samples == 3


def _random_reading(rnd: random.Random) -> Battery:
    """Readings from a few values, so that repeats, collapses, zero cycle counts,
    missing capacities and mismatched health figures all come up."""
    health = rnd.choice((95.0, 90.0, 90.0, 90.0, 55.0, 45.0, 120.0, None))
    kw: dict[str, object] = {"cycle_count": rnd.choice((0, 0, 300, 300, None))}
    if rnd.random() < 0.1:  # no design capacity, or one in mAh
        kw["design_capacity_mwh"] = design = rnd.choice((None, 4_200.0))
        kw["full_capacity_mwh"] = None if design is None or health is None else 3_900.0
        return battery(None, health_pct=health, **kw)
    if rnd.random() < 0.1:
        kw["full_capacity_mwh"] = None
    if rnd.random() < 0.1:
        kw["health_pct"] = rnd.choice((None, 70.0))
    return battery(health, **kw)


@pytest.mark.parametrize("seed", range(40))
def test_a_repeated_trusted_reading_gets_the_verdict_of_the_full_checks(seed: int) -> None:
    # assess() takes a repeat of a reading trusted in full as trusted at once
    # (`last_trusted`); the same readings judged with every check each time must give
    # the same verdicts and leave the same state.
    rnd = random.Random(seed)
    fast, full = BatteryState(), BatteryState()
    repeats, reading = 0, _random_reading(rnd)
    for n in range(300):
        if rnd.random() < 0.5:  # else the same reading again
            reading = _random_reading(rnd)
        repeats += fast.last_trusted
        full.last_trusted = False  # every check, every time
        verdicts = assess(fast, reading), assess(full, reading)
        assert verdicts[0] == verdicts[1], (n, reading)
        fast.update(reading, T0 + n * H, verdicts[0])
        full.update(reading, T0 + n * H, verdicts[1])
    assert repeats > 20  # the fast path was taken
    fast.last_trusted = full.last_trusted = False
    assert fast == full
