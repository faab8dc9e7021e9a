"""`lordi alerts`: the worklist a technician reads, ack, comment, CSV (SQLite and
PostgreSQL stores filled by the real rules)."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from collector.alerting import Alerting
from collector.alerts.store import AlertStore
from collector.contract import Sample
from collector.rules import RulesConfig
from collector.rules.calendar import school_days_between, school_year_of, term_for
from collector.rules.silent import PARIS
from tests.calendars import ZONE_C, ZONE_C_SCHOOLS, terms_of
from tests.helpers import minimal_sample, recent
from tests.integration.test_rules_eval import pg_schema_url  # noqa: F401 - fixture

SCHOOL = "0340002B"


def _fill(url: str) -> None:
    store = AlertStore(url)
    store.create_tables()
    alerting = Alerting(RulesConfig(), store)
    worn = Sample.model_validate_json(json.dumps(minimal_sample(recent(30), health=48.5)))
    fine = Sample.model_validate_json(json.dumps(minimal_sample(recent(30), health=95.0)))
    alerting.on_samples([(SCHOOL, "dev-worn", worn), (SCHOOL, "dev-fine", fine)], datetime.now(UTC))
    store.close()


def _lordi(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lordi.cli", "alerts", "--store", url, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _round_trip(url: str) -> None:
    _fill(url)
    listed = _lordi(url, "--school", SCHOOL)
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0].startswith(
        "#1 [warning] 0340002B dev-worn — Batterie à remplacer : santé 48,5 %"
    )
    assert lines[1].lstrip().startswith("depuis ")
    assert lines[2].strip().startswith("à faire : Remplacer la batterie")
    assert "dev-fine" not in listed.stdout
    acked = _lordi(url, "ack", "1", "--by", "Mme Martin", "--comment", "batterie commandée")
    assert acked.returncode == 0 and "pris en charge par Mme Martin" in acked.stdout
    exported = _lordi(url, "--csv", "-")
    rows = list(csv.DictReader(io.StringIO(exported.stdout)))
    assert [(r["device"], r["rule"], r["status"], r["acknowledged_by"]) for r in rows] == [
        ("dev-worn", "battery_replace", "acknowledged", "Mme Martin")
    ]
    # "since" is the sample time of the worn reading (30 min before the collector saw it).
    assert datetime.fromisoformat(rows[0]["since"]) < datetime.now(UTC) - timedelta(minutes=29)
    assert rows[0]["since"] == rows[0]["opened_at"]  # battery_replace: no minimum duration
    missing = _lordi(url, "ack", "99", "--by", "x")
    assert missing.returncode == 2
    assert missing.stderr.strip() == "error: alert id 99: no such alert"


def test_worklist_on_sqlite(tmp_path: Path) -> None:
    _round_trip(f"sqlite:///{tmp_path / 'alerts.sqlite3'}")


def test_worklist_on_postgresql(pg_schema_url: str) -> None:  # noqa: F811
    _round_trip(pg_schema_url)


def test_forecast_per_school_and_term(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'alerts.sqlite3'}"
    store = AlertStore(url)
    store.create_tables()
    alerting = Alerting(RulesConfig(), store, sweep_interval_s=1, calendar=ZONE_C_SCHOOLS)
    now = datetime.now(UTC).replace(microsecond=0)
    for day in range(35, 0, -1):  # 0.1 point a day, from 70 % to 66.6 %
        sample = minimal_sample(now - timedelta(days=day), health=round(70 - 0.1 * (35 - day), 2))
        alerting.on_samples(
            [(SCHOOL, "dev-fading", Sample.model_validate_json(json.dumps(sample)))],
            now - timedelta(days=day),
        )
    alerting.sweep(now)
    crossing = (now - timedelta(days=1) + timedelta(days=66)).date()  # 66.6 -> 60 at 0.1/day
    first_year = school_year_of(datetime.now(PARIS).date())
    terms = [t for y in range(first_year, first_year + 3) for t in terms_of(y)]
    term = term_for(crossing, terms)
    expected = term.name if term else "après l'année scolaire"
    out = _lordi(url, "forecast", "--zone", "C")
    assert out.returncode == 0, out.stderr
    assert "(1 batterie(s) suivie(s))" in out.stdout
    assert f"  {SCHOOL}  {expected}: 1" in out.stdout


def test_a_restarted_collector_still_finds_laptops_that_went_silent(tmp_path: Path) -> None:
    """dev-quiet reports on Monday only, dev-busy every day; the collector restarts on
    Tuesday evening. A laptop is silent when its school kept reporting without it."""
    url = f"sqlite:///{tmp_path / 'alerts.sqlite3'}"
    store = AlertStore(url)
    store.create_tables()
    monday = (datetime.now(UTC) - timedelta(days=14)).replace(
        hour=9, minute=0, second=0, microsecond=0
    )
    monday -= timedelta(days=monday.weekday())
    # a week whose five days are school days (no holiday in the way)
    while (
        school_days_between(
            (monday - timedelta(days=1)).date(), (monday + timedelta(days=5)).date(),
            ZONE_C,
        )
        < 5
    ):  # fmt: skip
        monday -= timedelta(days=7)

    def report(alerting: Alerting, device: str, day: int) -> None:
        at = monday + timedelta(days=day)
        sample = Sample.model_validate_json(json.dumps(minimal_sample(at, health=95.0)))
        alerting.on_samples([(SCHOOL, device, sample)], at)

    first = Alerting(RulesConfig(), store, sweep_interval_s=1, calendar=ZONE_C_SCHOOLS)
    report(first, "dev-quiet", 0)
    for day in (0, 1):
        report(first, "dev-busy", day)
    first.stop()  # saves device and school state
    restarted = Alerting(RulesConfig(), store, sweep_interval_s=1, calendar=ZONE_C_SCHOOLS)
    assert restarted.restore() == 2
    for day in (2, 3, 4):
        report(restarted, "dev-busy", day)
    restarted.sweep(monday + timedelta(days=7))  # the next Monday: the week is complete
    alerts = [(a.device, a.rule, a.since) for a in store.list_alerts(school=SCHOOL)]
    assert alerts == [("dev-quiet", "device_silent", monday)]


def test_outbox_lists_what_was_not_delivered(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'alerts.sqlite3'}"
    _fill(url)
    store = AlertStore(url)
    assert _lordi(url, "outbox").stdout == "Aucune notification en attente.\n"
    store.enqueue(1, "opened", datetime(2026, 11, 30, 8, 0, tzinfo=UTC))
    [row] = store.outbox.claim(datetime(2026, 11, 30, 8, 0, tzinfo=UTC))
    store.outbox.retry(
        row.id, ["email_level1"], "email_level1: Connection error",
        datetime(2026, 11, 30, 8, 1, tzinfo=UTC),
    )  # fmt: skip
    store.close()
    out = _lordi(url, "outbox")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        "alerte #1 opened — en attente après 1 essai(s), prochain essai 30/11 08:01 UTC "
        "(email_level1)",
        "    dernière erreur : email_level1: Connection error",
    ]


def test_outbox_names_what_waits_for_the_digest(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'alerts.sqlite3'}"
    _fill(url)
    store = AlertStore(url)
    now = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
    store.enqueue(1, "opened", now)
    [row] = store.outbox.claim(now)
    digest_at = datetime(2026, 11, 30, 11, 30, tzinfo=UTC)
    assert store.outbox.defer(row, "email_level1", digest_at, now, remaining=())
    store.close()
    out = _lordi(url, "outbox")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        "alerte #1 digest_opened — attend le résumé de l'établissement après 0 essai(s), "
        "prochain essai 30/11 11:30 UTC (email_level1)",
    ]
