from __future__ import annotations

from datetime import timedelta
from typing import Any

from collector.rules import Assessment, RulesConfig, build_rules
from collector.rules.trust import COLLAPSE, CYCLES_STUCK_ZERO
from tests.rules.factory import DEVICE, SCHOOL, T0, battery, sample, state, step

KEY = f"{SCHOOL}/{DEVICE}/BAT0/battery_replace"
H = timedelta(hours=1)


def test_replace_threshold_edge_and_direction() -> None:
    assert step(state(), sample(batteries=[battery(60.0)]), only="battery_replace") == []
    [found] = step(state(), sample(batteries=[battery(59.9)]), only="battery_replace")
    assert found.active
    assert found.key == KEY
    assert found.subject == "battery"
    assert found.category == "hardware"
    assert found.school == SCHOOL
    assert found.device == DEVICE
    assert found.at == T0
    assert found.summary == "Batterie à remplacer : santé 59,9 % (seuil 60 %)"
    assert found.action == "Remplacer la batterie (modèle 01AV431)"
    ev = found.evidence
    assert ev["health_pct"] == 59.9
    assert ev["design_capacity_mwh"] == 50_000.0
    assert ev["full_capacity_mwh"] == 50_000.0 * 59.9 / 100
    assert ev["cycle_count"] == 300
    assert ev["model"] == "01AV431"
    assert ev["ts"] == T0.isoformat()
    assert ev["since"] == T0.isoformat()
    assert ev["threshold_pct"] == 60


def test_replace_summary_and_unknown_model() -> None:
    [found] = step(state(), sample(batteries=[battery(52.0, model=None)]), only="battery_replace")
    assert found.summary == "Batterie à remplacer : santé 52 % (seuil 60 %)"
    assert found.action == (
        "Remplacer la batterie (modèle inconnu : relever la référence sur la batterie)"
    )


def test_replace_hysteresis_clears_only_at_62() -> None:
    st = state()
    [first] = step(st, sample(T0, [battery(59.0)]), only="battery_replace")
    assert first.active
    [held] = step(st, sample(T0 + H, [battery(61.0)]), only="battery_replace")
    assert held.active  # between 60 and 62: still active
    assert held.evidence["since"] == T0.isoformat()  # the condition's start is kept
    [held] = step(st, sample(T0 + 2 * H, [battery(61.9)]), only="battery_replace")
    assert held.active
    [cleared] = step(st, sample(T0 + 3 * H, [battery(62.0)]), only="battery_replace")
    assert not cleared.active
    assert cleared.key == KEY
    assert cleared.summary == "Batterie de nouveau correcte : santé 62 %"
    assert cleared.action == ""
    # once cleared, nothing more until it crosses 60 again
    assert step(st, sample(T0 + 4 * H, [battery(61.0)]), only="battery_replace") == []
    assert not st.is_active(KEY)


def test_untrusted_readings_yield_no_finding_at_all() -> None:
    cases = [
        battery(health=None, full_capacity_mwh=60_000.0),  # full 120 % of design
        battery(health=None, design_capacity_mwh=5_000.0, full_capacity_mwh=2_000.0),
        battery(health=None, full_capacity_mwh=4_000.0),  # mAh next to mWh: 8 %
        battery(health=40.0, full_capacity_mwh=45_000.0),  # health disagrees with full/design
    ]
    for reading in cases:
        assert step(state(), sample(batteries=[reading])) == [], reading


def test_a_glitch_is_ignored_a_confirmed_collapse_alerts() -> None:
    st = state()
    assert step(st, sample(T0, [battery(85.0)])) == []
    # 45-point drop: untrusted until seen on 3 consecutive samples
    assert step(st, sample(T0 + H, [battery(40.0)])) == []
    assert step(st, sample(T0 + 2 * H, [battery(41.0)])) == []
    [found] = step(st, sample(T0 + 3 * H, [battery(40.0)]), only="battery_replace")
    assert found.active
    assert found.evidence["health_pct"] == 40.0

    glitch = state()
    step(glitch, sample(T0, [battery(85.0)]))
    assert step(glitch, sample(T0 + H, [battery(40.0)])) == []
    assert step(glitch, sample(T0 + 2 * H, [battery(40.0)])) == []
    assert step(glitch, sample(T0 + 3 * H, [battery(85.0)])) == []  # back: forgotten
    assert step(glitch, sample(T0 + 4 * H, [battery(40.0)])) == []  # counts from 1 again
    assert glitch.batteries["BAT0"].last_health_pct == 85.0


def test_collapse_confirmation_is_configurable() -> None:
    at_once = RulesConfig.model_validate({"trust": {"collapse_confirm_samples": 1}})
    st = state()
    step(st, sample(T0, [battery(85.0)]), at_once)
    [found] = step(st, sample(T0 + H, [battery(40.0)]), at_once, only="battery_replace")
    assert found.active


def test_untrusted_reading_does_not_clear_an_open_condition() -> None:
    st = state()
    step(st, sample(T0, [battery(55.0)]))
    assert step(st, sample(T0 + H, [battery(health=None, full_capacity_mwh=70_000.0)])) == []
    assert st.is_active(KEY)


def test_watch_band_edges() -> None:
    assert step(state(), sample(batteries=[battery(80.0)]), only="battery_watch") == []
    [found] = step(state(), sample(batteries=[battery(79.9)]), only="battery_watch")
    assert found.active
    assert found.severity == "info"
    assert found.summary == "Batterie à surveiller : santé 79,9 % (seuil 80 %)"
    assert found.action == (
        "Prévoir le remplacement de la batterie (modèle 01AV431) aux prochaines vacances"
    )
    assert found.key == f"{SCHOOL}/{DEVICE}/BAT0/battery_watch"
    [found] = step(state(), sample(batteries=[battery(60.0)]), only="battery_watch")
    assert found.active
    # below 60 the battery belongs to battery_replace, not to watch
    assert step(state(), sample(batteries=[battery(59.9)]), only="battery_watch") == []


def test_watch_hysteresis_and_handover_to_replace() -> None:
    st = state()
    [w] = step(st, sample(T0, [battery(79.0)]), only="battery_watch")
    assert w.active
    [w] = step(st, sample(T0 + H, [battery(81.0)]), only="battery_watch")
    assert w.active  # clears at 82
    [w] = step(st, sample(T0 + 2 * H, [battery(75.0)]), only="battery_watch")
    found = step(st, sample(T0 + 3 * H, [battery(65.0)]))
    assert [(f.rule, f.active) for f in found] == [("battery_watch", True)]
    found = step(st, sample(T0 + 4 * H, [battery(59.0)]))
    assert [(f.rule, f.active) for f in found] == [
        ("battery_replace", True),
        ("battery_watch", False),
    ]


def test_watch_on_cycles_with_model_rating() -> None:
    [found] = step(
        state(), sample(batteries=[battery(95.0, cycle_count=1000)]), only="battery_watch"
    )
    assert found.summary == "Batterie à surveiller : 1000 cycles (durée de vie nominale 1000)"
    assert found.evidence["cycle_rating"] == 1000
    assert (
        step(state(), sample(batteries=[battery(95.0, cycle_count=999)]), only="battery_watch")
        == []
    )
    config = RulesConfig.model_validate(
        {"battery_watch": {"cycle_rating_by_model": {"01AV431": 800}}}
    )
    [found] = step(
        state(), sample(batteries=[battery(95.0, cycle_count=800)]), config, only="battery_watch"
    )
    assert found.evidence["cycle_rating"] == 800


def test_cycles_stuck_at_zero_do_not_count_but_health_still_does() -> None:
    st = state()
    # 70 % health with 0 cycles: the counter is not kept; the health is believed
    [found] = step(st, sample(batteries=[battery(70.0, cycle_count=0)]), only="battery_watch")
    assert found.summary == "Batterie à surveiller : santé 70 % (seuil 80 %)"


def test_charging_fault_edges_and_evidence() -> None:
    plugged: dict[str, Any] = {"plugged": True, "status": "not_charging"}
    assert (
        step(state(), sample(batteries=[battery(percent=95.0, **plugged)]), only="charging_fault")
        == []
    )
    assert (
        step(
            state(),
            sample(batteries=[battery(percent=50.0, plugged=False, status="not_charging")]),
            only="charging_fault",
        )
        == []
    )
    assert (
        step(
            state(),
            sample(batteries=[battery(percent=50.0, plugged=True, status="charging")]),
            only="charging_fault",
        )
        == []
    )
    assert (
        step(
            state(),
            sample(batteries=[battery(percent=50.0, plugged=None, status="not_charging")]),
            only="charging_fault",
        )
        == []
    )
    st = state()
    [first] = step(st, sample(T0, [battery(percent=94.9, **plugged)]), only="charging_fault")
    assert first.active
    assert first.category == "hardware"
    assert first.evidence["duration_s"] == 0.0
    [later] = step(
        st,
        sample(T0 + timedelta(minutes=30), [battery(percent=94.0, **plugged)]),
        only="charging_fault",
    )
    assert later.evidence["duration_s"] == 1800.0
    assert later.evidence["since"] == T0.isoformat()
    assert later.evidence["percent"] == 94.0
    assert later.evidence["status"] == "not_charging"
    assert later.evidence["plugged"] is True
    assert later.summary == "Ne charge pas : branché à 94 % (état « ne charge pas ») depuis 30 min"
    [cleared] = step(
        st,
        sample(T0 + H, [battery(percent=94.0, plugged=True, status="charging")]),
        only="charging_fault",
    )
    assert not cleared.active


def test_plugged_and_discharging_counts_as_not_charging() -> None:
    reading = battery(percent=40.0, plugged=True, status="discharging")
    [found] = step(state(), sample(batteries=[reading]), only="charging_fault")
    assert "se décharge" in found.summary


def test_rules_judge_every_sample_in_sample_time_whatever_its_age() -> None:
    # No clock and no age limit: a sample spooled for a week is judged as it was taken.
    reading = battery(percent=40.0, plugged=True, status="not_charging", temperature_c=70.0)
    old = T0 - timedelta(days=7)
    found = step(state(), sample(old, [reading]))
    assert sorted(f.rule for f in found) == ["battery_hot", "charging_fault"]
    assert {f.at for f in found} == {old}
    assert {f.evidence["since"] for f in found} == {old.isoformat()}


def test_rules_read_the_assessment_they_are_given() -> None:
    # The evaluator judges trust once; the rules do not judge it again.
    st, reading = state(), battery(50.0)
    smp = sample(batteries=[reading])
    rules = build_rules(RulesConfig())
    doubted = [Assessment((COLLAPSE,), 50.0)]
    assert [f for r in rules for f in r.evaluate(st, smp, doubted)] == []
    trusted = [Assessment((), 50.0)]
    assert [f.rule for r in rules for f in r.evaluate(st, smp, trusted)] == ["battery_replace"]
    # the health judged is the assessment's (here it disagrees with the reading's 50 %)
    [found] = [f for r in rules for f in r.evaluate(st, smp, [Assessment((), 55.5)])]
    assert found.summary == "Batterie à remplacer : santé 55,5 % (seuil 60 %)"
    # cycles doubted by the assessment do not count for the watch
    worn = sample(batteries=[battery(95.0, cycle_count=1200)])
    stuck = [Assessment((CYCLES_STUCK_ZERO,), 95.0)]
    assert [f for r in rules for f in r.evaluate(st, worn, stuck)] == []
    assert [f.rule for r in rules for f in r.evaluate(st, worn, [Assessment((), 95.0)])] == [
        "battery_watch"
    ]


def test_trust_is_aligned_with_the_batteries_none_for_absent_ones() -> None:
    smp = sample(batteries=[battery(50.0, name="BAT0"), battery(50.0, name="BAT1")])
    rules = build_rules(RulesConfig())
    only_second = [None, Assessment((), 50.0)]
    found = [f for r in rules for f in r.evaluate(state(), smp, only_second)]
    assert [f.key for f in found] == [f"{SCHOOL}/{DEVICE}/BAT1/battery_replace"]
    assert [f for r in rules for f in r.evaluate(state(), smp, [None, None])] == []


def test_hot_edges_direction_and_hysteresis() -> None:
    assert step(state(), sample(batteries=[battery(temperature_c=49.9)]), only="battery_hot") == []
    st = state()
    [hot] = step(st, sample(T0, [battery(temperature_c=50.0)]), only="battery_hot")
    assert hot.active
    assert hot.severity == "critical"
    assert hot.summary == "Batterie trop chaude : 50 °C (seuil 50 °C)"
    assert hot.evidence["temperature_c"] == 50.0
    [held] = step(st, sample(T0 + H, [battery(temperature_c=47.0)]), only="battery_hot")
    assert held.active  # clears below 47
    [cleared] = step(st, sample(T0 + 2 * H, [battery(temperature_c=46.9)]), only="battery_hot")
    assert not cleared.active


def test_two_batteries_get_their_own_keys() -> None:
    sm = sample(batteries=[battery(50.0, name="BAT0"), battery(55.0, name="BAT/1")])
    found = step(state(), sm, only="battery_replace")
    assert [f.key for f in found] == [
        f"{SCHOOL}/{DEVICE}/BAT0/battery_replace",
        f"{SCHOOL}/{DEVICE}/BAT_1/battery_replace",
    ]


def test_disabled_rule_is_not_run() -> None:
    config = RulesConfig(enabled=["battery_watch"])
    # with battery_replace disabled, watch covers the whole band below 80 %
    found = step(state(), sample(batteries=[battery(50.0)]), config)
    assert [f.rule for f in found] == ["battery_watch"]
