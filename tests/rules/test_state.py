from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from collector.rules.base import fr
from tests.rules.factory import DEVICE, T0, battery, sample, state, step, wifi

H = timedelta(hours=1)


def test_apply_keeps_latest_seen_and_wifi_despite_spooled_samples() -> None:
    st = state()
    st.apply(sample(T0, wifi=wifi(-50.0, bssid_hash="1" * 16)), [])
    st.apply(sample(T0 - 24 * H, wifi=wifi(-90.0, bssid_hash="2" * 16)), [])  # spool drain
    assert st.last_seen == T0
    assert st.wifi is not None
    assert (st.wifi.bssid_hash, st.wifi.rssi_dbm, st.wifi.ts) == ("1" * 16, -50.0, T0)


def test_repeated_strings_are_shared_between_devices() -> None:
    a, b = state("a"), state("b")
    a.apply(sample(wifi=wifi(bssid_hash="".join(["ab"] * 8))), [])
    b.apply(sample(wifi=wifi(bssid_hash="".join(["ab"] * 8))), [])
    assert a.wifi is not None and b.wifi is not None
    assert a.wifi.bssid_hash is b.wifi.bssid_hash
    a.apply(sample(batteries=[battery(model="".join(["01AV", "431"]))]), [])
    b.apply(sample(batteries=[battery(model="".join(["01AV", "431"]))]), [])
    assert a.batteries["BAT0"].model is b.batteries["BAT0"].model


def test_conditions_follow_findings_and_ignore_other_devices() -> None:
    st = state()
    assert st.conditions is None  # no dict at all for a healthy device
    [found] = step(st, sample(T0, [battery(50.0)]), only="battery_replace")
    assert st.conditions == {found.key: T0}
    st.record([replace(found, device="someone-else", active=False)])
    assert st.since(found.key) == T0
    st.record([replace(found, active=False, at=T0 + H)])
    assert st.conditions is None
    assert found.device == DEVICE


def test_battery_state_tracks_readings_and_zero_cycle_streak() -> None:
    st = state()
    st.apply(sample(T0, [battery(96.0, cycle_count=0)]), [])
    st.apply(sample(T0 + H, [battery(95.5, cycle_count=0)]), [])
    bat = st.batteries["BAT0"]
    assert (bat.zero_cycle_streak, bat.zero_cycle_start_health_pct) == (2, 96.0)
    st.apply(sample(T0 + 2 * H, [battery(95.0, cycle_count=4, full_capacity_mwh=47_500.0)]), [])
    assert (bat.zero_cycle_streak, bat.zero_cycle_start_health_pct) == (0, None)
    assert (bat.cycle_count, bat.full_capacity_mwh, bat.design_capacity_mwh) == (
        4,
        47_500.0,
        50_000.0,
    )
    assert (bat.last_health_pct, bat.last_ts, bat.model) == (95.0, T0 + 2 * H, "01AV431")


def test_absent_battery_is_not_tracked() -> None:
    st = state()
    st.apply(sample(batteries=[battery(50.0, present=False)]), [])
    assert st.batteries == {}
    assert step(state(), sample(batteries=[battery(50.0, present=False)])) == []


def test_french_numbers() -> None:
    assert [fr(59.9), fr(52.0), fr(-75.0), fr(-75.5), fr(59.96)] == [
        "59,9",
        "52",
        "-75",
        "-75,5",
        "60",
    ]
