from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from collector.rules import DeviceState, silent_devices
from collector.rules.calendar import (
    DEFAULT_HOLIDAYS,
    DEFAULT_TERMS,
    DateRange,
    Term,
    is_school_day,
    school_days_between,
    term_for,
)
from tests.rules.factory import DEVICE, SCHOOL, sample, state


def seen_at(ts: datetime) -> DeviceState:
    st = state()
    st.apply(sample(ts), [])
    return st


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def test_weekend_does_not_count() -> None:
    st = seen_at(utc(2026, 11, 26, 15))  # Thursday
    # Tuesday: Friday and Monday went by (2 school days), the weekend does not count
    assert silent_devices([st], utc(2026, 12, 1, 10)) == []
    [found] = silent_devices([st], utc(2026, 12, 2, 10))  # Wednesday: Fri, Mon, Tue
    assert found.active
    assert found.rule == "device_silent"
    assert found.key == f"{SCHOOL}/{DEVICE}/device_silent"
    assert found.subject == "device"
    assert found.category == "hardware"
    assert found.at == utc(2026, 12, 2, 10)
    assert found.summary == "Aucun rapport depuis 3 jours d'école (dernier le 26/11/2026)"
    assert found.evidence["school_days_silent"] == 3
    assert found.evidence["last_seen"] == "2026-11-26T15:00:00+00:00"


def test_holiday_does_not_count() -> None:
    st = seen_at(utc(2026, 10, 16, 14))  # Friday, last day before the Toussaint holiday
    assert silent_devices([st], utc(2026, 11, 4, 10)) == []  # Mon 2 and Tue 3 Nov
    [found] = silent_devices([st], utc(2026, 11, 5, 10))
    assert found.evidence["school_days_silent"] == 3
    # the caller's calendar wins: with no holidays, the same gap is 12 school days
    [found] = silent_devices([st], utc(2026, 11, 4, 10), holidays=())
    assert found.evidence["school_days_silent"] == 12


def test_public_holiday_does_not_count() -> None:
    st = seen_at(utc(2026, 11, 9, 10))  # Monday; Wednesday 11 Nov is Armistice
    assert silent_devices([st], utc(2026, 11, 13, 10)) == []  # Tue, Thu: 2 days


def test_days_are_counted_in_paris_time() -> None:
    # 23:30 UTC on Thursday is 00:30 on Friday in Paris: the report is Friday's
    st = seen_at(utc(2026, 11, 26, 23, 30))
    assert silent_devices([st], utc(2026, 12, 2, 10)) == []  # only Mon, Tue


def test_threshold_is_configurable() -> None:
    st = seen_at(utc(2026, 11, 26, 15))
    [found] = silent_devices([st], utc(2026, 11, 30, 10), school_days=1)
    assert found.evidence["threshold_school_days"] == 1


def test_reporting_again_clears_once() -> None:
    st = seen_at(utc(2026, 11, 26, 15))
    found = silent_devices([st], utc(2026, 12, 2, 10))
    st.record(found)
    st.apply(sample(utc(2026, 12, 2, 11)), [])
    [cleared] = silent_devices([st], utc(2026, 12, 2, 12))
    assert not cleared.active
    assert cleared.summary == "L'ordinateur a de nouveau envoyé un rapport (le 02/12/2026)"
    st.record([cleared])
    assert silent_devices([st], utc(2026, 12, 2, 13)) == []


def test_never_seen_devices_are_skipped() -> None:
    assert silent_devices([state()], utc(2026, 12, 2, 10)) == []


def test_calendar_helpers() -> None:
    assert not is_school_day(date(2026, 11, 28), DEFAULT_HOLIDAYS)  # Saturday
    assert not is_school_day(date(2026, 12, 21), DEFAULT_HOLIDAYS)  # Noël
    assert is_school_day(date(2027, 1, 4), DEFAULT_HOLIDAYS)  # back to school
    assert school_days_between(date(2026, 12, 18), date(2027, 1, 6), DEFAULT_HOLIDAYS) == 2
    assert school_days_between(date(2026, 12, 2), date(2026, 12, 1), ()) == 0
    assert term_for(date(2026, 10, 25), DEFAULT_TERMS) == DEFAULT_TERMS[1]  # holiday -> next term
    assert term_for(date(2027, 8, 1), DEFAULT_TERMS) is None


def test_ranges_reject_end_before_start() -> None:
    with pytest.raises(
        ValueError, match=r"date range ends \(2026-10-01\) before it starts \(2026-10-17\)"
    ):
        DateRange(date(2026, 10, 17), date(2026, 10, 1))
    with pytest.raises(ValueError, match="term 'P1' ends"):
        Term("P1", date(2026, 10, 17), date(2026, 10, 1))
