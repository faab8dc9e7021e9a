"""Silence: the calendar arithmetic and the findings (rules/silent.py); the counting
of silent days is collector.alerting.school's."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from collector.rules import scope_of
from collector.rules.calendar import (
    DateRange,
    SchoolYear,
    Term,
    ZoneCalendar,
    is_school_day,
    school_days_between,
    term_for,
)
from collector.rules.silent import (
    PARIS,
    day_end,
    day_is_active,
    device_finding,
    local_day,
    school_finding,
)
from tests.calendars import TERMS_2026_27, ZONE_C
from tests.rules.factory import DEVICE, SCHOOL

MONDAY = date(2026, 11, 30)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def active(day: date, reported: int, busiest: int, share: float = 0.3, least: int = 1) -> bool:
    return day_is_active(day, reported, busiest, share, least, ZONE_C)


# --- active days --------------------------------------------------------------------------


def test_a_day_is_active_when_enough_of_the_school_reported() -> None:
    # 30 % of the busiest day of the previous weeks
    assert active(MONDAY, 3, 10)
    assert not active(MONDAY, 2, 10)
    assert active(MONDAY, 30, 100)
    assert not active(MONDAY, 29, 100)
    # a busier day than ever is active (compared with itself)
    assert active(MONDAY, 12, 10)
    # a new school, no history: any report counts; none does not
    assert active(MONDAY, 1, 0)
    assert not active(MONDAY, 0, 0)
    assert not active(MONDAY, 0, 10)


def test_the_share_and_the_minimum_are_the_caller_s() -> None:
    assert not active(MONDAY, 3, 10, share=0.5)
    assert active(MONDAY, 5, 10, share=0.5)
    assert not active(MONDAY, 4, 4, least=5)  # everyone, but too few laptops
    assert active(MONDAY, 5, 5, least=5)


def test_weekends_do_not_count() -> None:
    assert not active(date(2026, 11, 28), 100, 100)  # Saturday
    assert not active(date(2026, 11, 29), 100, 100)  # Sunday


def test_holidays_do_not_count_and_the_caller_s_calendar_wins() -> None:
    toussaint = date(2026, 10, 20)
    assert not active(toussaint, 100, 100)
    assert not active(date(2026, 11, 11), 100, 100)  # Armistice (public holiday)
    no_holidays = ZoneCalendar("C", (), frozenset())
    assert day_is_active(toussaint, 100, 100, 0.3, 1, no_holidays)
    one_day = ZoneCalendar("C", [SchoolYear(2026, (DateRange(MONDAY, MONDAY),))], frozenset())
    assert not day_is_active(MONDAY, 100, 100, 0.3, 1, one_day)


# --- days in Paris time -------------------------------------------------------------------


def test_days_are_counted_in_paris_time() -> None:
    # 23:30 UTC on Thursday is 00:30 on Friday in Paris: the report is Friday's
    assert local_day(utc(2026, 11, 26, 23, 30)) == date(2026, 11, 27)
    assert local_day(utc(2026, 11, 26, 22, 59)) == date(2026, 11, 26)
    # summer time: two hours ahead
    assert local_day(utc(2026, 6, 15, 21, 59)) == date(2026, 6, 15)
    assert local_day(utc(2026, 6, 15, 22, 0)) == date(2026, 6, 16)


def test_day_end_is_local_midnight_in_utc() -> None:
    assert day_end(date(2026, 11, 26)) == utc(2026, 11, 26, 23)  # winter: UTC+1
    assert day_end(date(2026, 6, 15)) == utc(2026, 6, 15, 22)  # summer: UTC+2
    assert day_end(date(2026, 11, 26)).tzinfo == UTC


@pytest.mark.parametrize(
    ("day", "end", "hours"),
    [
        # spring forward, Sunday 29 March 2026: the day lasts 23 hours
        (date(2026, 3, 28), utc(2026, 3, 28, 23), 24),
        (date(2026, 3, 29), utc(2026, 3, 29, 22), 23),
        (date(2026, 3, 30), utc(2026, 3, 30, 22), 24),
        # fall back, Sunday 25 October 2026: the day lasts 25 hours
        (date(2026, 10, 24), utc(2026, 10, 24, 22), 24),
        (date(2026, 10, 25), utc(2026, 10, 25, 23), 25),
        (date(2026, 10, 26), utc(2026, 10, 26, 23), 24),
    ],
)
def test_day_end_around_the_dst_change(day: date, end: datetime, hours: int) -> None:
    assert day_end(day) == end
    assert day_end(day) - day_end(day - timedelta(days=1)) == timedelta(hours=hours)
    # the day's last instant is still that day, its end is the next one's first
    assert local_day(end - timedelta(microseconds=1)) == day
    assert local_day(end) == day + timedelta(days=1)
    assert end.astimezone(PARIS).hour == 0


def test_days_end_on_a_window_boundary() -> None:
    # window_s divides an hour, and Paris is a whole number of hours from UTC, so a
    # day's end is also the end of a telemetry window, summer time or not
    for day in (date(2026, 3, 29), date(2026, 10, 25), date(2026, 11, 26)):
        end_s = day_end(day).timestamp()
        assert end_s % 900 == 0 and end_s % 3600 == 0


# --- findings -----------------------------------------------------------------------------


def test_silent_laptop_finding() -> None:
    last, at = utc(2026, 11, 26, 15), day_end(date(2026, 12, 2))
    found = device_finding(SCHOOL, DEVICE, at, True, last, 3, 3)
    assert found.active
    assert found.rule == "device_silent"
    assert found.key == f"{SCHOOL}/{DEVICE}/device_silent"
    assert found.subject == "device"
    assert found.category == "hardware"
    assert found.severity == "warning"
    assert (found.school, found.device, found.at) == (SCHOOL, DEVICE, at)
    assert found.summary == (
        "Aucun rapport depuis 3 jours d'école où l'établissement a rapporté (dernier le 26/11/2026)"
    )
    assert found.action.startswith("Retrouver l'ordinateur")
    assert found.evidence == {
        "last_seen": "2026-11-26T15:00:00+00:00",
        "school_days_silent": 3,
        "threshold_school_days": 3,
        "since": "2026-11-26T15:00:00+00:00",  # the condition started at its last sample
        "ts": at.isoformat(),
    }
    assert scope_of(found) == f"s:{SCHOOL}"  # judged on the school's completed days


def test_silent_laptop_finding_dates_are_paris_dates() -> None:
    found = device_finding(
        SCHOOL, DEVICE, utc(2026, 12, 2, 23), True, utc(2026, 11, 26, 23, 30), 4, 3
    )
    assert found.summary.endswith("(dernier le 27/11/2026)")
    assert found.evidence["threshold_school_days"] == 3


def test_reporting_again_clears() -> None:
    back = utc(2026, 12, 2, 11)
    cleared = device_finding(SCHOOL, DEVICE, back, False, utc(2026, 11, 26, 15), 0, 3)
    assert not cleared.active
    assert cleared.summary == "L'ordinateur a de nouveau envoyé un rapport (le 02/12/2026)"
    assert cleared.action == ""
    assert cleared.evidence["since"] is None
    assert cleared.at == back


def test_silent_school_finding() -> None:
    at = day_end(date(2026, 12, 2))
    last_report = datetime(2026, 12, 1, 16, 50, tzinfo=UTC)
    found = school_finding(SCHOOL, at, True, date(2026, 12, 1), 1, 1, last_report)
    assert found.active
    assert found.since == last_report  # the engine's episode start: its last report
    assert found.rule == "school_silent"
    assert found.key == f"{SCHOOL}/school_silent"
    assert (found.subject, found.category, found.severity) == ("school", "network", "critical")
    assert found.device is None
    assert found.summary == (
        "Aucun ordinateur de l'établissement n'a rapporté depuis 1 jour(s) d'école "
        "(dernier jour avec des rapports : 01/12/2026)"
    )
    assert found.action.startswith("Vérifier l'accès de l'établissement")
    assert found.evidence == {
        "last_day_reported": "2026-12-01",
        "school_days_silent": 1,
        "threshold_school_days": 1,
        "since": last_report.isoformat(),
        "ts": at.isoformat(),
    }
    assert scope_of(found) == f"s:{SCHOOL}"
    unknown = school_finding(SCHOOL, at, True, None, 2, 1)
    assert unknown.summary.endswith("depuis 2 jour(s) d'école")
    assert unknown.evidence["last_day_reported"] is None
    cleared = school_finding(SCHOOL, at, False, date(2026, 12, 1), 0, 1)
    assert not cleared.active
    assert cleared.summary == "Les ordinateurs de l'établissement rapportent de nouveau"
    assert cleared.action == ""


# --- calendar -----------------------------------------------------------------------------


def test_calendar_helpers() -> None:
    assert not is_school_day(date(2026, 11, 28), ZONE_C)  # Saturday
    assert not is_school_day(date(2026, 12, 21), ZONE_C)  # Noël
    assert is_school_day(date(2027, 1, 4), ZONE_C)  # back to school
    assert school_days_between(date(2026, 12, 18), date(2027, 1, 6), ZONE_C) == 2
    assert school_days_between(date(2026, 12, 2), date(2026, 12, 1), ZONE_C) == 0
    # the weekend does not count: Thursday to Wednesday is Fri, Mon, Tue
    assert school_days_between(date(2026, 11, 26), date(2026, 12, 2), ZONE_C) == 3
    # nor does a public holiday: Monday 9 to Friday 13 Nov is Tue, Thu (Wed 11 is Armistice)
    assert school_days_between(date(2026, 11, 9), date(2026, 11, 13), ZONE_C) == 2
    assert term_for(date(2026, 10, 25), TERMS_2026_27) == TERMS_2026_27[1]  # holiday -> next term
    assert term_for(date(2027, 8, 1), TERMS_2026_27) is None


def test_ranges_reject_end_before_start() -> None:
    with pytest.raises(
        ValueError, match=r"date range ends \(2026-10-01\) before it starts \(2026-10-17\)"
    ):
        DateRange(date(2026, 10, 17), date(2026, 10, 1))
    with pytest.raises(ValueError, match="term 'P1' ends"):
        Term("P1", date(2026, 10, 17), date(2026, 10, 1))
