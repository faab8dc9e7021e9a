"""Associated but cut off: the reachability correlator on one completed window of
one school (pure: rules/reach.py, judged after the radio by rules/network.py)."""

from __future__ import annotations

from datetime import timedelta

from collector.contract import Connectivity
from collector.rules import RulesConfig
from collector.rules.network import AccessPointWindow, NetworkState, judge_window, vanished
from collector.rules.reach import add_laptop
from collector.rules.tally import Tally, merged, observe
from tests.rules.factory import AP, SCHOOL, T0, wifi

AP2, AP3 = "2" * 16, "3" * 16
AP_KEY = f"{SCHOOL}/ap/{AP}/ap_unreachable"
SCHOOL_KEY = f"{SCHOOL}/school_unreachable"
CONFIG = RulesConfig()
W = timedelta(minutes=15)


def reach(cut_s: float, online_s: float, **kw: object) -> Connectivity:
    return Connectivity.model_validate(
        {"school_unreachable_s": cut_s, "school_online_s": online_s, **kw}
    )


def laptop(*blocks: Connectivity | None, rssi: float = -58.0) -> Tally:
    """One laptop's window on one access point: one reading per block."""
    out = Tally(bssid=AP)
    for block in blocks:
        observe(out, wifi(rssi), T0, CONFIG, block)
    return out


def access_point(cut: int, fine: int, prefix: str = "d", **kw: object) -> AccessPointWindow:
    """`cut` laptops cut off all window, `fine` ones online, as the school hands over."""
    ap = AccessPointWindow()
    for i in range(cut + fine):
        t = (
            laptop(reach(300.0, 0.0, failure="dns", dns_ok=False, **kw), reach(300.0, 0.0))
            if i < cut
            else laptop(reach(0.0, 300.0, broker_rtt_ms=30.0))
        )
        device = f"{prefix}{i}"
        ap.seen += 1
        if t.is_degraded:
            ap.degraded.append(device)
        add_laptop(ap, device, t, CONFIG)
    return ap


def judged(
    aps: dict[str, AccessPointWindow], net: NetworkState, at: int = 0
) -> list[tuple[str, bool]]:
    verdict = judge_window(SCHOOL, T0 + at * W, aps, net, CONFIG)
    return [(f.key, f.active) for f in verdict.findings]


def test_a_laptop_is_cut_off_when_most_of_its_school_time_was() -> None:
    assert laptop(reach(200.0, 100.0)).cut_off(120.0)
    assert not laptop(reach(100.0, 200.0)).cut_off(120.0)  # mostly online
    assert not laptop(reach(100.0, 0.0)).cut_off(120.0)  # a blip, under the minimum
    assert laptop(reach(60.0, 0.0), reach(60.0, 10.0)).cut_off(120.0)  # summed
    assert not laptop(None, None).cut_off(120.0)  # an older agent: nothing to judge
    old_agent = laptop(Connectivity(broker_rtt_ms=20.0))  # no reachability figures
    assert old_agent.reach_readings == 0


def test_merged_tallies_keep_the_reachability_of_every_access_point() -> None:
    a = laptop(reach(100.0, 0.0, failure="dns"))
    b = laptop(reach(50.0, 20.0, failure="tls", gateway_ok=False))
    m = merged([a, b])
    assert (m.reach_readings, m.cut_s, m.online_s, m.gateway_down) == (2, 150.0, 20.0, 1)
    assert m.failure == "tls"


def test_five_cut_off_of_seven_give_one_access_point_finding_with_the_evidence() -> None:
    net = NetworkState()
    verdict = judge_window(SCHOOL, T0, {AP: access_point(5, 2)}, net, CONFIG)
    [found] = verdict.findings
    assert (found.key, found.active, found.category, found.subject) == (
        AP_KEY, True, "network", "access_point"
    )  # fmt: skip
    ev = found.evidence
    assert ev["devices_seen"] == 7 and ev["devices_cut_off"] == 5
    assert ev["devices"] == ["d0", "d1", "d2", "d3", "d4"]
    assert ev["failures"] == {"dns": 5} and ev["dns_failed_devices"] == 5
    assert ev["cut_off_s"] == 5 * 600 and ev["online_s"] == 2 * 300
    assert "DNS" in found.summary and "5 ordinateurs sur 7" in found.summary
    assert net.cut_aps == {AP}
    assert verdict.covered == frozenset()  # a cut-off laptop has no Wi-Fi alert to cover


def test_a_laptop_cut_off_alone_is_not_a_network_fault() -> None:
    assert judged({AP: access_point(1, 9)}, NetworkState()) == []
    assert judged({AP: access_point(4, 0)}, NetworkState()) == []  # under ap_min_devices


def test_hysteresis_then_clear() -> None:
    net = NetworkState()
    assert judged({AP: access_point(5, 2)}, net) == [(AP_KEY, True)]
    # 3 of 8 cut off: over the clear thresholds (3 laptops, 30 %): still at fault
    assert judged({AP: access_point(3, 5)}, net, 1) == [(AP_KEY, True)]
    assert judged({AP: access_point(1, 7)}, net, 2) == [(AP_KEY, False)]
    assert net.cut_aps == set()


def test_too_few_laptops_leave_an_open_fault_open() -> None:
    net = NetworkState(cut_aps={AP})
    assert judged({AP: access_point(1, 1)}, net) == []
    assert net.cut_aps == {AP}


def test_most_access_points_cut_off_give_one_school_finding() -> None:
    net = NetworkState(cut_aps={AP})
    aps = {b: access_point(5, 1, f"{b[0]}-") for b in (AP, AP2, AP3)}
    found = judge_window(SCHOOL, T0, aps, net, CONFIG).findings
    assert [(f.key, f.active) for f in found] == [(SCHOOL_KEY, True), (AP_KEY, False)]
    school = found[0]
    assert school.subject == "school" and school.evidence["devices_cut_off"] == 15
    assert school.evidence["access_points_cut_off"] == sorted([AP, AP2, AP3])
    assert net.school_cut and not net.cut_aps
    # Repaired: the school's alert clears.
    fine = {b: access_point(0, 6, f"{b[0]}-") for b in (AP, AP2, AP3)}
    assert judged(fine, net, 1) == [(SCHOOL_KEY, False)]


def test_the_radio_comes_first() -> None:
    """Laptops under a failing access point (weak signal) that are also cut off get
    the Wi-Fi fault only: the radio explains it."""
    ap = AccessPointWindow()
    for i in range(6):
        t = laptop(reach(600.0, 0.0), reach(300.0, 0.0), rssi=-86.0)
        ap.seen += 1
        if t.is_degraded:
            ap.degraded.append(f"d{i}")
        add_laptop(ap, f"d{i}", t, CONFIG)
    assert ap.reach is not None and len(ap.reach.cut_off) == 6
    keys = judged({AP: ap}, NetworkState())
    assert keys == [(f"{SCHOOL}/ap/{AP}/wifi_ap_fault", True)]


def test_rules_can_be_disabled() -> None:
    config = RulesConfig(enabled=["wifi_ap_fault"])
    found = judge_window(SCHOOL, T0, {AP: access_point(7, 0)}, NetworkState(), config)
    assert found.findings == []


def test_vanished_clears_what_no_laptop_used() -> None:
    net = NetworkState(cut_aps={AP, AP2}, school_cut=False)
    out = vanished(SCHOOL, T0, [AP2], net, CONFIG)
    assert [(f.key, f.active) for f in out] == [(AP_KEY, False)]
    net = NetworkState(school_cut=True)
    out = vanished(SCHOOL, T0, [], net, CONFIG)
    assert [(f.key, f.active) for f in out] == [(SCHOOL_KEY, False)]


def test_a_broker_outage_is_not_the_schools_fault() -> None:
    """Laptops that could not connect while the collector had lost the broker were
    cut off by the broker's absence; a DNS failure or a TLS interception still is
    the school's."""

    def refused(n: int, cause: str) -> AccessPointWindow:
        ap = AccessPointWindow()
        for i in range(n):
            t = laptop(reach(600.0, 0.0, failure=cause))
            ap.seen += 1
            add_laptop(ap, f"d{i}", t, CONFIG)
        return ap

    for cause in ("connect", "timeout", "closed", "refused"):
        down = judge_window(SCHOOL, T0, {AP: refused(6, cause)}, NetworkState(), CONFIG,
                            broker_down=True)  # fmt: skip
        assert down.findings == [], cause
        up = judge_window(SCHOOL, T0, {AP: refused(6, cause)}, NetworkState(), CONFIG)
        assert [f.key for f in up.findings] == [AP_KEY], cause
    for cause in ("dns", "tls"):
        down = judge_window(SCHOOL, T0, {AP: refused(6, cause)}, NetworkState(), CONFIG,
                            broker_down=True)  # fmt: skip
        [found] = down.findings
        assert found.evidence["failures"] == {cause: 6}
