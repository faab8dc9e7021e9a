"""The weekly capacity history: one point per ISO week, bounded, packed in bytes."""

from __future__ import annotations

import json
from datetime import timedelta

from collector.rules.history import HISTORY_WEEKS, add_point, from_text, points, to_text
from tests.rules.factory import T0, battery, sample, state, step


def _add(history: bytes, days: float, full: float | None = 40_000.0) -> bytes:
    return add_point(
        history,
        T0 + timedelta(days=days),
        full_capacity_mwh=full,
        design_capacity_mwh=50_000.0,
        health_pct=None if full is None else full / 500,
        cycle_count=None if full is None else 300,
    )


def test_one_point_per_iso_week_the_latest_reading_wins() -> None:
    history = _add(b"", 0, 45_000.0)  # Monday
    history = _add(history, 4, 44_000.0)  # Friday, same week: replaces
    history = _add(history, 2, 46_000.0)  # Wednesday, older than Friday: ignored
    history = _add(history, 7, 43_000.0)  # next Monday: a new point
    assert points(history) == [
        {"date": "2026-11-06", "full_capacity_mwh": 44_000.0, "design_capacity_mwh": 50_000.0,
         "health_pct": 88.0, "cycle_count": 300},
        {"date": "2026-11-09", "full_capacity_mwh": 43_000.0, "design_capacity_mwh": 50_000.0,
         "health_pct": 86.0, "cycle_count": 300},
    ]  # fmt: skip


def test_a_spooled_sample_from_an_earlier_week_does_not_rewrite_history() -> None:
    history = _add(_add(b"", 14), -7)
    assert [p["date"] for p in points(history)] == ["2026-11-16"]


def test_bounded_to_the_last_weeks_in_constant_memory() -> None:
    history = b""
    for week in range(HISTORY_WEEKS + 14):
        history = _add(history, 7 * week, 50_000.0 - 100 * week)
    kept = points(history)
    assert len(kept) == HISTORY_WEEKS
    assert kept[0]["date"] == (T0 + timedelta(weeks=14)).date().isoformat()
    assert kept[-1]["full_capacity_mwh"] == 50_000.0 - 100 * (HISTORY_WEEKS + 13)
    assert len(history) == 18 * HISTORY_WEEKS


def test_unknown_values_stay_unknown_and_the_text_round_trips() -> None:
    history = _add(_add(b"", 0), 7, None)
    assert points(history)[1] == {
        "date": "2026-11-09", "full_capacity_mwh": None, "design_capacity_mwh": 50_000.0,
        "health_pct": None, "cycle_count": None,
    }  # fmt: skip
    text = json.loads(json.dumps(to_text(history)))
    assert from_text(text) == history
    assert len(text) == 48  # two points of 18 bytes, in base64


def test_a_damaged_saved_history_loads_as_empty() -> None:
    assert from_text("not base64!") == b""
    assert from_text(to_text(b"\x00" * 17)) == b""  # not a whole number of points
    long = b"".join(_add(b"", 7 * w) for w in range(HISTORY_WEEKS + 3))
    assert len(from_text(to_text(long))) == 18 * HISTORY_WEEKS  # the newest kept


def test_only_trusted_readings_enter_the_history() -> None:
    st = state()
    step(st, sample(T0, [battery(88.0)]))
    step(st, sample(T0 + timedelta(days=7), [battery(120.0)]))  # full > 110 % of design
    step(st, sample(T0 + timedelta(days=14), [battery(75.0, cycle_count=0)]))  # worn at 0 cycles
    kept = points(st.batteries["BAT0"].history)
    assert [(p["date"], p["health_pct"], p["cycle_count"]) for p in kept] == [
        ("2026-11-02", 88.0, 300),
        ("2026-11-16", 75.0, None),  # a zero cycle count the trust rules reject
    ]
