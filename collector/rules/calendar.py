"""School calendar: which days are school days in a holiday zone, and the terms.

Pure: the data (the Ministry's calendar per zone, public holidays) is loaded by
`collector.calendar`; this module only answers from it. No date is written here.

- A **school year** "2026-2027" is, for naming and coverage, the days from
  1 September 2026 to 31 August 2027 (`school_year_of`); its holidays are the ones
  that start in it, each from its first day without class to its last one.
- A zone **covers** a day when the data holds that day's school year for the zone.
  A covered day is a school day when it is Monday to Friday, not a public holiday
  and in none of the year's holidays. An **uncovered** day (no data for its year, or
  a school with no zone) is a school day when it is Monday to Friday and not a
  public holiday: the school holidays are unknown there, so the silence rules may
  count holiday weekdays. The first uncovered day judged in a zone and year is
  logged once as a WARNING, and the collector says it at start-up and in
  `lordi_collector_calendar_covered` (collector/calendar/status.py).
- **Terms** are derived from the holidays: the school days between two holidays of
  at least `TERM_BREAK_DAYS` days (the "vacances"; a long weekend or a "pont" does
  not end a term). "2026-27 T1" runs from the day after the previous summer holiday
  (or 1 September when that year is not covered) to the day before the first
  holiday; they tag the `forecast` series (docs/alerts.md).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Protocol

log = logging.getLogger(__name__)

SATURDAY = 5  # date.weekday(): Monday is 0
YEAR_START_MONTH = 9  # a school year is named and covered from 1 September to 31 August
TERM_BREAK_DAYS = 7  # a holiday this long or longer separates two terms
UNSET_ZONE = ""  # the zone of a school the registry gives none (and no default)
ONE_DAY = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class DateRange:
    """Days from `start` to `end`, both included; `name`: e.g. "Vacances de Noël"."""

    start: date
    end: date
    name: str = ""

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError(f"date range ends ({self.end}) before it starts ({self.start})")

    def __contains__(self, day: object) -> bool:
        return isinstance(day, date) and self.start <= day <= self.end

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1


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


class SchoolDays(Protocol):
    def is_school_day(self, day: date) -> bool: ...


class DaySet(Protocol):
    def __contains__(self, day: object, /) -> bool: ...


def school_year_of(day: date) -> int:
    """The first calendar year of `day`'s school year (2026 for "2026-2027")."""
    return day.year if day.month >= YEAR_START_MONTH else day.year - 1


def year_name(first_year: int) -> str:
    return f"{first_year}-{first_year + 1}"


def year_code(first_year: int) -> str:
    return f"{first_year}-{(first_year + 1) % 100:02d}"


def year_span(first_year: int) -> DateRange:
    """The days named and covered as `first_year`'s school year."""
    start = date(first_year, YEAR_START_MONTH, 1)
    return DateRange(start, date(first_year + 1, YEAR_START_MONTH, 1) - ONE_DAY)


@dataclass(frozen=True, slots=True)
class SchoolYear:
    """One zone's holidays of one school year, and where they come from."""

    first_year: int
    holidays: tuple[DateRange, ...]  # sorted, not overlapping
    source: str = ""

    @property
    def name(self) -> str:
        return year_name(self.first_year)

    @property
    def code(self) -> str:
        return year_code(self.first_year)


def short_name(holiday: str) -> str:
    """ "Vacances de la Toussaint - Zone A" -> "Toussaint" (for term names)."""
    text = holiday.split(" - ", maxsplit=1)[0].strip().replace("\u2019", "'")
    for prefix in ("Début des ", "Vacances de la ", "Vacances de l'", "Vacances de ",
                   "Vacances d'", "Vacances des ", "Vacances du "):  # fmt: skip
        if text.lower().startswith(prefix.lower()):
            text = text[len(prefix) :]
    return (text[:1].upper() + text[1:]) if text else "vacances"


class ZoneCalendar:
    """One holiday zone: its school years, public holidays, school days and terms."""

    def __init__(self, zone: str, years: Iterable[SchoolYear], public: DaySet) -> None:
        self.zone = zone
        self.years: dict[int, SchoolYear] = {y.first_year: y for y in years}
        self.public = public
        self.holidays: tuple[DateRange, ...] = tuple(
            h for y in sorted(self.years) for h in self.years[y].holidays
        )
        self._off = frozenset(
            h.start + timedelta(days=i) for h in self.holidays for i in range(h.days)
        )
        self.terms: tuple[Term, ...] = _terms(self.years)
        self._warned: set[int] = set()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"ZoneCalendar({self.zone or 'unset'!r}, years={self.year_names()})"

    def year_names(self) -> list[str]:
        return [year_name(y) for y in sorted(self.years)]

    def covers(self, day: date) -> bool:
        return school_year_of(day) in self.years

    def is_school_day(self, day: date) -> bool:
        """Monday to Friday, not a public holiday, in no school holiday. An uncovered
        day has no school holidays (see the module's docstring): warned once."""
        if day.weekday() >= SATURDAY or day in self.public:
            return False
        if day in self._off:
            return False
        if school_year_of(day) not in self.years:
            self.warn_uncovered(day)
        return True

    def warn_uncovered(self, day: date) -> bool:
        """Log, once per school year, that `day`'s year is not covered. True when it
        is not (whether logged now or before)."""
        first_year = school_year_of(day)
        if first_year in self.years:
            return False
        with self._lock:
            if first_year in self._warned:
                return True
            self._warned.add(first_year)
        log.warning(uncovered_message(self.zone, first_year, day))
        return True


def uncovered_message(zone: str, first_year: int, day: date) -> str:
    consequence = (
        "the silence rules count every Monday to Friday that is not a public holiday as "
        "a school day, school holidays included, and the forecast has no terms there"
    )
    if zone == UNSET_ZONE:
        return (
            f"school calendar: some schools have no holiday zone (on {day.isoformat()}): "
            f"{consequence}; set `zone` for each school in the school registry, or "
            "`calendar_zone` for all (docs/alert-routing.md)"
        )
    return (
        f"school calendar: holiday zone {zone} has no calendar for school year "
        f"{year_name(first_year)} (on {day.isoformat()}): {consequence}; import the "
        "Ministry's calendar with `lordi calendar import FILE --out PATH`, set "
        "[alerts] calendar_file = PATH and restart the collector (docs/alerts.md, "
        '"School calendar")'
    )


def _terms(years: Mapping[int, SchoolYear]) -> tuple[Term, ...]:
    terms: list[Term] = []
    for first_year in sorted(years):
        year = years[first_year]
        breaks = [h for h in year.holidays if h.days >= TERM_BREAK_DAYS]
        before = years.get(first_year - 1)
        previous = [h for h in before.holidays if h.days >= TERM_BREAK_DAYS] if before else []
        start = previous[-1].end + ONE_DAY if previous else year_span(first_year).start
        label = "rentrée"
        for holiday in breaks:
            end = holiday.start - ONE_DAY
            if end >= start:
                n = sum(1 for t in terms if t.code.startswith(year.code + " ")) + 1
                name = f"{year.name} P{n} ({label}-{short_name(holiday.name)})"
                terms.append(Term(name, start, end, f"{year.code} T{n}"))
            start, label = holiday.end + ONE_DAY, short_name(holiday.name)
    return tuple(terms)


class Calendar:
    """Every zone's calendar, and each school's zone (from the school registry).

    `zone_of(uai)`: the school's zone (None: no zone); `zones_in_use()`: the zones of
    the registry's schools. Both are read at each call, so a registry reloaded by the
    collector is followed."""

    def __init__(
        self,
        zones: Mapping[str, ZoneCalendar],
        unset: ZoneCalendar,
        zone_of: Callable[[str], str | None] | None = None,
        zones_in_use: Callable[[], Collection[str | None]] | None = None,
        sources: Sequence[str] = (),
    ) -> None:
        self.zones = dict(zones)
        self.unset = unset
        self._zone_of = zone_of or (lambda _uai: None)
        self._zones_in_use = zones_in_use or (lambda: ())
        self.sources = tuple(sources)

    def bound(
        self,
        zone_of: Callable[[str], str | None],
        zones_in_use: Callable[[], Collection[str | None]],
    ) -> Calendar:
        """The same data, with the schools' zones from a registry."""
        return Calendar(self.zones, self.unset, zone_of, zones_in_use, self.sources)

    def zone(self, name: str | None) -> ZoneCalendar:
        """A zone's calendar; a zone without data, or None, has no school year."""
        if not name:
            return self.unset
        found = self.zones.get(name)
        if found is None:  # a known zone the data does not hold: same public holidays
            found = self.zones[name] = ZoneCalendar(name, (), self.unset.public)
        return found

    def for_school(self, uai: str) -> ZoneCalendar:
        return self.zone(self._zone_of(uai))

    def terms_for(self, uai: str, today: date | None = None) -> Sequence[Term]:
        """The school's terms; with `today`, those of its school year and after (the
        forecast's: a crossing in a past term of the year counts there)."""
        terms = self.for_school(uai).terms
        if today is None:
            return terms
        start = year_span(school_year_of(today)).start
        return [t for t in terms if t.end >= start]

    def in_use(self) -> list[ZoneCalendar]:
        """The zones of the registry's schools (the unset zone if one has none)."""
        names = set(self._zones_in_use())
        return [self.zone(n) for n in sorted(names, key=lambda n: n or "")]

    def coverage(self, day: date) -> dict[str, bool]:
        """Zone in use ("" for schools without one) -> does the data cover `day`."""
        return {z.zone: z.covers(day) for z in self.in_use()}

    def warn_uncovered(self, day: date) -> list[str]:
        """Log each zone in use that does not cover `day` (once per zone and year);
        the zones not covered."""
        return [z.zone for z in self.in_use() if z.warn_uncovered(day)]


def is_school_day(day: date, calendar: SchoolDays) -> bool:
    return calendar.is_school_day(day)


def school_days_between(after: date, before: date, calendar: SchoolDays) -> int:
    """School days strictly after `after` and strictly before `before`: the full
    school days that went by between two moments (0 when `before <= after`)."""
    count = 0
    day = after + ONE_DAY
    while day < before:
        if calendar.is_school_day(day):
            count += 1
        day += ONE_DAY
    return count


def term_for(day: date, terms: Sequence[Term]) -> Term | None:
    """The term containing `day`, or the next one when `day` falls in a holiday gap
    (what breaks during a holiday is replaced in that holiday, before the next term).
    None when `day` is after the last term. `terms` sorted by start."""
    for term in terms:
        if day <= term.end:
            return term
    return None
