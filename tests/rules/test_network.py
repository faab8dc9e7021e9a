from __future__ import annotations

from datetime import datetime, timedelta

from collector.alerts.model import Finding
from collector.rules import DeviceState, RulesConfig, correlate_network, suppress_covered
from collector.rules.network import NetworkResult
from tests.rules.factory import AP, SCHOOL, T0, sample, state, step, wifi

AP_KEY = f"{SCHOOL}/ap/{AP}/wifi_ap_fault"
NOW = T0 + timedelta(minutes=5)


def fleet(
    bad: int, good: int, *, ap: str = AP, school: str = SCHOOL, ts: datetime = T0, prefix: str = "d"
) -> list[DeviceState]:
    """`bad` devices with weak signal and `good` ones with a good signal on one AP."""
    states = []
    for i in range(bad + good):
        st = state(f"{prefix}{i}", school)
        st.apply(sample(ts, wifi=wifi(-85.0 if i < bad else -55.0, bssid_hash=ap)), [])
        states.append(st)
    return states


def sweep(
    states: list[DeviceState], active: frozenset[str] = frozenset(), now: datetime = NOW
) -> NetworkResult:
    return correlate_network(states, now, RulesConfig(), active)


def test_five_of_eight_degraded_give_one_access_point_finding() -> None:
    result = sweep(fleet(bad=5, good=3))
    [found] = result.findings
    assert found.key == AP_KEY
    assert found.rule == "wifi_ap_fault"
    assert found.subject == "access_point"
    assert found.category == "network"  # routed to the network contractor
    assert found.device is None
    assert found.active
    assert found.at == NOW
    assert (
        found.summary
        == "Borne Wi-Fi en défaut : 5 ordinateurs sur 8 dégradés sur la borne a1b2c3d4"
    )
    assert found.evidence["devices_seen"] == 8
    assert found.evidence["devices_degraded"] == 5
    assert found.evidence["degraded_fraction"] == 0.625
    assert found.evidence["devices"] == ["d0", "d1", "d2", "d3", "d4"]
    assert found.evidence["median_rssi_dbm"] == -85.0
    assert result.covered == {(SCHOOL, f"d{i}") for i in range(5)}
    assert result.active_keys == {AP_KEY}


def test_covered_devices_lose_their_own_wifi_findings() -> None:
    states = fleet(bad=5, good=3)
    result = sweep(states)
    per_device = step(state("d0"), sample(T0 + timedelta(minutes=1), wifi=wifi(-85.0)))
    other = step(state("zz"), sample(T0 + timedelta(minutes=1), wifi=wifi(-85.0)))
    assert [f.rule for f in per_device] == ["wifi_weak"]
    assert suppress_covered(per_device + other, result.covered) == other


def test_two_of_eight_is_a_laptop_problem_not_a_network_one() -> None:
    result = sweep(fleet(bad=2, good=6))
    assert result.findings == []
    assert result.covered == frozenset()


def test_minimum_device_count_and_fraction() -> None:
    assert sweep(fleet(bad=4, good=0)).findings == []  # 100 % but only 4 devices
    assert sweep(fleet(bad=5, good=6)).findings == []  # 5 devices but 45 %
    assert len(sweep(fleet(bad=5, good=5)).findings) == 1  # exactly 50 %


def test_home_networks_never_count() -> None:
    states = []
    for i in range(8):
        st = state(f"h{i}")
        home = wifi(
            -90.0,
            ssid=None,
            ssid_state="other",
            on_school_network=False,
            bssid_hash=AP,
            disconnects=9,
        )
        st.apply(sample(T0, wifi=home), [])
        states.append(st)
    assert sweep(states).findings == []


def test_only_devices_seen_within_the_window() -> None:
    stale = fleet(bad=5, good=0, ts=T0 - timedelta(hours=2))
    assert sweep(stale + fleet(bad=0, good=3, prefix="g")).findings == []


def test_unstable_devices_count_as_degraded() -> None:
    states = []
    for i in range(6):
        st = state(f"u{i}")
        st.apply(sample(T0, wifi=wifi(-50.0, disconnects=4)), [])
        states.append(st)
    [found] = sweep(states).findings
    assert found.evidence["devices_degraded"] == 6


def test_hysteresis_and_recovery() -> None:
    first = sweep(fleet(bad=5, good=3))
    # 3 of 8 (37 %) still degraded: above the clear levels (3 devices, 30 %)
    held = sweep(fleet(bad=3, good=5), first.active_keys)
    assert [(f.key, f.active) for f in held.findings] == [(AP_KEY, True)]
    recovered = sweep(fleet(bad=1, good=7), held.active_keys)
    [cleared] = recovered.findings
    assert (cleared.key, cleared.active) == (AP_KEY, False)
    assert cleared.summary == "Borne Wi-Fi a1b2c3d4 de nouveau normale"
    assert recovered.active_keys == frozenset()
    assert recovered.covered == frozenset()


def test_access_point_no_longer_seen_is_cleared() -> None:
    first = sweep(fleet(bad=5, good=3))
    later = sweep(fleet(bad=5, good=3), first.active_keys, now=T0 + timedelta(hours=3))
    [cleared] = later.findings
    assert (cleared.key, cleared.active, cleared.school) == (AP_KEY, False, SCHOOL)


def test_school_wide_fault_gives_one_school_finding() -> None:
    aps = ["1" * 16, "2" * 16, "3" * 16]
    states = [s for n, ap in enumerate(aps) for s in fleet(bad=5, good=2, ap=ap, prefix=f"a{n}-")]
    result = sweep(states)
    [found] = result.findings
    assert found.key == f"{SCHOOL}/wifi_school_fault"
    assert found.subject == "school"
    assert found.category == "network"
    assert found.evidence["access_points_seen"] == 3
    assert found.evidence["devices_degraded"] == 15
    assert len(result.covered) == 15


def test_access_point_alert_gives_way_to_the_school_alert() -> None:
    first = sweep(fleet(bad=5, good=3))
    aps = [AP, "2" * 16, "3" * 16]
    states = [s for n, ap in enumerate(aps) for s in fleet(bad=5, good=2, ap=ap, prefix=f"a{n}-")]
    result = sweep(states, first.active_keys)
    by_key = {f.key: f.active for f in result.findings}
    assert by_key == {f"{SCHOOL}/wifi_school_fault": True, AP_KEY: False}


def test_one_failing_access_point_among_healthy_ones_stays_an_ap_fault() -> None:
    states = (
        fleet(bad=5, good=3)
        + fleet(bad=0, good=6, ap="2" * 16, prefix="b")
        + fleet(bad=0, good=6, ap="3" * 16, prefix="c")
    )
    [found] = sweep(states).findings
    assert found.key == AP_KEY


def test_schools_are_separate() -> None:
    other = fleet(bad=3, good=0, school="0311111B", prefix="o")
    assert sweep(fleet(bad=3, good=3) + other).findings == []


def test_disabled_correlator_emits_nothing() -> None:
    config = RulesConfig(enabled=["wifi_weak"])
    assert correlate_network(fleet(bad=8, good=0), NOW, config).findings == []


def _keys(findings: list[Finding]) -> list[str]:
    return [f.key for f in findings]


def test_suppression_keeps_inactive_and_other_rules() -> None:
    result = sweep(fleet(bad=5, good=3))
    st = state("d0")
    step(st, sample(T0, wifi=wifi(-85.0, disconnects=5)))
    cleared = step(st, sample(T0 + timedelta(minutes=1), wifi=wifi(-50.0, disconnects=0)))
    assert sorted(f.active for f in cleared) == [False, False]
    assert _keys(suppress_covered(cleared, result.covered)) == _keys(cleared)
