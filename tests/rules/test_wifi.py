from __future__ import annotations

from datetime import timedelta

from tests.rules.factory import AP, DEVICE, SCHOOL, T0, sample, state, step, wifi

H = timedelta(hours=1)


def test_weak_edge_direction_and_texts() -> None:
    assert step(state(), sample(wifi=wifi(-75.0)), only="wifi_weak") == []
    [found] = step(state(), sample(wifi=wifi(-75.5)), only="wifi_weak")
    assert found.active
    assert found.key == f"{SCHOOL}/{DEVICE}/wifi_weak"
    assert found.subject == "device"
    assert found.category == "hardware"  # one laptop: level 1 checks the laptop
    assert (
        found.summary == "Wi-Fi faible : -75,5 dBm (seuil -75 dBm) sur le réseau de l'établissement"
    )
    assert found.evidence["rssi_dbm"] == -75.5
    assert found.evidence["bssid_hash"] == AP
    assert found.evidence["ts"] == T0.isoformat()
    assert step(state(), sample(wifi=wifi(-40.0)), only="wifi_weak") == []  # strong is fine


def test_weak_hysteresis() -> None:
    st = state()
    step(st, sample(T0, wifi=wifi(-80.0)))
    [held] = step(st, sample(T0 + H, wifi=wifi(-73.0)), only="wifi_weak")
    assert held.active  # clears at -72 dBm
    [cleared] = step(st, sample(T0 + 2 * H, wifi=wifi(-72.0)), only="wifi_weak")
    assert not cleared.active


def test_home_network_never_counts() -> None:
    home = wifi(
        -90.0,
        ssid=None,
        ssid_state="other",
        on_school_network=False,
        bssid_hash=None,
        disconnects=9,
    )
    assert step(state(), sample(wifi=home)) == []
    hidden = wifi(
        -90.0, ssid=None, ssid_state="hidden_by_os", on_school_network=None, disconnects=9
    )
    assert step(state(), sample(wifi=hidden)) == []
    down = wifi(None, connected=False, ssid=None, ssid_state="not_connected", bssid_hash=None)
    assert step(state(), sample(wifi=down)) == []


def test_going_home_neither_clears_nor_raises() -> None:
    st = state()
    step(st, sample(T0, wifi=wifi(-85.0)))
    home = wifi(-40.0, ssid=None, ssid_state="other", on_school_network=False, bssid_hash=None)
    assert step(st, sample(T0 + H, wifi=home)) == []
    assert st.is_active(f"{SCHOOL}/{DEVICE}/wifi_weak")


def test_unstable_edges_and_hysteresis() -> None:
    assert step(state(), sample(wifi=wifi(disconnects=2)), only="wifi_unstable") == []
    st = state()
    [found] = step(st, sample(T0, wifi=wifi(disconnects=3)), only="wifi_unstable")
    assert found.active
    assert found.severity == "warning"
    assert (
        found.summary
        == "Wi-Fi instable : 3 déconnexions sur le réseau de l'établissement (seuil 3)"
    )
    assert found.evidence["disconnects"] == 3
    [held] = step(st, sample(T0 + H, wifi=wifi(disconnects=2)), only="wifi_unstable")
    assert held.active  # clears below 2
    [cleared] = step(st, sample(T0 + 2 * H, wifi=wifi(disconnects=1)), only="wifi_unstable")
    assert not cleared.active


def test_missing_reading_gives_no_verdict() -> None:
    assert step(state(), sample(wifi=wifi(None, disconnects=None))) == []
