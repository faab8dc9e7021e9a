"""The Wi-Fi link between two reports: weakest signal, drops, time connected."""

from __future__ import annotations

from agent.model import WifiReading
from agent.wifi_watch import WifiWatch


def up(rssi: float | None = -60.0, *, hidden: bool = False) -> WifiReading:
    return WifiReading("wlan0", True, ssid="LORDI-EDU", rssi_dbm=rssi, ssid_hidden_by_os=hidden)


def down(*, hidden: bool = False) -> WifiReading:
    return WifiReading("wlan0", False, ssid_hidden_by_os=hidden)


def watch(*looks: tuple[float, WifiReading | None]) -> WifiWatch:
    w = WifiWatch()
    for t, r in looks:
        w.observe(r, t)
    return w


def test_fresh_watch_reports_nothing() -> None:
    assert WifiWatch().summary() == {"rssi_min_dbm": None, "disconnects": 0, "connected_s": 0.0}


def test_minimum_rssi_of_the_window() -> None:
    w = watch((0, up(-60)), (30, up(-72.5)), (60, up(-55)), (90, up(None)))
    assert w.summary()["rssi_min_dbm"] == -72.5


def test_rssi_while_not_connected_is_ignored() -> None:
    stale = WifiReading("wlan0", False, rssi_dbm=-95.0)
    w = watch((0, up(-60)), (30, stale))
    assert w.summary()["rssi_min_dbm"] == -60.0


def test_disconnects_count_connected_to_not_connected_transitions() -> None:
    w = watch(
        (0, up()),
        (30, down()),
        (60, down()),  # still down: the same drop
        (90, up()),
        (120, down()),
        (150, None),  # no Wi-Fi reading at all: still down
        (180, up()),
    )
    assert w.summary()["disconnects"] == 2


def test_adapter_vanishing_counts_as_a_drop() -> None:
    assert watch((0, up()), (30, None)).summary()["disconnects"] == 1


def test_starting_disconnected_is_not_a_drop() -> None:
    assert watch((0, down()), (30, up()), (60, up())).summary()["disconnects"] == 0


def test_connected_seconds_count_intervals_that_start_connected() -> None:
    w = watch((0, up()), (30, up()), (60, down()), (90, down()), (100, up()), (112.5, up()))
    # 0-30 and 30-60 connected, 60-100 down, 100-112.5 connected
    assert w.summary() == {"rssi_min_dbm": -60.0, "disconnects": 1, "connected_s": 72.5}


def test_clock_going_backwards_never_subtracts() -> None:
    w = watch((100, up()), (90, up()), (120, up()))
    assert w.summary()["connected_s"] == 30.0


def test_summary_resets_the_window_but_not_the_link_state() -> None:
    w = watch((0, up(-80)), (30, down()), (60, up(-70)))
    assert w.summary() == {"rssi_min_dbm": -80.0, "disconnects": 1, "connected_s": 30.0}
    assert w.summary() == {"rssi_min_dbm": None, "disconnects": 0, "connected_s": 0.0}
    # still connected since t=60: the next window counts from there
    w.observe(up(-65), 90)
    assert w.summary() == {"rssi_min_dbm": -65.0, "disconnects": 0, "connected_s": 30.0}
    w.observe(down(), 100)
    assert w.summary() == {"rssi_min_dbm": None, "disconnects": 1, "connected_s": 10.0}


def test_hidden_by_os_not_connected_is_ignored() -> None:
    w = watch((0, up(-60)), (30, down(hidden=True)), (60, up(-62)))
    assert w.summary() == {"rssi_min_dbm": -62.0, "disconnects": 0, "connected_s": 60.0}


def test_hidden_by_os_alone_reports_nothing() -> None:
    w = watch((0, down(hidden=True)), (30, down(hidden=True)))
    assert w.summary() == {"rssi_min_dbm": None, "disconnects": 0, "connected_s": 0.0}


def test_hidden_by_os_but_connected_still_counts() -> None:
    w = watch((0, up(-66, hidden=True)), (30, up(-71, hidden=True)), (60, down()))
    assert w.summary() == {"rssi_min_dbm": -71.0, "disconnects": 1, "connected_s": 60.0}
