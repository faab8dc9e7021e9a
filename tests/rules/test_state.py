from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from collector.rules import Assessment
from collector.rules.base import fr
from collector.rules.trust import COLLAPSE
from tests.rules.factory import DEVICE, T0, battery, sample, state, step, trust_of, wifi

H = timedelta(hours=1)


def test_a_new_device_state_is_empty() -> None:
    st = state()
    assert (st.last_seen, st.batteries, st.conditions) == (None, {}, None)
    assert (st.window_start, st.tallies, st.watch_until) == (None, None, 0)


def test_apply_keeps_the_latest_sample_time_despite_spooled_samples() -> None:
    st = state()
    st.apply(sample(T0), [], [])
    st.apply(sample(T0 - 24 * H), [], [])  # spool drain
    assert st.last_seen == T0
    st.apply(sample(T0 + H), [], [])
    assert st.last_seen == T0 + H


def test_apply_leaves_the_wifi_window_to_the_school() -> None:
    # Wi-Fi readings go to the window's tallies through collector.alerting.school;
    # folding a sample in does not touch them
    st = state()
    st.apply(sample(T0, wifi=wifi(-85.0)), [], [])
    assert (st.window_start, st.tallies, st.watch_until) == (None, None, 0)


def test_apply_folds_each_battery_with_its_own_assessment() -> None:
    st = state()
    smp = sample(T0, [battery(90.0, name="BAT0"), battery(50.0, name="BAT1")])
    st.apply(smp, [], [Assessment((), 90.0), Assessment((COLLAPSE,), 50.0)])
    bat0, bat1 = st.batteries["BAT0"], st.batteries["BAT1"]
    assert (bat0.last_health_pct, bat0.untrusted_samples) == (90.0, 0)
    assert (bat1.last_health_pct, bat1.collapse_seen, bat1.untrusted_samples) == (None, 1, 1)


def test_a_battery_without_assessment_is_not_folded_in() -> None:
    st = state()
    st.apply(sample(T0, [battery(90.0, name="BAT0"), battery(50.0, name="BAT1")]), [], [None, None])
    assert st.batteries == {}
    assert st.last_seen == T0  # the sample still counts as seen


def test_absent_battery_is_not_tracked() -> None:
    st = state()
    smp = sample(batteries=[battery(50.0, present=False)])
    assert trust_of(st, smp) == [None]
    assert step(st, smp) == []
    assert st.batteries == {}


def test_repeated_strings_are_shared_between_devices() -> None:
    a, b = state("a"), state("b")
    step(a, sample(batteries=[battery(model="".join(["01AV", "431"]), name="".join(["BA", "T0"]))]))
    step(b, sample(batteries=[battery(model="".join(["01AV", "431"]), name="".join(["BA", "T0"]))]))
    assert a.batteries["BAT0"].model is b.batteries["BAT0"].model
    [name_a], [name_b] = a.batteries, b.batteries
    assert name_a is name_b


def test_conditions_follow_findings_and_ignore_other_devices() -> None:
    st = state()
    assert st.conditions is None  # no dict at all for a healthy device
    [found] = step(st, sample(T0, [battery(50.0)]), only="battery_replace")
    assert st.conditions == {found.key: T0}
    assert st.is_active(found.key) and st.since(found.key) == T0
    # a condition keeps its start while it holds
    step(st, sample(T0 + H, [battery(49.0)]))
    assert st.since(found.key) == T0
    st.record([replace(found, device="someone-else", active=False)])
    assert st.since(found.key) == T0
    st.record([replace(found, active=False, at=T0 + 2 * H)])
    assert st.conditions is None
    assert not st.is_active(found.key) and st.since(found.key) is None
    assert found.device == DEVICE


def test_battery_state_tracks_readings_and_zero_cycle_streak() -> None:
    st = state()
    step(st, sample(T0, [battery(96.0, cycle_count=0)]))
    step(st, sample(T0 + H, [battery(95.5, cycle_count=0)]))
    bat = st.batteries["BAT0"]
    assert (bat.zero_cycle_streak, bat.zero_cycle_start_health_pct) == (2, 96.0)
    step(st, sample(T0 + 2 * H, [battery(95.0, cycle_count=4, full_capacity_mwh=47_500.0)]))
    assert (bat.zero_cycle_streak, bat.zero_cycle_start_health_pct) == (0, None)
    assert (bat.cycle_count, bat.full_capacity_mwh, bat.design_capacity_mwh) == (
        4,
        47_500.0,
        50_000.0,
    )
    assert (bat.last_health_pct, bat.last_ts, bat.model) == (95.0, T0 + 2 * H, "01AV431")


def test_the_rules_see_the_previous_sample_not_the_current_one() -> None:
    # apply runs after the rules: a collapse is measured against the last trusted health
    st = state()
    step(st, sample(T0, [battery(85.0)]))
    smp = sample(T0 + H, [battery(40.0)])
    assert trust_of(st, smp) == [Assessment((COLLAPSE,), 40.0)]
    assert step(st, smp) == []
    assert st.batteries["BAT0"].last_health_pct == 85.0


def test_french_numbers() -> None:
    assert [fr(59.9), fr(52.0), fr(-75.0), fr(-75.5), fr(59.96)] == [
        "59,9",
        "52",
        "-75",
        "-75,5",
        "60",
    ]
