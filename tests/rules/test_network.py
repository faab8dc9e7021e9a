"""Network faults are not laptop faults: the access-point and school correlator,
judged on one completed window of one school (pure: rules/network.py)."""

from __future__ import annotations

from datetime import datetime, timedelta

from collector.alerts.model import Finding
from collector.rules import RulesConfig, build_window_rules
from collector.rules.network import (
    AccessPointWindow,
    NetworkState,
    WindowVerdict,
    judge_window,
    vanished,
)
from collector.rules.tally import Tally
from collector.rules.wifi import COVERED
from tests.rules.factory import AP, SCHOOL, T0, judge, state, tally, wifi

AP_KEY = f"{SCHOOL}/ap/{AP}/wifi_ap_fault"
SCHOOL_KEY = f"{SCHOOL}/wifi_school_fault"
AP2, AP3, AP4, AP5 = "2" * 16, "3" * 16, "4" * 16, "5" * 16
W = timedelta(minutes=15)
CONFIG = RulesConfig()


def device_tallies(bad: int, good: int, prefix: str = "d") -> dict[str, Tally]:
    """`bad` laptops with a weak signal, `good` ones with a good signal, one window."""
    return {
        f"{prefix}{i}": tally(wifi(-85.0), wifi(-85.0)) if i < bad else tally(wifi(-55.0))
        for i in range(bad + good)
    }


def ap_window(devices: dict[str, Tally]) -> AccessPointWindow:
    """An access point's window from its laptops' tallies, as the school hands them over
    (collector.alerting.school): seen, degraded (most readings), mean RSSI (in tenths)."""
    ap = AccessPointWindow()
    for device, t in devices.items():
        ap.seen += 1
        if t.is_degraded:
            ap.degraded.append(device)
        if t.mean_rssi_dbm is not None:
            ap.rssi_tenths += round(t.mean_rssi_dbm * 10)
            ap.rssi_laptops += 1
    return ap


def fleet(bad: int, good: int, prefix: str = "d") -> AccessPointWindow:
    return ap_window(device_tallies(bad, good, prefix))


def window(
    aps: dict[str, AccessPointWindow],
    net: NetworkState | None = None,
    config: RulesConfig = CONFIG,
    start: datetime = T0,
) -> WindowVerdict:
    return judge_window(SCHOOL, start, aps, net if net is not None else NetworkState(), config)


def states(verdict: WindowVerdict) -> list[tuple[str, bool]]:
    return [(f.key, f.active) for f in verdict.findings]


def failing_school(prefix: str = "a") -> dict[str, AccessPointWindow]:
    """Three access points, each with 5 of 7 laptops degraded."""
    return {ap: fleet(5, 2, f"{prefix}{n}-") for n, ap in enumerate([AP, AP2, AP3])}


# --- access point -----------------------------------------------------------------------


def test_five_of_eight_degraded_give_one_access_point_finding() -> None:
    net = NetworkState()
    verdict = window({AP: fleet(bad=5, good=3)}, net)
    [found] = verdict.findings
    assert found.key == AP_KEY
    assert found.rule == "wifi_ap_fault"
    assert found.subject == "access_point"
    assert found.category == "network"  # routed to the network contractor
    assert found.severity == "critical"
    assert (found.school, found.device) == (SCHOOL, None)
    assert found.active
    assert found.at == T0  # the window's start, in sample time
    assert (
        found.summary
        == "Borne Wi-Fi en défaut : 5 ordinateurs sur 8 dégradés sur la borne a1b2c3d4"
    )
    assert found.action.startswith("Vérifier la borne")
    ev = found.evidence
    assert ev["bssid_hash"] == AP
    assert (ev["devices_seen"], ev["devices_degraded"]) == (8, 5)
    assert ev["degraded_fraction"] == 0.625
    assert ev["devices"] == ["d0", "d1", "d2", "d3", "d4"]
    assert ev["mean_rssi_dbm"] == -73.8  # mean of the laptops' means: (5 x -85 + 3 x -55) / 8
    assert ev["window_start"] == T0.isoformat()
    assert ev["window_end"] == (T0 + W).isoformat()
    assert ev["ts"] == T0.isoformat()
    assert verdict.covered == frozenset(f"d{i}" for i in range(5))
    assert net.faulty_aps == {AP}
    assert not net.school_fault


def test_two_of_eight_is_a_laptop_problem_not_a_network_one() -> None:
    net = NetworkState()
    verdict = window({AP: fleet(bad=2, good=6)}, net)
    assert verdict.findings == []
    assert verdict.covered == frozenset()
    assert net == NetworkState()


def test_minimum_device_count_and_fraction() -> None:
    assert window({AP: fleet(bad=4, good=0)}).findings == []  # 100 % but only 4 laptops
    assert window({AP: fleet(bad=5, good=6)}).findings == []  # 5 laptops but 45 %
    assert states(window({AP: fleet(bad=5, good=5)})) == [(AP_KEY, True)]  # exactly 50 %


def test_thresholds_are_configurable() -> None:
    config = RulesConfig.model_validate({"network": {"ap_min_devices": 3}})
    assert states(window({AP: fleet(bad=3, good=3)}, config=config)) == [(AP_KEY, True)]


def test_unstable_laptops_count_as_degraded() -> None:
    unstable = {f"u{i}": tally(wifi(-50.0, disconnects=4)) for i in range(6)}
    [found] = window({AP: ap_window(unstable)}).findings
    assert found.evidence["devices_degraded"] == 6


def test_a_laptop_is_degraded_when_most_of_its_readings_are() -> None:
    half = {f"h{i}": tally(wifi(-85.0), wifi(-55.0)) for i in range(6)}  # half: not most
    assert window({AP: ap_window(half)}).findings == []
    most = {f"m{i}": tally(wifi(-85.0), wifi(-85.0), wifi(-55.0)) for i in range(6)}
    assert len(window({AP: ap_window(most)}).findings) == 1


def test_too_few_laptops_give_no_verdict_and_an_open_fault_stays_open() -> None:
    net = NetworkState()
    window({AP: fleet(bad=5, good=3)}, net)
    # two laptops: below the clear minimum of 3, nothing can be told either way
    quiet = window({AP: fleet(bad=0, good=2)}, net, start=T0 + W)
    assert quiet.findings == []
    assert net.faulty_aps == {AP}
    busy = window({AP: fleet(bad=2, good=0)}, net, start=T0 + 2 * W)
    assert busy.findings == []
    assert net.faulty_aps == {AP}


def test_an_open_fault_left_unjudged_still_covers_its_degraded_laptops() -> None:
    net = NetworkState()
    window({AP: fleet(bad=5, good=3)}, net)
    verdict = window({AP: fleet(bad=2, good=0)}, net, start=T0 + W)
    assert verdict.covered == frozenset({"d0", "d1"})


def test_hysteresis_with_the_clear_thresholds() -> None:
    net = NetworkState()
    window({AP: fleet(bad=5, good=3)}, net)
    # 3 of 8 (37 %) still degraded: at or above the clear levels (3 laptops, 30 %)
    held = window({AP: fleet(bad=3, good=5)}, net, start=T0 + W)
    assert states(held) == [(AP_KEY, True)]
    assert held.covered == frozenset({"d0", "d1", "d2"})
    assert states(window({AP: fleet(bad=3, good=7)}, net, start=T0 + 2 * W)) == [(AP_KEY, True)]
    # the same window would not raise a new fault
    assert window({AP: fleet(bad=3, good=5)}).findings == []
    # 3 of 11 (27 %): below the clear fraction
    recovered = window({AP: fleet(bad=3, good=8)}, net, start=T0 + 3 * W)
    [cleared] = recovered.findings
    assert (cleared.key, cleared.active) == (AP_KEY, False)
    assert cleared.summary == "Borne Wi-Fi a1b2c3d4 de nouveau normale"
    assert cleared.action == ""
    assert cleared.at == T0 + 3 * W
    assert recovered.covered == frozenset()
    assert net.faulty_aps == set()
    # once cleared, nothing until 5 laptops and 50 % again
    assert window({AP: fleet(bad=4, good=0)}, net, start=T0 + 4 * W).findings == []


def test_clears_below_the_clear_device_count() -> None:
    net = NetworkState()
    window({AP: fleet(bad=5, good=3)}, net)
    [cleared] = window({AP: fleet(bad=2, good=2)}, net, start=T0 + W).findings  # 50 %, 2 laptops
    assert not cleared.active


def test_covered_laptops_lose_their_own_wifi_findings() -> None:
    # the same window: the access point's verdict first, then each laptop's own rules
    devices = device_tallies(bad=5, good=3) | {"x": tally(wifi(-85.0))}
    aps = {AP: ap_window({d: t for d, t in devices.items() if d != "x"}), AP2: fleet(1, 0, "x")}
    verdict = window(aps)
    assert verdict.covered == frozenset(f"d{i}" for i in range(5))
    own: list[Finding] = []
    for device, t in sorted(devices.items()):
        st = state(device)
        for rule in build_window_rules(CONFIG):
            found = judge(rule, st, t, T0, device in verdict.covered)
            if found is not None:
                own.append(found)
    assert [(f.device, f.rule) for f in own] == [("x", "wifi_weak")]


def test_covered_laptops_with_a_condition_see_it_cleared() -> None:
    st = state("d0")
    [weak, *_] = build_window_rules(CONFIG)
    judge(weak, st, tally(wifi(-85.0)), T0 - W)  # weak on its own before the fault
    verdict = window({AP: fleet(bad=5, good=3)})
    cleared = judge(weak, st, tally(wifi(-85.0)), T0, "d0" in verdict.covered)
    assert cleared is not None and not cleared.active and cleared.summary == COVERED


def test_schools_are_separate() -> None:
    a, b = NetworkState(), NetworkState()
    found_a = judge_window(SCHOOL, T0, {AP: fleet(5, 3)}, a, CONFIG).findings
    found_b = judge_window("0311111B", T0, {AP: fleet(2, 6)}, b, CONFIG).findings
    assert [f.key for f in found_a] == [AP_KEY]
    assert found_b == []
    assert (a.faulty_aps, b.faulty_aps) == ({AP}, set())


def test_disabled_rules_emit_nothing() -> None:
    config = RulesConfig(enabled=["wifi_weak"])
    net = NetworkState()
    assert window({AP: fleet(bad=8, good=0)}, net, config).findings == []
    assert window(failing_school(), net, config).findings == []
    assert net == NetworkState()


# --- school-wide --------------------------------------------------------------------------


def test_school_wide_fault_gives_one_school_finding() -> None:
    net = NetworkState()
    verdict = window(failing_school(), net)
    [found] = verdict.findings
    assert found.key == SCHOOL_KEY
    assert found.rule == "wifi_school_fault"
    assert found.subject == "school"
    assert found.category == "network"
    assert found.severity == "critical"
    assert found.device is None
    assert found.active
    assert found.summary == (
        "Wi-Fi de l'établissement en défaut : 3 bornes sur 3, 15 ordinateurs dégradés"
    )
    ev = found.evidence
    assert ev["access_points_seen"] == 3
    assert ev["access_points_degraded"] == sorted([AP, AP2, AP3])
    assert ev["devices_degraded"] == 15
    assert ev["window_end"] == (T0 + W).isoformat()
    assert len(verdict.covered) == 15
    assert net.school_fault and net.faulty_aps == set()


def test_one_failing_access_point_among_healthy_ones_stays_an_ap_fault() -> None:
    aps = {AP: fleet(5, 3), AP2: fleet(0, 6, "b"), AP3: fleet(0, 6, "c")}
    assert states(window(aps)) == [(AP_KEY, True)]


def test_school_fault_needs_enough_access_points_each_seen_enough() -> None:
    # two failing access points are two access-point faults, not a school fault
    two = {AP: fleet(5, 2, "a"), AP2: fleet(5, 2, "b")}
    ap2_key = f"{SCHOOL}/ap/{AP2}/wifi_ap_fault"
    assert states(window(two)) == [(ap2_key, True), (AP_KEY, True)]  # in access-point order
    # an access point seen by one laptop does not count towards the school's
    lonely = two | {AP3: fleet(1, 0, "c")}
    assert SCHOOL_KEY not in [f.key for f in window(lonely).findings]
    # 3 of 5 (60 %) failing: the school; 2 of 5: not
    five = {AP: fleet(5, 2, "a"), AP2: fleet(5, 2, "b"), AP3: fleet(5, 2, "c")}
    five |= {AP4: fleet(0, 5, "d"), AP5: fleet(0, 5, "e")}
    assert states(window(five)) == [(SCHOOL_KEY, True)]
    five[AP3] = fleet(0, 7, "c")
    assert SCHOOL_KEY not in [f.key for f in window(five).findings]


def test_the_school_fault_replaces_and_clears_access_point_faults() -> None:
    net = NetworkState()
    window({AP: fleet(5, 3)}, net)
    assert net.faulty_aps == {AP}
    verdict = window(failing_school(), net, start=T0 + W)
    assert states(verdict) == [(SCHOOL_KEY, True), (AP_KEY, False)]
    cleared = verdict.findings[1]
    assert cleared.summary == "Borne Wi-Fi a1b2c3d4 de nouveau normale"
    assert net.faulty_aps == set() and net.school_fault
    # while the school fault holds, no access-point fault is raised again
    assert states(window(failing_school(), net, start=T0 + 2 * W)) == [(SCHOOL_KEY, True)]


def test_school_hysteresis_and_recovery() -> None:
    net = NetworkState()
    window(failing_school(), net)
    # 2 of 5 access points (40 %) degraded: at the clear level, the school fault holds
    aps = {AP: fleet(5, 2, "a"), AP2: fleet(5, 2, "b"), AP3: fleet(0, 7, "c")}
    aps |= {AP4: fleet(0, 5, "d"), AP5: fleet(0, 5, "e")}
    held = window(aps, net, start=T0 + W)
    assert states(held) == [(SCHOOL_KEY, True)]
    assert len(held.covered) == 10
    # 1 of 3 (33 %): the school fault clears; the one failing access point is its own fault
    aps = {AP: fleet(5, 2, "a"), AP2: fleet(0, 7, "b"), AP3: fleet(0, 7, "c")}
    recovered = window(aps, net, start=T0 + 2 * W)
    assert states(recovered) == [(SCHOOL_KEY, False), (AP_KEY, True)]
    assert recovered.findings[0].summary == "Wi-Fi de l'établissement de nouveau normal"
    assert recovered.findings[0].action == ""
    assert not net.school_fault and net.faulty_aps == {AP}


def test_an_open_school_fault_with_too_few_access_points_stands_unjudged() -> None:
    net = NetworkState()
    window(failing_school(), net)
    verdict = window({AP: fleet(5, 3)}, net, start=T0 + W)  # one access point seen
    assert verdict.findings == []
    assert verdict.covered == frozenset(f"d{i}" for i in range(5))
    assert net.school_fault and net.faulty_aps == set()


def test_school_rule_disabled_leaves_access_point_faults() -> None:
    config = RulesConfig(enabled=["wifi_ap_fault"])
    assert [active for _, active in states(window(failing_school(), config=config))] == [
        True,
        True,
        True,
    ]


# --- access points gone -------------------------------------------------------------------


def test_vanished_clears_access_points_no_laptop_used_that_day() -> None:
    net = NetworkState(faulty_aps={AP, AP2})
    at = T0 + timedelta(hours=15)
    found = vanished(SCHOOL, at, [AP2, AP3], net, CONFIG)
    assert [(f.key, f.active, f.at) for f in found] == [(AP_KEY, False, at)]
    assert found[0].evidence["devices_seen"] == 0
    assert net.faulty_aps == {AP2}
    assert vanished(SCHOOL, at, [AP2], net, CONFIG) == []


def test_vanished_clears_the_school_fault_only_when_no_access_point_was_used() -> None:
    net = NetworkState(school_fault=True)
    assert vanished(SCHOOL, T0, [AP], net, CONFIG) == []
    assert net.school_fault
    [cleared] = vanished(SCHOOL, T0, [], net, CONFIG)
    assert (cleared.key, cleared.active) == (SCHOOL_KEY, False)
    assert not net.school_fault
    assert vanished(SCHOOL, T0, [], net, CONFIG) == []
