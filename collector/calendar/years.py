"""From holiday periods (any source) to each zone's school years.

A period runs from its first day without class to its last one; `last` None is an
open end (the Ministry's "Début des Vacances d'Été" of the latest year, whose end is
not published yet): it runs to the end of its school year (31 August, see
collector.rules.calendar). Periods of one zone that overlap or touch are merged (the
official iCalendar file cuts a holiday into pieces where zones start or end it on
different days; the row of each académie repeats its zone's dates); the merged
holiday keeps the name of its earliest piece. Each holiday belongs to the school year
it starts in.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from collector.rules.calendar import (
    ONE_DAY,
    DateRange,
    SchoolYear,
    school_year_of,
    year_span,
)


@dataclass(frozen=True, slots=True)
class Period:
    zone: str
    name: str
    first: date
    last: date | None  # None: open end


def merge(ranges: Iterable[DateRange]) -> list[DateRange]:
    merged: list[DateRange] = []
    for r in sorted(ranges, key=lambda r: (r.start, r.end)):
        if merged and r.start <= merged[-1].end + ONE_DAY:
            top = merged[-1]
            if r.end > top.end:
                merged[-1] = DateRange(top.start, r.end, top.name)
        else:
            merged.append(r)
    return merged


def school_years(
    periods: Iterable[Period], source: str, within: DateRange | None = None
) -> dict[str, dict[int, SchoolYear]]:
    """Zone -> first year -> its school year. `within`: the days the source holds;
    only the school years entirely inside are kept (None: every year with a holiday)."""
    per_zone: dict[str, list[DateRange]] = defaultdict(list)
    for p in periods:
        last = p.last if p.last is not None else year_span(school_year_of(p.first)).end
        per_zone[p.zone].append(DateRange(p.first, max(last, p.first), p.name))
    out: dict[str, dict[int, SchoolYear]] = {}
    for zone, ranges in per_zone.items():
        by_year: dict[int, list[DateRange]] = defaultdict(list)
        for r in merge(ranges):
            by_year[school_year_of(r.start)].append(r)
        years = {
            y: SchoolYear(y, tuple(holidays), source)
            for y, holidays in sorted(by_year.items())
            if within is None
            or (within.start <= year_span(y).start and year_span(y).end <= within.end)
        }
        if years:
            out[zone] = years
    return out
