"""The acceptance check of the calendar as data: an official-format export for
another zone and year than the one the code used to hard-code (zone A, 2025-2026;
tests/calendar/fixtures/SOURCE.md) is imported with `lordi calendar import`, and
the silence rule, through the collector's own path (`school_calendar` as
`lordi-collector run` builds it, then `Alerting`), judges a zone A school with it."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from collector.alerting import Alerting
from collector.alerts.store import AlertStore
from collector.calendar import load_calendar, school_calendar
from collector.calendar.store import read_calendar_file
from collector.notify.registry import Registry, parse_registry
from collector.rules import RulesConfig
from collector.rules.calendar import Calendar
from lordi.cli import main as lordi
from tests.rules.factory import battery, sample

FIXTURE = Path(__file__).parent / "fixtures" / "fr-en-calendrier-scolaire-zone-a-2025-2026.csv"
PARIS = ZoneInfo("Europe/Paris")
LYON = "0690001A"  # a lycée of the académie de Lyon: zone A
TOUSSAINT = (date(2025, 10, 18), date(2025, 11, 2))  # zone A, first and last day off
CONFIG = RulesConfig.model_validate({"device_silent": {"school_days": 3}})


def _registry(zone: str | None) -> Registry:
    school = {
        "name": "Lycée du Parc", "town": "Lyon",
        "level1": [{"name": "Tech", "email": "tech@parc.example.org"}],
        "ssids": ["LORDI-EDU"], "hardware_contractor": "hw", "network_contractor": "net",
    }  # fmt: skip
    if zone is not None:
        school["zone"] = zone
    return parse_registry({
        "fallback_email": "registre@example.org",
        "contractors": {
            "hw": {"name": "HW", "category": "hardware", "emails": ["hw@example.org"]},
            "net": {"name": "NET", "category": "network", "emails": ["net@example.org"]},
        },
        "schools": {LYON: school},
    })  # fmt: skip


@pytest.fixture
def imported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    out = tmp_path / "calendar.json"
    assert lordi(["calendar", "import", str(FIXTURE), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "zone A 2025-2026: 5 holiday(s)" in printed
    assert "2025-10-18 .. 2025-11-02  Vacances de la Toussaint" in printed
    assert f"wrote {out}" in printed
    return out


def test_the_import_writes_the_zone_s_year_as_first_and_last_days_without_class(
    imported: Path,
) -> None:
    years = read_calendar_file(imported)
    assert list(years) == ["A"]
    holidays = [(h.start, h.end, h.name) for h in years["A"][2025].holidays]
    assert holidays == [
        (date(2025, 10, 18), date(2025, 11, 2), "Vacances de la Toussaint"),
        (date(2025, 12, 20), date(2026, 1, 4), "Vacances de Noël"),
        (date(2026, 2, 7), date(2026, 2, 22), "Vacances d'Hiver"),
        (date(2026, 4, 4), date(2026, 4, 19), "Vacances de Printemps"),
        (date(2026, 7, 4), date(2026, 8, 31), "Vacances d'Été"),
    ]
    # The collector's calendar takes the imported year over the bundled one.
    calendar = load_calendar(imported)
    assert calendar.zone("A").years[2025].source.startswith(FIXTURE.name)
    assert calendar.zone("A").years[2024].source.startswith("vacances-scolaires-france")


def _at(day: date, hour: int = 10) -> datetime:
    return datetime.combine(day, time(hour), PARIS).astimezone(UTC)


def _silent_alerts(calendar: Calendar, tmp_path: Path, name: str) -> list[tuple[str, datetime]]:
    """Three laptops from 6 October to 7 November 2025: two report every weekday, at
    school and, in the Toussaint holiday, from home (the school stays "active"); the
    third is put away at the start of the holiday and comes back on 6 November. The
    `device_silent` alerts (laptop, opened) the collector's alerting gives."""
    store = AlertStore(f"sqlite:///{tmp_path / name}")
    store.create_tables()
    alerting = Alerting(CONFIG, store, sweep_interval_s=1, calendar=calendar)
    day = date(2025, 10, 6)
    while day <= date(2025, 11, 7):
        if day.weekday() < 5:
            devices = ["dev-a", "dev-b"]
            if day < TOUSSAINT[0] or day >= date(2025, 11, 6):
                devices.append("dev-quiet")
            for device in devices:
                # A past date: built as the collector's validation leaves it.
                alerting.on_samples([(LYON, device, sample(_at(day), [battery(95.0)]))], _at(day))
        day += timedelta(days=1)
    alerting.sweep(_at(date(2025, 11, 9)))
    return [
        (a.device or "", a.opened_at)
        for a in store.list_alerts(school=LYON)
        if a.rule == "device_silent"
    ]


def test_a_laptop_silent_through_the_imported_holiday_is_not_alerted(
    imported: Path, tmp_path: Path
) -> None:
    calendar = school_calendar(imported, lambda: _registry("A"), date(2025, 10, 6))
    alerts = _silent_alerts(calendar, tmp_path, "zone-a.sqlite3")
    # Silent from Friday 17 October: the holiday's weekdays are not school days; the
    # school days after it are Mon 3, Tue 4, Wed 5 November, and then it is alerted
    # (the 11 November is still to come): opened at the end of the third one.
    assert alerts == [("dev-quiet", datetime.combine(date(2025, 11, 6), time(0), PARIS))]


def test_only_the_imported_file_is_enough_and_without_a_zone_the_holiday_counts(
    imported: Path, tmp_path: Path
) -> None:
    # The imported file alone (no bundled data): the same verdict.
    alone = load_calendar(imported, bundled=False).bound(lambda _uai: "A", lambda: {"A"})
    alerts = _silent_alerts(alone, tmp_path, "alone.sqlite3")
    assert alerts == [("dev-quiet", datetime.combine(date(2025, 11, 6), time(0), PARIS))]
    # A school without a zone: the holiday's weekdays count (the others used their
    # laptops at home), so the put-away laptop is alerted during the holiday.
    unzoned = school_calendar(imported, lambda: _registry(None), date(2025, 10, 6))
    alerts = _silent_alerts(unzoned, tmp_path, "unzoned.sqlite3")
    assert alerts == [("dev-quiet", datetime.combine(date(2025, 10, 23), time(0), PARIS))]
