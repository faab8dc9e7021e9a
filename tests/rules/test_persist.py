"""A device's whole rule state survives a JSON round trip, in constant size."""

from __future__ import annotations

import json
from datetime import timedelta

from collector.rules import DeviceState
from collector.rules.persist import from_document, saved_history, to_document
from tests.rules.factory import DEVICE, SCHOOL, T0, battery, sample, state, step, wifi


def _round_trip(st: DeviceState) -> DeviceState:
    doc = json.loads(json.dumps(to_document(st)))  # what the store keeps
    return from_document(st.school, st.device, st.last_seen, doc)


def _busy_state() -> DeviceState:
    """Fade, history, a collapse awaiting confirmation, a zero-cycle streak, Wi-Fi and
    conditions in progress (charging fault, weak Wi-Fi)."""
    st = state()
    for day in range(0, 60, 3):
        step(st, sample(T0 + timedelta(days=day), [battery(90.0 - day / 10, cycle_count=0)]))
    unplugged = battery(50.0, plugged=True, status="not_charging", percent=40.0, cycle_count=0)
    late = T0 + timedelta(days=61)
    step(st, sample(late, [unplugged], wifi(-82.0, disconnects=1)))
    assert st.batteries["BAT0"].collapse_seen == 1 and st.batteries["BAT0"].zero_cycle_streak > 0
    assert st.conditions and len(st.conditions) == 2 and st.wifi is not None
    return st


def test_every_field_survives_the_round_trip() -> None:
    st = _busy_state()
    assert _round_trip(st) == st


def test_an_empty_state_round_trips() -> None:
    st = state()
    assert _round_trip(st) == st


def test_condition_keys_are_saved_without_the_device_prefix() -> None:
    doc = to_document(_busy_state())
    assert sorted(doc["conditions"]) == ["BAT0/charging_fault", "wifi_weak"]
    assert doc["v"] == 2


def test_a_version_1_document_still_loads() -> None:
    old = {"batteries": {"BAT0": {"model": "01AV431", "fade": {"t0_s": 1.7e9, "n": 2}}}}
    restored = from_document(SCHOOL, DEVICE, T0, old)
    assert restored.last_seen == T0
    assert restored.batteries["BAT0"].model == "01AV431"
    assert restored.batteries["BAT0"].fade.n == 2
    assert restored.conditions is None and restored.wifi is None


def test_document_size_is_bounded_whatever_the_age() -> None:
    sizes = []
    for weeks in (30, 60):
        st = state()
        for day in range(0, 7 * weeks, 2):
            step(st, sample(T0 + timedelta(days=day), [battery(95.0 - day / 50)]))
        sizes.append(len(json.dumps(to_document(st))))
    assert abs(sizes[0] - sizes[1]) < 100  # only the digits of the numbers differ
    assert sizes[1] < 3_000


def test_saved_history_reads_a_battery_from_a_document() -> None:
    st = _busy_state()
    history = saved_history(to_document(st), "BAT0")
    assert len(history) == 9  # 60 days of trusted readings: nine ISO weeks
    assert history[0]["date"] == "2026-11-08"  # the first week's latest reading (day 6)
    assert saved_history(to_document(st), "BAT1") == []
