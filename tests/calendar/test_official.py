"""Reading the Ministry's calendar files (collector/calendar/official.py): the three
formats, the date conventions, rows left out, and errors naming where and what."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from collector.calendar.official import CalendarFileError, parse_file
from collector.calendar.years import school_years

HEADER = "description;population;start_date;end_date;location;zones;annee_scolaire"


def _write(tmp_path: Path, text: str, name: str = "export.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _holidays(path: Path, zone: str | None = None) -> dict[str, list[tuple[date, date, str]]]:
    years = school_years(parse_file(path, zone).periods, "test")
    return {
        f"{z} {y.name}": [(h.start, h.end, h.name) for h in y.holidays]
        for z, by_year in sorted(years.items())
        for y in by_year.values()
    }


def test_csv_instants_are_paris_dates_start_is_the_last_class_day_end_the_return(
    tmp_path: Path,
) -> None:
    rows = [
        HEADER,
        # Saturday 18 Oct (summer time, UTC+2) to Monday 3 Nov (winter time, UTC+1).
        "Vacances de la Toussaint;-;2025-10-17T22:00:00+00:00;2025-11-02T23:00:00+00:00;Lyon;Zone A;2025-2026",
        # The same, another académie: one holiday.
        "Vacances de la Toussaint;Élèves;2025-10-17T22:00:00+00:00;2025-11-02T23:00:00+00:00;Dijon;Zone A;2025-2026",
        # Teachers return a day earlier: left out.
        "Vacances de la Toussaint;Enseignants;2025-10-16T22:00:00+00:00;2025-11-01T23:00:00+00:00;Lyon;Zone A;2025-2026",
        # Classes end on a Wednesday evening: Thursday is the first day off.
        "Pont de l'Ascension;-;2026-05-12T22:00:00+00:00;2026-05-17T22:00:00+00:00;Lyon;Zone A;2025-2026",
        # The latest summer, end not published: open, to 31 August.
        "Début des Vacances d'Été;-;2026-07-03T22:00:00+00:00;2026-07-03T22:00:00+00:00;Lyon;Zone A;2025-2026",
        # A one-day marker.
        "Lundi de Pentecôte;-;2026-05-24T22:00:00+00:00;2026-05-24T22:00:00+00:00;Corse;Corse;2025-2026",
        "Rentrée scolaire des élèves;-;2025-08-31T22:00:00+00:00;;Lyon;Zone A;2025-2026",
        "Vacances d'Hiver;-;2026-02-06T23:00:00+00:00;2026-02-22T23:00:00+00:00;Atlantis;Zone Z;2025-2026",
    ]
    path = _write(tmp_path, "\n".join(rows) + "\n")
    assert _holidays(path) == {
        "A 2025-2026": [
            (date(2025, 10, 18), date(2025, 11, 2), "Vacances de la Toussaint"),
            (date(2026, 5, 14), date(2026, 5, 17), "Pont de l'Ascension"),
            (date(2026, 7, 4), date(2026, 8, 31), "Début des Vacances d'Été"),
        ],
        "Corse 2025-2026": [(date(2026, 5, 25), date(2026, 5, 25), "Lundi de Pentecôte")],
    }
    notes = parse_file(path).notes()
    assert "1 row(s) for population 'Enseignants': left out" in notes
    assert "1 'Rentrée' row(s) (not holidays): left out" in notes
    assert any(
        n.startswith("1 row(s) for zone(s) not recognised (Zone Z; known: A, B, C") for n in notes
    )


def test_the_labels_export_and_comma_separated_files_are_read(tmp_path: Path) -> None:
    text = (
        "Description,Population,Date de début,Date de fin,Académies,Zones,annee_scolaire\n"
        "Vacances de Noël,-,2025-12-20,2026-01-05,Paris,Zone C,2025-2026\n"
    )
    assert _holidays(_write(tmp_path, text)) == {
        "C 2025-2026": [(date(2025, 12, 20), date(2026, 1, 4), "Vacances de Noël")]
    }


def test_json_exports_api_results_and_records(tmp_path: Path) -> None:
    row = {
        "description": "Vacances d'Hiver", "population": "-",
        "start_date": "2026-02-13T23:00:00+00:00", "end_date": "2026-03-01T23:00:00+00:00",
        "location": "Rennes", "zones": "Zone B", "annee_scolaire": "2025-2026",
    }  # fmt: skip
    expected = {"B 2025-2026": [(date(2026, 2, 14), date(2026, 3, 1), "Vacances d'Hiver")]}
    for doc in ([row], {"results": [row]}, [{"fields": row, "recordid": "x"}]):
        assert _holidays(_write(tmp_path, json.dumps(doc), "export.json")) == expected


def test_academies_that_disagree_are_told(tmp_path: Path) -> None:
    rows = [
        HEADER,
        "Vacances d'Hiver;-;2026-02-06T23:00:00+00:00;2026-02-22T23:00:00+00:00;Lyon;Zone A;2025-2026",
        "Vacances d'Hiver;-;2026-02-13T23:00:00+00:00;2026-03-01T23:00:00+00:00;Dijon;Zone A;2025-2026",
    ]
    path = _write(tmp_path, "\n".join(rows))
    assert _holidays(path)["A 2025-2026"] == [
        (date(2026, 2, 7), date(2026, 3, 1), "Vacances d'Hiver")
    ]
    [note] = parse_file(path).notes()
    assert note.startswith("zone A 2025-2026 'vacances d hiver': académies differ (")
    assert "Dijon: 2026-02-14..2026-03-01" in note and "Lyon: 2026-02-07..2026-02-22" in note


ICS = """BEGIN:VCALENDAR
VERSION:2.0
BEGIN:VEVENT
DTSTART;VALUE=DATE:20260207
DTEND;VALUE=DATE:20260214
SUMMARY:Vacances d'Hiver - Zone A
LOCATION:Zone A
END:VEVENT
BEGIN:VEVENT
DTSTART;VALUE=DATE:20260214
DTEND;VALUE=DATE:20260221
SUMMARY:Vacances d'Hiver - Zones A/B
LOCATION:Zones A/B
END:VEVENT
BEGIN:VEVENT
DTSTART;VALUE=DATE:20260221
DTEND;VALUE=DATE:20260223
SUMMARY:Vacances d'Hiver - Zones A/B/C - Corse
LOCATION:Zones A/B/C
  - Corse
END:VEVENT
BEGIN:VEVENT
DTSTART;VALUE=DATE:20260704
DTEND;VALUE=DATE:20260704
SUMMARY:Début des Vacances d'Été - Zones A/B/C
LOCATION:Zones A/B/C
END:VEVENT
BEGIN:VEVENT
DTSTART;VALUE=DATE:20250829
DTEND;VALUE=DATE:20250901
SUMMARY:Vacances d'Été(prérentrée Enseignants) - Zones A/B/C
END:VEVENT
BEGIN:VEVENT
DTSTART;VALUE=DATE:20081025
DTEND;VALUE=DATE:20081106
LOCATION:Aix-Marseille\\, Amiens
SUMMARY:Vacances de la Toussaint - Zones A B C
END:VEVENT
END:VCALENDAR
"""


def test_icalendar_pieces_are_joined_per_zone(tmp_path: Path) -> None:
    path = _write(tmp_path, ICS, "Zone-A-B-C-Corse.ics")
    got = _holidays(path)
    assert got["A 2025-2026"] == [
        (date(2026, 2, 7), date(2026, 2, 22), "Vacances d'Hiver"),  # three pieces
        (date(2026, 7, 4), date(2026, 8, 31), "Début des Vacances d'Été"),
    ]
    assert got["B 2025-2026"][0] == (date(2026, 2, 14), date(2026, 2, 22), "Vacances d'Hiver")
    assert got["Corse 2025-2026"] == [(date(2026, 2, 21), date(2026, 2, 22), "Vacances d'Hiver")]
    # LOCATION lists académies: the zones are taken from SUMMARY.
    assert got["C 2008-2009"] == [
        (date(2008, 10, 25), date(2008, 11, 5), "Vacances de la Toussaint")
    ]
    assert parse_file(path).notes() == ["1 teachers' event(s): left out"]


def test_an_event_without_zone_takes_the_zone_given(tmp_path: Path) -> None:
    ics = ICS.replace("LOCATION:Zone A\n", "").replace(
        "SUMMARY:Vacances d'Hiver - Zone A\n", "SUMMARY:Vacances d'Hiver\n"
    )
    path = _write(tmp_path, ics, "corse.ics")
    assert "A 2025-2026" in _holidays(path)  # from the other events
    parsed = parse_file(path)
    assert any("without a recognised zone" in n for n in parsed.notes())
    assert _holidays(path, "Guadeloupe")["Guadeloupe 2025-2026"] == [
        (date(2026, 2, 7), date(2026, 2, 13), "Vacances d'Hiver")
    ]


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        (
            "bad-date.csv",
            f"{HEADER}\nVacances de Noël;-;2025-12-19T23:00:00+00:00;2026-13-01;Paris;Zone C;2025-2026\n",
            "bad-date.csv: line 2: end_date: not a date or date-time (got '2026-13-01')",
        ),
        (
            "no-start.csv",
            f"{HEADER}\nVacances de Noël;-;;2026-01-05;Paris;Zone C;2025-2026\n",
            "no-start.csv: line 2: start_date: empty",
        ),
        (
            "columns.csv",
            "description;population;debut;fin;location;zones\nx;-;a;b;c;d\n",
            "columns.csv: line 1: missing column(s) start_date, end_date (the header is "
            "'description;population;debut;fin;location;zones'",
        ),
        (
            "broken.json",
            '[{"description": "x",\n "zones": }]',
            "broken.json: line 2: not valid JSON",
        ),
        (
            "fields.json",
            json.dumps([{"description": "Vacances de Noël", "zones": "Zone C"}]),
            "fields.json: record 1: missing field(s) start_date, end_date",
        ),
        (
            "event.ics",
            "BEGIN:VCALENDAR\nBEGIN:VEVENT\nSUMMARY:Vacances de Noël - Zone C\nDTSTART;VALUE=DATE:2025-12-20\nEND:VEVENT\nEND:VCALENDAR\n",
            "event.ics: line 4: DTSTART: not an iCalendar date (got '2025-12-20')",
        ),
    ],
)
def test_errors_name_the_file_the_line_the_field_and_the_value(
    tmp_path: Path, name: str, text: str, message: str
) -> None:
    with pytest.raises(CalendarFileError) as err:
        parse_file(_write(tmp_path, text, name))
    assert message.startswith(f"{name}: ")
    assert str(err.value).startswith(f"{tmp_path / name}{message[len(name) :]}")
