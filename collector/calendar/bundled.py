"""The school holidays bundled with the `vacances-scolaires-france` package.

The package (MIT licence, no dependencies, no network) ships the Ministry of
Education's calendar as one CSV file: for every day since 1 January 1990, whether
each of the zones A, B and C is on holiday, and the holiday's name. A holiday day
there is a day without class, so its runs of days are our periods as they are
(the first day is usually the Saturday classes end, the last the Sunday before they
resume). Corsica and the overseas zones are not in it: import them
(`lordi calendar import`).

Only the school years wholly inside the days the package holds are used (with
version 0.12.0: 1990-1991 to 2027-2028).
"""

from __future__ import annotations

import functools
from datetime import date
from importlib.metadata import PackageNotFoundError, version

from collector.calendar.years import Period, school_years
from collector.rules.calendar import DateRange, SchoolYear

PACKAGE = "vacances-scolaires-france"
PACKAGE_ZONES = ("A", "B", "C")


def source() -> str:
    try:
        return f"{PACKAGE} {version(PACKAGE)}"
    except PackageNotFoundError:
        return PACKAGE


@functools.cache
def bundled_years() -> dict[str, dict[int, SchoolYear]]:
    """Zone -> first year -> school year, from the package's data."""
    from vacances_scolaires_france import SchoolHolidayDates  # noqa: PLC0415

    data = SchoolHolidayDates()
    held = DateRange(date(data.min_year, 1, 1), date(data.max_year, 12, 31))
    periods: list[Period] = []
    for zone in PACKAGE_ZONES:
        days: list[tuple[date, str]] = []
        for year in range(data.min_year, data.max_year + 1):
            found = data.holidays_for_year_and_zone(year, zone)
            days += [(day, str(row["nom_vacances"])) for day, row in found.items()]
        periods += _runs(zone, sorted(days))
    return school_years(periods, source(), within=held)


def _runs(zone: str, days: list[tuple[date, str]]) -> list[Period]:
    """Consecutive days of one name -> one period."""
    runs: list[Period] = []
    for day, name in days:
        top = runs[-1] if runs else None
        if (
            top is not None
            and top.name == name
            and top.last is not None
            and ((day - top.last).days == 1)
        ):
            runs[-1] = Period(zone, name, top.first, day)
        else:
            runs.append(Period(zone, name, day, day))
    return runs
