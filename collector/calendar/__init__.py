"""The school calendar as data: holidays per zone and school year, public holidays.

Sources, the later winning for the same zone and school year:

1. the Ministry's calendar bundled with the `vacances-scolaires-france` package
   (zones A, B and C; collector/calendar/bundled.py);
2. the file `lordi calendar import` writes from a newer official export (CSV, JSON
   or iCalendar; any zone the Ministry publishes), named by `[alerts]
   calendar_file` (official.py, store.py);
3. public holidays, from the `holidays` package, are non-school days in every
   zone and year (zones.py).

The rules read the result through `collector.rules.calendar.Calendar`: each
school's zone comes from the school registry (`zone`, or the registry's
`calendar_zone`). What happens in a year or zone the data does not cover is in
collector/rules/calendar.py's docstring; the collector warns at start-up and shows
it in the `lordi_collector_calendar_covered` gauge.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Protocol

from collector.calendar.bundled import bundled_years
from collector.calendar.bundled import source as bundled_source
from collector.calendar.official import CalendarFileError
from collector.calendar.store import merged, read_calendar_file
from collector.calendar.zones import ZONES, PublicHolidays
from collector.rules.calendar import UNSET_ZONE, Calendar, ZoneCalendar

__all__ = ["CalendarFileError", "default_calendar", "load_calendar", "school_calendar"]

log = logging.getLogger(__name__)


class SchoolZones(Protocol):
    """What the school registry tells the calendar (collector.notify.registry)."""

    def zone_of(self, uai: str) -> str | None: ...

    def zones_in_use(self) -> set[str | None]: ...


def load_calendar(calendar_file: Path | None = None, *, bundled: bool = True) -> Calendar:
    """Every zone's calendar from the bundled data (unless `bundled` is false) and the
    imported file, not yet bound to a registry (`Calendar.bound`)."""
    years = {z: dict(by_year) for z, by_year in bundled_years().items()} if bundled else {}
    sources = [bundled_source()] if bundled else []
    if calendar_file is not None:
        years = merged(years, read_calendar_file(calendar_file))
        sources.append(str(calendar_file))
    zones = {
        zone: ZoneCalendar(zone, years.get(zone, {}).values(), PublicHolidays(zone))
        for zone in ZONES
    }
    return Calendar(zones, ZoneCalendar(UNSET_ZONE, (), PublicHolidays(None)), sources=sources)


@functools.cache
def default_calendar() -> Calendar:
    """The bundled data alone, no school zones (tests, tools without a registry)."""
    return load_calendar()


def school_calendar(
    calendar_file: Path | None, registry: Callable[[], SchoolZones], today: date
) -> Calendar:
    """The collector's calendar: loaded (`CalendarFileError` for a bad file), each
    school's zone read from the registry in force at each use (`registry()`: a reload
    is followed). Logs its sources, and a WARNING for each zone in use whose school
    year of `today` the data does not cover."""
    calendar = load_calendar(calendar_file).bound(
        lambda uai: registry().zone_of(uai), lambda: registry().zones_in_use()
    )
    zones = ", ".join(
        f"{z.zone or '(none)'}: {_years(z.year_names())}" for z in calendar.in_use()
    )
    log.info("school calendar from %s; zones in use: %s", " + ".join(calendar.sources), zones)
    calendar.warn_uncovered(today)
    return calendar


def _years(names: list[str]) -> str:
    if not names:
        return "no school year"
    return names[0] if len(names) == 1 else f"{names[0]} to {names[-1]} ({len(names)} years)"
