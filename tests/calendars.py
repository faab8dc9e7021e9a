"""School calendars for tests: the bundled data (the Ministry's, via the
vacances-scolaires-france package), zone C (the sample registry's Occitanie schools)."""

from __future__ import annotations

from collector.calendar import default_calendar
from collector.rules.calendar import Calendar, Term, ZoneCalendar


def zone(name: str = "C") -> ZoneCalendar:
    return default_calendar().zone(name)


def every_school_in(name: str = "C") -> Calendar:
    """The bundled calendar with every school in zone `name`."""
    return default_calendar().bound(lambda _uai: name, lambda: {name})


def terms_of(first_year: int, name: str = "C") -> tuple[Term, ...]:
    """The terms of one school year, e.g. 2026 -> "2026-27 T1" .. "T5"."""
    code = f"{first_year}-{(first_year + 1) % 100:02d} "
    return tuple(t for t in zone(name).terms if t.code.startswith(code))


ZONE_C = zone("C")
TERMS_2026_27 = terms_of(2026)
ZONE_C_SCHOOLS = every_school_in("C")
