"""School calendar: which days count as school days, and the named terms.

Both the silent-device sweep ("no report for N school days") and the forecast
roll-up ("batteries to replace per term") take the calendar as an argument; the
defaults below are a starting point the caller overrides from provisioning.

Source: the French national school calendar (education.gouv.fr, "calendrier
scolaire"), zone C (Occitanie's académies of Toulouse and Montpellier are in zone
C). Holidays run from the first day without class to the last one; classes resume
the next morning. Dates marked UNVERIFIED were not checked against the published
arrêté when this was written: check them before relying on them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

SATURDAY = 5  # date.weekday(): Monday is 0


@dataclass(frozen=True, slots=True)
class DateRange:
    """Days from `start` to `end`, both included."""

    start: date
    end: date

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError(f"date range ends ({self.end}) before it starts ({self.start})")

    def __contains__(self, day: object) -> bool:
        return isinstance(day, date) and self.start <= day <= self.end


@dataclass(frozen=True, slots=True)
class Term:
    """A named teaching period, e.g. from the rentrée to the Toussaint holiday."""

    name: str
    start: date
    end: date
    # Short name for time-series tags and dashboards, e.g. "2026-27 T2"; the name if empty.
    code: str = ""

    @property
    def tag(self) -> str:
        return self.code or self.name

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError(
                f"term {self.name!r} ends ({self.end}) before it starts ({self.start})"
            )


def _d(text: str) -> date:
    return date.fromisoformat(text)


DEFAULT_HOLIDAYS: tuple[DateRange, ...] = (
    # Summer 2026: classes ended Saturday 4 July 2026 (2025-2026 calendar); the
    # 2026-2027 rentrée is Tuesday 1 September 2026.
    DateRange(_d("2026-07-04"), _d("2026-08-31")),
    DateRange(_d("2026-10-17"), _d("2026-11-01")),  # Toussaint, classes resume Mon 2 Nov
    DateRange(_d("2026-11-11"), _d("2026-11-11")),  # Armistice (public holiday)
    DateRange(_d("2026-12-19"), _d("2027-01-03")),  # Noël, classes resume Mon 4 Jan
    # Hiver zone C: UNVERIFIED (Saturday 20 Feb to Monday 8 Mar 2027 assumed).
    DateRange(_d("2027-02-20"), _d("2027-03-07")),
    DateRange(_d("2027-03-29"), _d("2027-03-29")),  # Easter Monday (Easter: 28 Mar 2027)
    # Printemps zone C: UNKNOWN, not listed; add it from the arrêté.
    DateRange(_d("2027-05-06"), _d("2027-05-06")),  # Ascension (the Friday "pont" is not listed)
    DateRange(_d("2027-05-17"), _d("2027-05-17")),  # Whit Monday
    # Summer 2027: UNVERIFIED start (Saturday 3 July 2027 assumed).
    DateRange(_d("2027-07-03"), _d("2027-08-31")),
)

# Codes T1..T4 number the periods between holidays (not the three "trimestres"):
# they tag the `forecast` series (docs/alerts.md).
DEFAULT_TERMS: tuple[Term, ...] = (
    Term("2026-2027 P1 (rentrée-Toussaint)", _d("2026-09-01"), _d("2026-10-16"), "2026-27 T1"),
    Term("2026-2027 P2 (Toussaint-Noël)", _d("2026-11-02"), _d("2026-12-18"), "2026-27 T2"),
    # end UNVERIFIED (the winter holiday's start)
    Term("2026-2027 P3 (Noël-hiver)", _d("2027-01-04"), _d("2027-02-19"), "2026-27 T3"),
    # Spans the spring holiday, whose zone C dates are not known here (UNVERIFIED).
    Term("2026-2027 P4 (hiver-été)", _d("2027-03-08"), _d("2027-07-02"), "2026-27 T4"),
)


def is_school_day(day: date, holidays: Sequence[DateRange]) -> bool:
    """Monday to Friday, outside every holiday range."""
    if day.weekday() >= SATURDAY:
        return False
    return not any(day in h for h in holidays)


def school_days_between(after: date, before: date, holidays: Sequence[DateRange]) -> int:
    """School days strictly after `after` and strictly before `before`: the full
    school days that went by between two moments (0 when `before <= after`)."""
    count = 0
    day = after + timedelta(days=1)
    while day < before:
        if is_school_day(day, holidays):
            count += 1
        day += timedelta(days=1)
    return count


def term_for(day: date, terms: Sequence[Term]) -> Term | None:
    """The term containing `day`, or the next one when `day` falls in a holiday gap
    (what breaks during a holiday is replaced in that holiday, before the next term).
    None when `day` is after the last term. `terms` sorted by start."""
    for term in terms:
        if day <= term.end:
            return term
    return None
