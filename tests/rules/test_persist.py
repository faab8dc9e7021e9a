"""A device's whole rule state survives a JSON round trip, in constant size."""

from __future__ import annotations

import json
from dataclasses import fields
from datetime import timedelta
from typing import Any

from collector.rules import DeviceState, build_window_rules
from collector.rules.persist import (
    VERSION,
    battery_model,
    from_document,
    saved_history,
    tally_document,
    tally_from,
    to_document,
)
from collector.rules.tally import Tally, observe
from collector.rules.wifi import wifi_evidence
from tests.rules.factory import (
    AP,
    DEFAULT,
    DEVICE,
    SCHOOL,
    T0,
    battery,
    judge,
    sample,
    state,
    step,
    tally,
    wifi,
)

AP2 = "2" * 16
LATE = T0 + timedelta(days=61)


def _round_trip(st: DeviceState) -> DeviceState:
    doc = json.loads(json.dumps(to_document(st)))  # what the store keeps
    return from_document(st.school, st.device, st.last_seen, doc)


def _window_tallies() -> dict[str, Tally]:
    first = tally(wifi(-82.0, disconnects=1), wifi(-84.0, disconnects=3), ts=LATE)
    second = Tally()
    observe(second, wifi(-73.0, bssid_hash=AP2, signal_pct=40.0, channel=36), LATE, DEFAULT)
    return {AP: first, AP2: second}


def _busy_state() -> DeviceState:
    """Fade, history, a collapse awaiting confirmation, a zero-cycle streak, the
    current window's Wi-Fi tallies, the watch and conditions in
    progress (charging fault, weak Wi-Fi)."""
    st = state()
    for day in range(0, 60, 3):
        step(st, sample(T0 + timedelta(days=day), [battery(90.0 - day / 10, cycle_count=0)]))
    unplugged = battery(50.0, plugged=True, status="not_charging", percent=40.0, cycle_count=0)
    step(st, sample(LATE, [unplugged], wifi(-82.0, disconnects=1)))
    [weak, _] = build_window_rules(DEFAULT)
    assert judge(weak, st, tally(wifi(-85.0)), LATE - timedelta(minutes=15)) is not None
    st.window_start = int(LATE.timestamp()) // 900 * 900
    st.tallies = _window_tallies()
    st.watch_until = st.window_start
    bat = st.batteries["BAT0"]
    assert bat.collapse_seen == 1 and bat.zero_cycle_streak > 0 and bat.history
    assert st.conditions and len(st.conditions) == 2
    return st


def _without_tallies(st: DeviceState) -> dict[str, Any]:
    return {f.name: getattr(st, f.name) for f in fields(st) if f.name != "tally"}


def test_every_field_survives_the_round_trip() -> None:
    st = _busy_state()
    restored = _round_trip(st)
    assert _without_tallies(restored) == _without_tallies(st)
    assert restored.tallies is not None and st.tallies is not None
    assert sorted(restored.tallies) == sorted(st.tallies)
    for bssid, t in st.tallies.items():
        back = restored.tallies[bssid]
        # the counts exactly; the latest reading as the fields its evidence reads
        assert tally_document(back) == tally_document(t)
        assert wifi_evidence(back.last) == wifi_evidence(t.last)
        assert back.last_ts == t.last_ts
    # saved again, the same document
    assert to_document(restored) == to_document(st)


def test_a_restored_window_is_judged_as_the_live_one() -> None:
    st = _busy_state()
    restored = _round_trip(st)
    assert st.tallies is not None and restored.tallies is not None
    start = LATE
    for rule in build_window_rules(DEFAULT):
        live = rule.judge_window(st, st.tallies[AP], start, False)
        again = rule.judge_window(restored, restored.tallies[AP], start, False)
        assert live == again
    # and a reading added after the restart lands on the restored counts
    observe(restored.tallies[AP], wifi(-90.0), LATE + timedelta(minutes=1), DEFAULT)
    assert restored.tallies[AP].readings == 3
    assert restored.tallies[AP].last.rssi_dbm == -90.0


def test_an_empty_state_round_trips() -> None:
    st = state()
    assert _round_trip(st) == st
    assert to_document(st) == {"v": VERSION, "batteries": {}}


def test_document_shape() -> None:
    doc = to_document(_busy_state())
    assert doc["v"] == VERSION == 3
    # condition keys are saved without the device prefix
    assert sorted(doc["conditions"]) == ["BAT0/charging_fault", "wifi_weak"]
    window = doc["window"]
    assert window["start"] % 900 == 0
    assert sorted(window["tallies"]) == sorted([AP, AP2])
    saved = window["tallies"][AP]
    assert (saved["readings"], saved["weak"], saved["unstable"], saved["disconnects"]) == (
        2,
        2,
        1,
        4,
    )
    assert saved["last"]["rssi_dbm"] == -84.0
    assert saved["last_ts"] == LATE.isoformat()
    assert doc["watch_until"] == window["start"]
    assert "wifi" not in doc


def test_a_window_without_readings_round_trips() -> None:
    st = state()
    st.window_start, st.tallies = 1_800_000_000, {}
    restored = _round_trip(st)
    assert (restored.window_start, restored.tallies) == (1_800_000_000, {})


def test_tally_documents_round_trip() -> None:
    empty = tally_from(json.loads(json.dumps(tally_document(Tally()))))
    assert empty == Tally()
    t = _window_tallies()[AP2]
    back = tally_from(json.loads(json.dumps(tally_document(t))))
    assert (back.readings, back.weak_hold, back.rssi_min, back.last_ts) == (1, 1, -73.0, LATE)
    assert (back.last.signal_pct, back.last.channel, back.last.bssid_hash) == (40.0, 36, AP2)


def test_restored_strings_are_shared_between_devices() -> None:
    docs = [to_document(_busy_state()) for _ in range(2)]
    a, b = (
        from_document(SCHOOL, device, None, json.loads(json.dumps(doc)))
        for device, doc in zip(["a", "b"], docs, strict=True)
    )
    assert a.tallies is not None and b.tallies is not None
    [ap_a] = [k for k in a.tallies if k == AP]
    [ap_b] = [k for k in b.tallies if k == AP]
    assert ap_a is ap_b
    assert a.batteries["BAT0"].model is b.batteries["BAT0"].model


def test_a_version_1_document_still_loads() -> None:
    old = {"batteries": {"BAT0": {"model": "01AV431", "fade": {"t0_s": 1.7e9, "n": 2}}}}
    restored = from_document(SCHOOL, DEVICE, T0, old)
    assert restored.last_seen == T0
    assert restored.batteries["BAT0"].model == "01AV431"
    assert restored.batteries["BAT0"].fade.n == 2
    assert restored.conditions is None
    assert (restored.window_start, restored.tallies) == (None, None)
    assert restored.watch_until == 0


def test_a_version_2_document_still_loads() -> None:
    # what the version-2 collector saved: the same batteries and conditions, and the
    # last Wi-Fi reading (the old access-point correlation), which is not used any more
    v2 = {
        "v": 2,
        "batteries": {
            "BAT0": {
                "last_health_pct": 58.0,
                "last_ts": "2026-11-02T09:00:00+00:00",
                "collapse_from_pct": None,
                "collapse_seen": 0,
                "model": "01AV431",
                "design_capacity_mwh": 50_000.0,
                "full_capacity_mwh": 29_000.0,
                "cycle_count": 640,
                "zero_cycle_streak": 0,
                "zero_cycle_start_health_pct": None,
                "untrusted_samples": 2,
                "fade": {"t0_s": 1.79e9, "n": 3, "mean_health_pct": 59.0},
            }
        },
        "wifi": {
            "connected": True,
            "on_school_network": True,
            "bssid_hash": AP,
            "rssi_dbm": -81.0,
            "disconnects": 4,
            "ts": "2026-11-02T09:00:00+00:00",
        },
        "conditions": {
            "BAT0/battery_replace": "2026-11-01T08:00:00+00:00",
            "wifi_weak": "2026-11-02T08:30:00+00:00",
        },
    }
    restored = from_document(SCHOOL, DEVICE, T0, v2)
    bat = restored.batteries["BAT0"]
    assert (bat.last_health_pct, bat.last_ts, bat.cycle_count) == (58.0, T0, 640)
    assert (bat.untrusted_samples, bat.fade.n, bat.fade.mean_health_pct) == (2, 3, 59.0)
    assert restored.conditions == {
        f"{SCHOOL}/{DEVICE}/BAT0/battery_replace": T0 - timedelta(hours=25),
        f"{SCHOOL}/{DEVICE}/wifi_weak": T0 - timedelta(minutes=30),
    }
    assert (restored.window_start, restored.tallies) == (None, None)
    assert restored.watch_until == 0
    assert battery_model(restored) == "01AV431"
    # the next sample is judged against the restored state (hysteresis kept: 61 % < 62 %)
    [held] = step(
        restored, sample(T0 + timedelta(hours=1), [battery(61.0)]), only="battery_replace"
    )
    assert held.active and held.evidence["since"] == (T0 - timedelta(hours=25)).isoformat()
    # saved again, it is a version-3 document without the old Wi-Fi reading
    doc = to_document(restored)
    assert doc["v"] == 3 and "wifi" not in doc and "window" not in doc


def test_document_size_is_bounded_whatever_the_age() -> None:
    sizes = []
    for weeks in (30, 60):
        st = state()
        for day in range(0, 7 * weeks, 2):
            step(st, sample(T0 + timedelta(days=day), [battery(95.0 - day / 50)]))
        sizes.append(len(json.dumps(to_document(st))))
    assert abs(sizes[0] - sizes[1]) < 100  # only the digits of the numbers differ
    assert sizes[1] < 3_000


def test_window_size_does_not_grow_with_the_readings() -> None:
    sizes = []
    for readings in (1, 500):
        st = state()
        st.window_start, st.tallies = 1_800_000_000, {AP: Tally()}
        for i in range(readings):  # each past the clear level: the latest is kept
            observe(st.tally, wifi(-73.0 - i % 30, disconnects=i % 4), T0, DEFAULT)
        sizes.append(len(json.dumps(to_document(st))))
    assert abs(sizes[0] - sizes[1]) < 60  # only the digits of the counts differ


def test_saved_history_reads_a_battery_from_a_document() -> None:
    st = _busy_state()
    history = saved_history(to_document(st), "BAT0")
    assert len(history) == 9  # 60 days of trusted readings: nine ISO weeks
    assert history[0]["date"] == "2026-11-08"  # the first week's latest reading (day 6)
    assert saved_history(to_document(st), "BAT1") == []
