"""The calendar as the rules see it: the bundled Ministry data, terms derived from
holidays, public holidays, each school's zone from the registry, what happens in a
year or zone without data (one WARNING, the gauge), the imported file."""

from __future__ import annotations

import json
import logging
from datetime import date, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from collector.alerting import Alerting
from collector.alerts.store import AlertStore
from collector.calendar import default_calendar, load_calendar
from collector.calendar.official import CalendarFileError
from collector.calendar.store import read_calendar_file
from collector.cli import build_alerting
from collector.config import CollectorSettings, ConfigError, MetricsSettings
from collector.metrics import CollectorMetrics, _Figures
from collector.notify.errors import RegistryError
from collector.notify.registry import parse_registry
from collector.rules import RulesConfig
from collector.rules.silent import PARIS
from lordi.cli import main as lordi
from tests.calendars import ZONE_C

FIXTURE = Path(__file__).parent / "fixtures" / "fr-en-calendrier-scolaire-zone-a-2025-2026.csv"


def test_zone_c_2026_2027_is_the_ministry_s() -> None:
    """The dates issue #18 names: winter 6-21 February 2027, spring 3-18 April 2027."""
    year = ZONE_C.years[2026]
    assert [(h.start, h.end) for h in year.holidays] == [
        (date(2026, 10, 17), date(2026, 11, 1)),
        (date(2026, 12, 19), date(2027, 1, 3)),
        (date(2027, 2, 6), date(2027, 2, 21)),
        (date(2027, 4, 3), date(2027, 4, 18)),
        (date(2027, 5, 6), date(2027, 5, 8)),  # pont de l'Ascension
        (date(2027, 7, 3), date(2027, 8, 31)),
    ]
    assert not ZONE_C.is_school_day(date(2027, 2, 8))
    assert not ZONE_C.is_school_day(date(2027, 4, 6))
    assert ZONE_C.is_school_day(date(2027, 3, 1))  # the code used to call it winter holiday
    assert not ZONE_C.is_school_day(date(2027, 5, 7))  # the pont's Friday
    assert not ZONE_C.is_school_day(date(2026, 11, 11))  # Armistice, a public holiday
    # Zones differ: zone A's winter holiday is 13-28 February 2027.
    zone_a = default_calendar().zone("A")
    assert zone_a.is_school_day(date(2027, 2, 8)) and not zone_a.is_school_day(date(2027, 2, 15))


def test_terms_are_the_periods_between_holidays() -> None:
    terms = [(t.tag, t.start, t.end, t.name) for t in ZONE_C.terms if t.tag.startswith("2026-27")]
    assert terms == [
        ("2026-27 T1", date(2026, 9, 1), date(2026, 10, 16), "2026-2027 P1 (rentrée-Toussaint)"),
        ("2026-27 T2", date(2026, 11, 2), date(2026, 12, 18), "2026-2027 P2 (Toussaint-Noël)"),
        ("2026-27 T3", date(2027, 1, 4), date(2027, 2, 5), "2026-2027 P3 (Noël-Hiver)"),
        ("2026-27 T4", date(2027, 2, 22), date(2027, 4, 2), "2026-2027 P4 (Hiver-Printemps)"),
        ("2026-27 T5", date(2027, 4, 19), date(2027, 7, 2), "2026-2027 P5 (Printemps-Été)"),
    ]


def test_several_years_and_what_is_not_covered(caplog: pytest.LogCaptureFixture) -> None:
    calendar = default_calendar()
    assert {2024, 2025, 2026, 2027} <= set(ZONE_C.years)
    assert ZONE_C.covers(date(2028, 8, 31)) and not ZONE_C.covers(date(2028, 9, 1))
    corse = calendar.zone("Corse")  # not in the bundled data
    assert not corse.years and not corse.covers(date(2026, 12, 3))
    zone_c = load_calendar().zone("C")  # its own warnings (the shared one may have told)
    with caplog.at_level(logging.WARNING, logger="collector.rules.calendar"):
        # An uncovered day: Monday to Friday but public holidays (no school holidays).
        assert zone_c.is_school_day(date(2028, 10, 23))  # would be Toussaint: unknown
        assert zone_c.is_school_day(date(2028, 12, 27))
        assert not zone_c.is_school_day(date(2028, 12, 25))  # Christmas Day still is not
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1  # once per zone and school year
    assert warnings[0].startswith(
        "school calendar: holiday zone C has no calendar for school year 2028-2029 "
        "(on 2028-10-23): the silence rules count every Monday to Friday that is not a "
        "public holiday as a school day"
    )
    assert "`lordi calendar import FILE --out PATH`" in warnings[0]


def test_overseas_public_holidays() -> None:
    reunion = default_calendar().zone("Réunion")
    assert date(2026, 12, 20) in reunion.public  # abolition of slavery, Réunion
    assert date(2026, 12, 20) not in ZONE_C.public


def _registry(**extra: Any) -> dict[str, Any]:
    school = {
        "name": "Lycée", "town": "Ville", "level1": [{"name": "T", "email": "t@example.org"}],
        "ssids": ["LORDI-EDU"], "hardware_contractor": "hw", "network_contractor": "net",
    }  # fmt: skip
    return {
        "fallback_email": "registre@example.org",
        "contractors": {
            "hw": {"name": "HW", "category": "hardware", "emails": ["hw@example.org"]},
            "net": {"name": "NET", "category": "network", "emails": ["net@example.org"]},
        },
        "schools": {
            "0690001A": school | {"zone": "zone a"},
            "6200001B": school | {"zone": "Corse"},
            "0340001A": school,
        },
    } | extra


def test_each_school_s_zone_from_the_registry() -> None:
    registry = parse_registry(_registry(calendar_zone="C"))
    assert registry.schools["0690001A"].zone == "A"  # recognised whatever the spelling
    assert registry.zone_of("0340001A") == "C"  # the registry's default
    assert registry.zone_of("0999999Z") == "C"  # not in the registry: the default
    assert registry.zones_in_use() == {"A", "Corse", "C"}
    assert parse_registry(_registry()).zone_of("0340001A") is None
    calendar = default_calendar().bound(registry.zone_of, registry.zones_in_use)
    assert calendar.for_school("0690001A").zone == "A"
    assert calendar.coverage(date(2026, 12, 3)) == {"A": True, "C": True, "Corse": False}


def test_an_unknown_zone_is_refused_with_its_value() -> None:
    doc = _registry()
    doc["schools"]["0340001A"]["zone"] = "D"
    with pytest.raises(RegistryError) as err:
        parse_registry(doc, source="schools.toml")
    assert str(err.value).startswith(
        "schools.toml: schools.0340001A.zone: Value error, not a school holiday zone "
        "(known: A, B, C, Corse, Guadeloupe"
    )
    assert str(err.value).endswith("(got 'D')")


def _settings(tmp_path: Path, registry: dict[str, Any], **alerts: Any) -> CollectorSettings:
    lines = [f"fallback_email = {json.dumps(registry['fallback_email'])}"]
    if "calendar_zone" in registry:
        lines.append(f"calendar_zone = {json.dumps(registry['calendar_zone'])}")
    for cid, c in registry["contractors"].items():
        lines += [f"[contractors.{cid}]", f"name = {json.dumps(c['name'])}",
                  f"category = {json.dumps(c['category'])}", f"emails = {json.dumps(c['emails'])}"]  # fmt: skip
    for uai, s in registry["schools"].items():
        lines += [f"[schools.{uai}]"] + [
            f"{k} = {json.dumps(v)}" for k, v in s.items() if k != "level1"
        ] + ['level1 = [{ name = "T", email = "t@example.org" }]']  # fmt: skip
    path = tmp_path / "schools.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return CollectorSettings.model_validate({
        "alerts": {
            "enabled": True, "store_url": f"sqlite:///{tmp_path / 'alerts.sqlite3'}",
            "registry": str(path), **alerts,
        }
    })  # fmt: skip


def test_the_collector_warns_at_start_up_and_shows_it_in_a_gauge(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = _settings(tmp_path, _registry())
    with caplog.at_level(logging.INFO):
        alerting = build_alerting(settings)
    assert alerting is not None
    today = datetime.now(PARIS).date()
    year = f"{today.year if today.month >= 9 else today.year - 1}"
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(
        w.startswith(f"school calendar: holiday zone Corse has no calendar for school year {year}-")
        for w in warnings
    ), warnings
    assert any(w.startswith("school calendar: some schools have no holiday zone") for w in warnings)
    assert any(
        r.getMessage().startswith("school calendar from vacances-scolaires-france")
        for r in caplog.records
    )
    metrics = CollectorMetrics(MetricsSettings(), SimpleNamespace(alerting=alerting))  # type: ignore[arg-type]
    [gauge] = list(_Figures(metrics)._calendar())
    assert gauge.name == "lordi_collector_calendar_covered"
    got = {s.labels["zone"]: s.value for s in gauge.samples}
    zone_a = default_calendar().zone("A").covers(today)
    assert got == {"": 0.0, "A": float(zone_a), "Corse": 0.0}
    alerting.store.close()


def test_the_collector_reads_the_imported_file_and_refuses_a_bad_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "calendar.json"
    assert lordi(["calendar", "import", str(FIXTURE), "--out", str(out)]) == 0
    alerting = build_alerting(_settings(tmp_path, _registry(), calendar_file=str(out)))
    assert alerting is not None
    assert alerting.calendar.for_school("0690001A").years[2025].source.startswith(FIXTURE.name)
    alerting.store.close()
    out.write_text('{"format": "lordi-calendar/1", "zones": {"A": {"2025": {}}}}')
    with pytest.raises(ConfigError) as err:
        build_alerting(_settings(tmp_path, _registry(), calendar_file=str(out)))
    assert str(err.value) == (
        f"alerts.calendar_file: {out}: zones.A: not a school year like 2026-2027 (got '2025')"
    )


def test_an_import_replaces_the_same_zone_and_year_and_keeps_the_others(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "calendar.json"
    assert lordi(["calendar", "import", str(FIXTURE), "--out", str(out)]) == 0
    other = tmp_path / "zone-b.json"
    other.write_text(json.dumps([{
        "description": "Vacances d'Hiver", "population": "-", "zones": "Zone B",
        "start_date": "2027-02-19T23:00:00+00:00", "end_date": "2027-03-07T23:00:00+00:00",
    }]))  # fmt: skip
    assert lordi(["calendar", "import", str(other), "--out", str(out)]) == 0
    years = read_calendar_file(out)
    assert {z: sorted(y) for z, y in years.items()} == {"A": [2025], "B": [2026]}
    again = FIXTURE.read_text(encoding="utf-8").replace("2025-10-17T22", "2025-10-10T22")
    (tmp_path / "newer.csv").write_text(again, encoding="utf-8")
    assert lordi(["calendar", "import", str(tmp_path / "newer.csv"), "--out", str(out)]) == 0
    assert "(replaces the one in the file)" in capsys.readouterr().out
    years = read_calendar_file(out)
    assert years["A"][2025].holidays[0].start == date(2025, 10, 11)
    assert sorted(years["B"]) == [2026]


def test_import_errors_exit_2_with_the_line_and_nothing_usable_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(
        FIXTURE.read_text(encoding="utf-8").replace("2025-12-19T23:00:00+00:00", "19/12/2025", 1)
    )
    out = tmp_path / "calendar.json"
    assert lordi(["calendar", "import", str(bad), "--out", str(out)]) == 2
    assert capsys.readouterr().err == (
        f"error: {bad}: line 3: start_date: not a date or date-time (got '19/12/2025')\n"
    )
    assert not out.exists()
    teachers = tmp_path / "teachers.csv"
    teachers.write_text(
        "description;population;start_date;end_date;location;zones;annee_scolaire\n"
        "Vacances de Noël;Enseignants;2025-12-19T23:00:00+00:00;2026-01-04T23:00:00+00:00;Paris;Zone C;2025-2026\n"
    )
    assert lordi(["calendar", "import", str(teachers), "--out", str(out)]) == 1
    assert "no holiday of a known zone" in capsys.readouterr().err


def test_a_written_file_is_checked_when_read(tmp_path: Path) -> None:
    path = tmp_path / "calendar.json"
    for doc, message in [
        ({"format": "x"}, "format: expected 'lordi-calendar/1' (got 'x')"),
        ({"format": "lordi-calendar/1", "zones": {"Zone A": {}}}, "zones.Zone A: not a holiday zone (got 'Zone A'"),
        (
            {"format": "lordi-calendar/1", "zones": {"A": {"2025-2026": {"holidays": [
                {"name": "x", "first": "2025-10-18", "last": "2025-13-01"}]}}}},
            "zones.A.2025-2026.holidays[0].last: not a date YYYY-MM-DD (got '2025-13-01')",
        ),
    ]:  # fmt: skip
        path.write_text(json.dumps(doc))
        with pytest.raises(CalendarFileError) as err:
            read_calendar_file(path)
        assert str(err.value).startswith(f"{path}: {message}")


def test_calendar_show(capsys: pytest.CaptureFixture[str]) -> None:
    assert lordi(["calendar", "show", "--zone", "c", "--year", "2026-2027"]) == 0
    out = capsys.readouterr().out
    assert "zone C, school year 2026-2027 (2026-09-01 .. 2027-08-31)" in out
    assert "    2027-02-06 .. 2027-02-21  Vacances d'hiver" in out
    assert "    2026-27 T5  2027-04-19 .. 2027-07-02  2026-2027 P5 (Printemps-Été)" in out
    assert lordi(["calendar", "show", "--zone", "Corse", "--year", "2026"]) == 1
    assert "  not covered: every Monday to Friday" in capsys.readouterr().out
    assert lordi(["calendar", "show"]) == 0
    assert "  zone Corse: no school year;" in capsys.readouterr().out


def test_the_default_alerting_has_no_zone() -> None:
    store = AlertStore("sqlite://")
    store.create_tables()
    alerting = Alerting(RulesConfig(), store)
    assert alerting.calendar.for_school("0340001A").zone == ""
    assert load_calendar().sources == ("vacances-scolaires-france 0.12.0",)
