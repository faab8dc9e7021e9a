"""`lordi calendar`: import the Ministry's school calendar, show what the rules use.

`lordi calendar import FILE [--out PATH] [--zone ZONE]` reads an official export
(data.education.gouv.fr "fr-en-calendrier-scolaire" as CSV or JSON, or the
iCalendar file of education.gouv.fr), checks it (a malformed value stops it with the
line, the field and the value) and writes the collector's calendar file: the school
years it holds replace the same zone and year of the file already at PATH, the
others are kept. The collector reads it at start-up (`[alerts] calendar_file`).

`lordi calendar show [--zone ZONE] [--year YEAR] [--file PATH]`: without a zone,
the school years each zone has; with one, a year's holidays, public holidays and
terms (docs/alerts.md, "School calendar").
"""

from __future__ import annotations

import argparse
import sys
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from collector.calendar import CalendarFileError, load_calendar
from collector.calendar.official import parse_file
from collector.calendar.store import Years, merged, read_calendar_file, write_calendar_file
from collector.calendar.years import school_years
from collector.calendar.zones import canonical_zone, known_zones
from collector.rules.calendar import SATURDAY, ZoneCalendar, school_year_of, year_name, year_span

DEFAULT_OUT = Path("/var/lib/lordi-collector/calendar.json")
PARIS = ZoneInfo("Europe/Paris")


def _today() -> date:
    return datetime.now(PARIS).date()


def _zone(text: str) -> str:
    zone = canonical_zone(text)
    if zone is None:
        raise argparse.ArgumentTypeError(f"not a holiday zone: {text!r} (known: {known_zones()})")
    return zone


def _year(text: str) -> int:
    """2026 or 2026-2027 -> 2026."""
    first, _, second = text.partition("-")
    if first.isdigit() and len(first) == 4 and (not second or second == str(int(first) + 1)):
        return int(first)
    raise argparse.ArgumentTypeError(f"not a school year: {text!r} (e.g. 2026 or 2026-2027)")


def cmd_import(args: argparse.Namespace) -> int:
    source = Path(args.file)
    out = Path(args.out)
    try:
        parsed = parse_file(source, args.zone)
        existing: Years = read_calendar_file(out) if out.exists() else {}
    except CalendarFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    label = f"{source.name}, imported {_today().isoformat()}"
    years = school_years(parsed.periods, label)
    print(f"{source}: {parsed.fmt}, {parsed.rows} row(s) or event(s)")
    for note in parsed.notes():
        print(f"  note: {note}")
    if not years:
        print(
            f"error: {source}: no holiday of a known zone ({known_zones()}); nothing written",
            file=sys.stderr,
        )
        return 1
    for zone, by_year in sorted(years.items()):
        for first_year, school_year in sorted(by_year.items()):
            had = first_year in existing.get(zone, {})
            replaced = " (replaces the one in the file)" if had else ""
            count = len(school_year.holidays)
            print(f"  zone {zone} {school_year.name}: {count} holiday(s){replaced}")
            for h in school_year.holidays:
                print(f"    {h.start} .. {h.end}  {h.name}")
    try:
        write_calendar_file(out, merged(existing, years))
    except OSError as exc:
        print(f"error: {out}: cannot write ({exc.strerror})", file=sys.stderr)
        return 2
    print(
        f'wrote {out}; the collector uses it with [alerts] calendar_file = "{out}" '
        "after a restart (systemctl restart lordi-collector)"
    )
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    try:
        calendar = load_calendar(Path(args.file) if args.file else None)
    except CalendarFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    today = _today()
    print(f"school calendar from {' + '.join(calendar.sources)}")
    if args.zone is None:
        for zone in calendar.zones.values():
            names = zone.year_names()
            held = f"{names[0]} to {names[-1]} ({len(names)} years)" if names else "no school year"
            now = "covered" if zone.covers(today) else "NOT covered"
            print(f"  zone {zone.zone}: {held}; today's school year {now}")
        return 0
    zone = calendar.zone(args.zone)
    first_year = args.year if args.year is not None else school_year_of(today)
    _show_year(zone, first_year)
    return 0 if first_year in zone.years else 1


def _show_year(zone: ZoneCalendar, first_year: int) -> None:
    span = year_span(first_year)
    school_year = zone.years.get(first_year)
    print(f"zone {zone.zone}, school year {year_name(first_year)} ({span.start} .. {span.end})")
    if school_year is None:
        print(
            "  not covered: every Monday to Friday but public holidays counts as a school "
            "day; import the Ministry's calendar with `lordi calendar import FILE`"
        )
    else:
        print(f"  source: {school_year.source}")
        print("  holidays (first .. last day without class):")
        for h in school_year.holidays:
            print(f"    {h.start} .. {h.end}  {h.name}")
    public = [d for d in _days(span.start, span.end) if d.weekday() < SATURDAY and d in zone.public]
    print("  public holidays, Monday to Friday: " + (", ".join(map(str, public)) or "none"))
    terms = [t for t in zone.terms if span.start <= t.end and t.start <= span.end]
    if terms:
        print("  terms (forecast series tags):")
        for t in terms:
            print(f"    {t.tag}  {t.start} .. {t.end}  {t.name}")
    days = sum(zone.is_school_day(d) for d in _days(span.start, span.end))
    print(f"  school days: {days}")


def _days(first: date, last: date) -> list[date]:
    return [date.fromordinal(n) for n in range(first.toordinal(), last.toordinal() + 1)]


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("calendar", help="the school calendar: import the Ministry's, show it")
    acts = p.add_subparsers(dest="action", required=True)
    i = acts.add_parser("import", help="check an official export and write the calendar file")
    i.add_argument("file", help="fr-en-calendrier-scolaire export (CSV, JSON) or .ics")
    i.add_argument("--out", default=str(DEFAULT_OUT), help=f"calendar file (default {DEFAULT_OUT})")
    i.add_argument("--zone", type=_zone, help="zone of the rows or events that name none")
    i.set_defaults(func=cmd_import)
    s = acts.add_parser("show", help="the school years per zone, or one zone's year")
    s.add_argument("--zone", type=_zone, help="A, B, C, Corse, Guadeloupe...")
    s.add_argument("--year", type=_year, help="school year, e.g. 2026 or 2026-2027 (default: now)")
    s.add_argument("--file", help="an imported calendar file (default: the bundled one only)")
    s.set_defaults(func=cmd_show)
