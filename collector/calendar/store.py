"""The imported calendar file: what `lordi calendar import` writes and the collector
reads (`[alerts] calendar_file`).

JSON, one document:

    {"format": "lordi-calendar/1",
     "zones": {"A": {"2025-2026": {
         "source": "fr-en-calendrier-scolaire.csv, imported 2026-12-03",
         "holidays": [{"name": "Vacances de la Toussaint",
                       "first": "2025-10-18", "last": "2025-11-02"}, ...]}}}}

`first` and `last` are the first and last days without class. A school year of a
zone here replaces the same year of the bundled data; importing again replaces the
years the new file holds and keeps the others.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any

from collector.calendar.official import CalendarFileError
from collector.calendar.zones import canonical_zone, known_zones
from collector.rules.calendar import DateRange, SchoolYear, year_name

FORMAT = "lordi-calendar/1"

Years = dict[str, dict[int, SchoolYear]]  # zone -> first year -> school year


def read_calendar_file(path: Path) -> Years:
    """The imported years; `CalendarFileError` naming the file, key and value."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CalendarFileError(f"{path}: cannot read ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise CalendarFileError(f"{path}: not UTF-8 text") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CalendarFileError(f"{path}: line {exc.lineno}: not valid JSON ({exc.msg})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        got = doc.get("format") if isinstance(doc, dict) else type(doc).__name__
        raise CalendarFileError(
            f"{path}: format: expected {FORMAT!r} (got {got!r}); an official export is "
            "read by `lordi calendar import FILE --out PATH`, which writes this file"
        )
    zones = _mapping(doc.get("zones"), f"{path}: zones")
    out: Years = {}
    for zone_name, years in zones.items():
        where = f"{path}: zones.{zone_name}"
        zone = canonical_zone(zone_name)
        if zone is None or zone != zone_name:
            raise CalendarFileError(
                f"{where}: not a holiday zone (got {zone_name!r}; known: {known_zones()})"
            )
        for name, year in _mapping(years, where).items():
            first_year = _year(name, f"{where}")
            out.setdefault(zone, {})[first_year] = _school_year(
                first_year, _mapping(year, f"{where}.{name}"), f"{where}.{name}"
            )
    return out


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise CalendarFileError(f"{where}: expected an object (got {value!r:.60})")
    return value


def _year(name: str, where: str) -> int:
    parts = name.split("-")
    if len(parts) == 2 and all(p.isdigit() and len(p) == 4 for p in parts):
        first, second = int(parts[0]), int(parts[1])
        if second == first + 1:
            return first
    raise CalendarFileError(f"{where}: not a school year like 2026-2027 (got {name!r})")


def _school_year(first_year: int, doc: Mapping[str, Any], where: str) -> SchoolYear:
    holidays = doc.get("holidays")
    if not isinstance(holidays, list):
        raise CalendarFileError(f"{where}.holidays: expected a list (got {holidays!r:.60})")
    ranges: list[DateRange] = []
    for i, entry in enumerate(holidays):
        at = f"{where}.holidays[{i}]"
        item = _mapping(entry, at)
        name = item.get("name", "")
        if not isinstance(name, str):
            raise CalendarFileError(f"{at}.name: expected text (got {name!r:.60})")
        first, last = _date(item.get("first"), f"{at}.first"), _date(item.get("last"), f"{at}.last")
        if last < first:
            raise CalendarFileError(f"{at}: last ({last}) before first ({first})")
        ranges.append(DateRange(first, last, name))
    source = doc.get("source", "")
    return SchoolYear(first_year, tuple(sorted(ranges, key=lambda r: r.start)), str(source))


def _date(value: Any, where: str) -> date:
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise CalendarFileError(f"{where}: not a date YYYY-MM-DD (got {value!r})") from None


def to_document(years: Years) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "zones": {
            zone: {
                year_name(y): {
                    "source": school_year.source,
                    "holidays": [
                        {"name": h.name, "first": h.start.isoformat(), "last": h.end.isoformat()}
                        for h in school_year.holidays
                    ],
                }
                for y, school_year in sorted(by_year.items())
            }
            for zone, by_year in sorted(years.items())
        },
    }


def write_calendar_file(path: Path, years: Years) -> None:
    """Write `years` atomically (a collector starting meanwhile reads the old or the
    new file, whole)."""
    text = json.dumps(to_document(years), ensure_ascii=False, indent=1) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def merged(old: Years, new: Years) -> Years:
    """`old` with every school year of `new` put in (replacing the same zone and year)."""
    out = {zone: dict(by_year) for zone, by_year in old.items()}
    for zone, by_year in new.items():
        out.setdefault(zone, {}).update(by_year)
    return out
