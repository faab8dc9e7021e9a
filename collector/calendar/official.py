"""The Ministry of Education's calendar as published, read into holiday periods.

Formats (recognised from the content):

- **CSV** and **JSON** exports of the open-data set "fr-en-calendrier-scolaire"
  (data.education.gouv.fr): one row per holiday and académie, fields `description`,
  `population`, `start_date`, `end_date`, `location`, `zones`, `annee_scolaire` (the
  CSV separator is ';'; the column titles of the "labels" export, "Date de début",
  "Date de fin", "Académies", "Zones"..., are read too). JSON: a list of these
  objects, the API's `{"results": [...]}`, or records holding them under `fields`.
- **iCalendar** (.ics) as published on education.gouv.fr / data.gouv.fr: one event
  per holiday, or per piece of a holiday shared by several zones; the zones are in
  LOCATION or after " - " in SUMMARY ("Vacances d'Hiver - Zones A/B").

Dates, as read in these files (and what a period of ours is: its first and last day
without class):

- CSV/JSON `start_date` is the day classes end, after the last class ("fin des
  cours"), as an instant at midnight Paris time (`2025-10-17T22:00:00+00:00` is
  18 October in Paris: convert, never cut the text). It is a Saturday for every
  holiday of recent years: the holiday's first day is then that day (a Saturday
  is never a school day here). A start on Monday to Friday had classes that day:
  the first day is the next one. `end_date` is the day classes resume ("reprise
  des cours"): the last day is the day before. A row whose end is missing or not
  after its start is a marker: "Début des Vacances d'Été" (the summer of the latest
  year, end not published) opens a holiday without end (collector/calendar/years.py);
  another (e.g. "Lundi de Pentecôte - Corse") is that one day.
- iCalendar all-day events: DTSTART is the first day without class, DTEND (not
  included, as in every iCalendar file) the day classes resume; zero-length events
  as above.

Rows left out, each counted in the notes the import prints: teachers' rows
(population "Enseignants", or an event naming them), other populations than pupils
("-", "Élèves"), "Rentrée ..." markers (not holidays), zones not recognised. When
académies of one zone give different dates for one holiday, the union is used and
a note says so. Any malformed value stops the import with the file, the line (or
record), the field and the value.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from collector.calendar.years import Period
from collector.calendar.zones import key, known_zones, parse_zones
from collector.rules.calendar import ONE_DAY, SATURDAY, school_year_of, year_name

PARIS = ZoneInfo("Europe/Paris")

# Normalised column title -> field.
COLUMNS = {
    "description": "description",
    "population": "population",
    "start date": "start_date",
    "date de debut": "start_date",
    "end date": "end_date",
    "date de fin": "end_date",
    "location": "location",
    "academies": "location",
    "academie": "location",
    "zones": "zones",
    "zone": "zones",
    "annee scolaire": "annee_scolaire",
}
REQUIRED = ("description", "start_date", "end_date", "zones")
PUPILS = ("", "eleves")  # population keys kept ("-" normalises to "")


class CalendarFileError(ValueError):
    """A calendar file that cannot be read; the message names where and what."""


@dataclass
class Parsed:
    fmt: str
    periods: list[Period] = field(default_factory=list)
    rows: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    # (zone, year, holiday) -> (first, last) -> académies giving those dates
    variants: dict[tuple[str, int, str], dict[tuple[date, date | None], set[str]]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(set))
    )

    def notes(self) -> list[str]:
        out = [f"{n} {why}: left out" for why, n in sorted(self.skipped.items())]
        for (zone, year, name), dates in sorted(self.variants.items()):
            if len(dates) > 1:
                told = "; ".join(
                    f"{', '.join(sorted(where)) or '?'}: {first}..{last or 'open'}"
                    for (first, last), where in sorted(dates.items(), key=lambda kv: str(kv[0]))
                )
                out.append(
                    f"zone {zone} {year_name(year)} {name!r}: académies differ ({told}); "
                    "every day of them counts as holiday"
                )
        return out


def parse_file(path: Path, default_zone: str | None = None) -> Parsed:
    """Read an official calendar file (CSV, JSON or iCalendar). `default_zone`: the
    zone of rows or events that name none (a file made for one zone)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise CalendarFileError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CalendarFileError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    head = text.lstrip()
    if head.startswith("BEGIN:VCALENDAR"):
        return _ics(text, str(path), default_zone)
    if head.startswith(("[", "{")):
        return _json(text, str(path), default_zone)
    return _csv(text, str(path), default_zone)


# --- CSV and JSON ---------------------------------------------------------------------


def _csv(text: str, source: str, default_zone: str | None) -> Parsed:
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        raise CalendarFileError(f"{source}: empty file")
    delimiter = ";" if ";" in lines[0] else ","
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    header = next(reader)
    columns = {i: COLUMNS[k] for i, title in enumerate(header) if (k := key(title)) in COLUMNS}
    missing = [f for f in REQUIRED if f not in columns.values()]
    if missing:
        raise CalendarFileError(
            f"{source}: line 1: missing column(s) {', '.join(missing)} (the header is "
            f"{delimiter.join(header)!r}; expected the fr-en-calendrier-scolaire export: "
            f"{';'.join(REQUIRED)}...)"
        )
    parsed = Parsed("CSV")
    for row in reader:
        if not any(cell.strip() for cell in row):
            continue
        fields = {name: row[i] if i < len(row) else "" for i, name in columns.items()}
        _official_row(parsed, fields, f"{source}: line {reader.line_num}", default_zone)
    return parsed


def _json(text: str, source: str, default_zone: str | None) -> Parsed:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CalendarFileError(
            f"{source}: line {exc.lineno}: not valid JSON ({exc.msg})"
        ) from None
    if isinstance(data, dict):
        data = data.get("results", data.get("records"))
    if not isinstance(data, list):
        raise CalendarFileError(
            f'{source}: expected a list of records (or {{"results": [...]}}), got '
            f"{type(data).__name__}"
        )
    parsed = Parsed("JSON")
    for index, record in enumerate(data, 1):
        where = f"{source}: record {index}"
        item = record["fields"] if isinstance(record, dict) and "fields" in record else record
        if not isinstance(item, dict):
            raise CalendarFileError(f"{where}: not an object (got {item!r:.60})")
        fields = {
            COLUMNS[key(name)]: "" if value is None else str(value)
            for name, value in item.items()
            if key(name) in COLUMNS
        }
        missing = [f for f in REQUIRED if f not in fields]
        if missing:
            raise CalendarFileError(f"{where}: missing field(s) {', '.join(missing)}")
        _official_row(parsed, fields, where, default_zone)
    return parsed


def _official_row(
    parsed: Parsed, fields: Mapping[str, str], where: str, default_zone: str | None
) -> None:
    parsed.rows += 1
    name = fields["description"].strip()
    if not name:
        raise CalendarFileError(f"{where}: description: empty")
    population = key(fields.get("population", ""))
    if population not in PUPILS:
        parsed.skipped[f"row(s) for population {fields.get('population', '').strip()!r}"] += 1
        return
    if key(name).startswith("rentree"):
        parsed.skipped["'Rentrée' row(s) (not holidays)"] += 1
        return
    start = _day(fields["start_date"], where, "start_date")
    if start is None:
        raise CalendarFileError(f"{where}: start_date: empty")
    end = _day(fields["end_date"], where, "end_date")
    first, last = _official_days(name, start, end)
    zones = _zones(parsed, fields["zones"], default_zone, where)
    location = fields.get("location", "").strip()
    for zone in zones:
        parsed.periods.append(Period(zone, name, first, last))
        variant = parsed.variants[(zone, school_year_of(first), key(name))]
        variant[(first, last)].add(location)


def _official_days(name: str, start: date, end: date | None) -> tuple[date, date | None]:
    """CSV/JSON dates -> (first, last) days without class (the module's docstring)."""
    first = start if start.weekday() >= SATURDAY else start + ONE_DAY
    if end is None or end <= start:
        if key(name).startswith("debut"):
            return first, None
        return start, start
    last = end - ONE_DAY
    return (first, last) if last >= first else (start, start)


def _day(value: str, where: str, name: str) -> date | None:
    """A date, or the Paris date of an instant; None when empty."""
    text = value.strip()
    if not text:
        return None
    try:
        if len(text) == 10:
            return date.fromisoformat(text)
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise CalendarFileError(
            f"{where}: {name}: not a date or date-time (got {text!r})"
        ) from None
    return moment.astimezone(PARIS).date() if moment.tzinfo else moment.date()


def _zones(parsed: Parsed, text: str, default_zone: str | None, where: str) -> list[str]:
    zones, unknown = parse_zones(text)
    if not text.strip() and default_zone:
        return [default_zone]
    if unknown:
        parsed.skipped[f"row(s) for zone(s) not recognised ({', '.join(unknown)}; known: "
                       f"{known_zones()})"] += 1  # fmt: skip
    return zones


# --- iCalendar ------------------------------------------------------------------------


def _ics(text: str, source: str, default_zone: str | None) -> Parsed:
    parsed = Parsed("iCalendar")
    event: dict[str, tuple[int, str, str]] | None = None
    begin = 0
    for number, line in _unfolded(text):
        name_params, sep, value = line.partition(":")
        if not sep:
            continue
        prop = name_params.split(";")[0].strip().upper()
        if prop == "BEGIN" and value.strip().upper() == "VEVENT":
            event, begin = {}, number
        elif prop == "END" and value.strip().upper() == "VEVENT" and event is not None:
            _event(parsed, event, f"{source}: line {begin}", default_zone, source)
            event = None
        elif event is not None:
            event[prop] = (number, name_params, _unescape(value))
    return parsed


def _unfolded(text: str) -> Iterable[tuple[int, str]]:
    """(line number, logical line): continuation lines (starting with a space or a
    tab) are joined to the line before."""
    current: list[str] = []
    start = 0
    for number, line in enumerate(text.splitlines(), 1):
        if line[:1] in (" ", "\t") and current:
            current.append(line[1:])
            continue
        if current:
            yield start, "".join(current)
        current, start = [line.strip()], number
    if current:
        yield start, "".join(current)


def _unescape(value: str) -> str:
    out, i = [], 0
    while i < len(value):
        if value[i] == "\\" and i + 1 < len(value):
            nxt = value[i + 1]
            out.append(" " if nxt in "nN" else nxt)
            i += 2
        else:
            out.append(value[i])
            i += 1
    return "".join(out).strip()


def _event(
    parsed: Parsed,
    event: dict[str, tuple[int, str, str]],
    where: str,
    default_zone: str | None,
    source: str,
) -> None:
    parsed.rows += 1
    summary = event.get("SUMMARY", (0, "", ""))[2] or event.get("DESCRIPTION", (0, "", ""))[2]
    name = summary.split(" - ")[0].strip()
    if not name:
        raise CalendarFileError(f"{where}: SUMMARY: empty")
    if "enseignants" in key(summary):
        parsed.skipped["teachers' event(s)"] += 1
        return
    if key(name).startswith("rentree"):
        parsed.skipped["'Rentrée' event(s) (not holidays)"] += 1
        return
    if "DTSTART" not in event:
        raise CalendarFileError(f"{where}: event {summary!r} has no DTSTART")
    start = _ics_day(event["DTSTART"], source, "DTSTART")
    end = _ics_day(event["DTEND"], source, "DTEND") if "DTEND" in event else None
    if end is None or end <= start:
        first, last = start, (None if key(name).startswith("debut") else start)
    else:
        first, last = start, end - timedelta(days=1)
    zones = _ics_zones(parsed, event, summary, default_zone)
    for zone in zones:
        parsed.periods.append(Period(zone, name, first, last))


def _ics_day(prop: tuple[int, str, str], source: str, name: str) -> date:
    number, _params, value = prop
    text = value.strip()
    try:
        if len(text) == 8:
            return datetime.strptime(text, "%Y%m%d").date()
        moment = datetime.strptime(text.rstrip("Z"), "%Y%m%dT%H%M%S")
    except ValueError:
        raise CalendarFileError(
            f"{source}: line {number}: {name}: not an iCalendar date (got {text!r})"
        ) from None
    if text.endswith("Z"):
        return moment.replace(tzinfo=ZoneInfo("UTC")).astimezone(PARIS).date()
    return moment.date()


def _ics_zones(
    parsed: Parsed, event: dict[str, tuple[int, str, str]], summary: str, default: str | None
) -> list[str]:
    """The zones in LOCATION, else after " - " in SUMMARY, else `default`."""
    candidates = [event.get("LOCATION", (0, "", ""))[2]]
    if " - " in summary:
        candidates.append(summary.split(" - ", 1)[1])
    unknown: list[str] = []
    for text in candidates:
        zones, not_zones = parse_zones(text)
        if zones and not not_zones:
            return zones
        unknown += not_zones
    if default:
        return [default]
    parsed.skipped[
        f"event(s) without a recognised zone ({', '.join(unknown) or 'none named'}; give "
        "--zone for a file of one zone)"
    ] += 1
    return []
