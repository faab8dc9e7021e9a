"""Level-1 e-mail as one digest per school (collector/notify/digest.py): a first day's
hundreds of worn batteries reach the technicians as one e-mail at the school's digest
time, critical alerts at once. Through the alert engine and the outbox, on the real
SMTP server, SQLite and PostgreSQL."""

from __future__ import annotations

import json
import tomllib
from datetime import UTC, datetime, timedelta
from email.header import decode_header, make_header
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from collector.alerting import Alerting
from collector.alerts.model import Alert
from collector.contract import Sample
from collector.notify.deliver import Notifier
from collector.notify.digest import DigestItem, digest_email, next_digest
from collector.notify.errors import RegistryError
from collector.notify.registry import Registry, parse_registry
from collector.notify.render import PARIS
from collector.notify.settings import NotifySettings
from collector.rules import RulesConfig
from lordi.stack import free_port
from tests.alerts.helpers import BACKENDS, database
from tests.helpers import minimal_sample
from tests.notify.conftest import SmtpServer, running_smtp
from tests.notify.test_delivery import SAMPLE_REGISTRY

S1, S2 = "0340001A", "0340002B"  # two level-1 technicians / one
TIMES = ["07:45", "12:30"]


def paris(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=PARIS)


# --- when the digest goes out ------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        ("2026-12-03T07:00", "2026-12-03T07:45"),  # winter: 06:45 UTC
        ("2026-12-03T07:45", "2026-12-03T12:30"),  # exactly at a time: the next one
        ("2026-12-03T13:00", "2026-12-04T07:45"),  # after the last: tomorrow's first
        ("2026-07-01T07:00", "2026-07-01T07:45"),  # summer: 05:45 UTC
        ("2027-03-27T23:00", "2027-03-28T07:45"),  # over the spring-forward night
        ("2026-10-24T23:00", "2026-10-25T07:45"),  # over the fall-back night
    ],
)
def test_next_digest_on_the_school_wall_clock(now: str, expected: str) -> None:
    got = next_digest(TIMES, paris(now).astimezone(UTC))
    assert got.tzinfo is UTC
    assert got == paris(expected).astimezone(UTC)


def test_a_time_the_clocks_skip_is_the_hour_after() -> None:
    got = next_digest(["02:30"], paris("2027-03-28T00:00").astimezone(UTC))
    assert got == datetime(2027, 3, 28, 1, 30, tzinfo=UTC)  # 03:30 summer time


def test_digest_times_are_checked() -> None:
    with pytest.raises(ValidationError) as err:
        NotifySettings.model_validate({"digest": {"times": ["07:45", "7h30"]}})
    assert "digest.times.1" in str(err.value) and "7h30" in str(err.value)
    data = tomllib.loads(SAMPLE_REGISTRY.read_text(encoding="utf-8"))
    data["schools"][S1]["digest_times"] = ["24:00"]
    with pytest.raises(RegistryError) as reg_err:
        parse_registry(data)
    assert "digest_times" in str(reg_err.value) and "24:00" in str(reg_err.value)


# --- what it says -------------------------------------------------------------------------


def _alert(alert_id: int, device: str, **kw: Any) -> Alert:
    at = datetime(2026, 12, 3, 7, 10, tzinfo=UTC)
    fields: dict[str, Any] = {
        "id": alert_id,
        "key": f"{S1}/{device}/BAT0/battery_replace",
        "rule": "battery_replace",
        "subject": "battery",
        "school": S1,
        "device": device,
        "category": "hardware",
        "severity": "warning",
        "status": "open",
        "opened_at": at,
        "updated_at": at,
        "summary": "Santé de la batterie 52 % (< 60 %)",
        "action": "Remplacer la batterie",
        "evidence": {},
    }
    return Alert(**(fields | kw))


def test_an_alert_opened_then_resolved_shows_once_with_its_state() -> None:
    resolved = _alert(2, "dev-b", status="resolved", resolved_at=datetime(2026, 12, 3, 9, tzinfo=UTC))
    items = [
        DigestItem("opened", _alert(1, "dev-a"), "L-0001", "https://lordi.example.org/alertes/1"),
        DigestItem("opened", resolved, None, None),
        DigestItem("resolved", resolved, None, None),
    ]
    text = digest_email(S1, "Lycée Jean Moulin", items, datetime(2026, 12, 3, 11, 30, tzinfo=UTC))
    assert text.subject == f"[Lordi {S1}] Résumé du 03/12/2026 à 12:30 : 2 nouvelles alertes"
    body = text.body
    assert body.count("dev-b") == 1 and "Résolue depuis, le 03/12/2026 à 10:00" in body
    assert "ordinateur dev-a (n° d'inventaire L-0001)" in body
    assert "https://lordi.example.org/alertes/1" in body
    assert "Nouvelles alertes (2)" in body and "Alertes résolues" not in body


# --- through the engine, the outbox and the SMTP server ----------------------------------


def _registry(**schools: Any) -> Registry:
    data = tomllib.loads(SAMPLE_REGISTRY.read_text(encoding="utf-8"))
    for uai, school in data["schools"].items():
        school.pop("helpdesk_webhook_url", None)
        school.update(schools.get(uai, {}))
    for contractor in data["contractors"].values():
        contractor.pop("webhook_url", None)
    return parse_registry(data)


def _notifier(port: int, registry: Registry) -> Notifier:
    settings = NotifySettings.model_validate(
        {
            "smtp": {"host": "127.0.0.1", "port": port, "tls": "none", "timeout_s": 5},
            "alert_topic": {"enabled": False},
            "digest": {"times": TIMES},
        }
    )
    return Notifier(registry, settings)


def _sample(at: datetime, **battery: Any) -> Sample:
    doc = minimal_sample(at, health=battery.pop("health", 90.0))
    doc["batteries"][0].update(battery)
    return Sample.model_validate_json(json.dumps(doc))


def _first_day(now: datetime, worn: dict[str, int]) -> list[tuple[str, str, Sample]]:
    return [
        (school, f"dev-{school}-{i:04d}", _sample(now - timedelta(minutes=1), health=50.0))
        for school, n in worn.items()
        for i in range(1, n + 1)
    ]


def _subject(msg: Message) -> str:
    return str(make_header(decode_header(msg["Subject"])))


def _body(msg: Message) -> str:
    part = next(p for p in msg.walk() if p.get_content_type() == "text/plain")
    raw = part.get_payload(decode=True)
    assert isinstance(raw, bytes)
    return raw.decode(part.get_content_charset() or "utf-8")


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_first_day_is_one_email_per_school(
    backend: str, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    smtp_server.clear()
    now = datetime.now(UTC).replace(microsecond=0)
    with database(backend, str(tmp_path / "alerts.sqlite3")) as db:
        store = db()
        alerting = Alerting(RulesConfig(), store, _notifier(smtp_server.port, _registry()))
        # 200 worn batteries at school 1, 3 at school 2, and one hot battery at school 1
        # (critical: two readings 6 minutes apart, past its 5-minute minimum).
        alerting.on_samples(_first_day(now, {S1: 200, S2: 3}), now)
        hot = f"dev-{S1}-hot"
        for minutes in (7, 1):
            alerting.on_samples([(S1, hot, _sample(now - timedelta(minutes=minutes),
                                                   temperature_c=58.0))], now)  # fmt: skip
        assert len(store.list_alerts()) == 204
        # At once: only the critical alert's level-1 e-mail (two technicians).
        immediate = smtp_server.wait_for(2, timeout_s=10)
        assert len(immediate) == 2 and all(hot in _body(m) for m in immediate)
        assert store.outbox.status_counts() == {"pending": 0, "failed": 0, "digest": 203}

        due = next_digest(TIMES, now)
        alerting.sweep(due - timedelta(seconds=1))  # not yet
        alerting.sweep(due + timedelta(seconds=30))  # the collector's next sweep
        everything = smtp_server.wait_for(5, timeout_s=10)
        alerting.stop()
        assert {r.status for r in store.outbox.rows()} == {"sent"}
    mails = [m for m in everything if "Résumé" in _subject(m)]
    # School 1: one e-mail to each of its two technicians; school 2: one. The rest is
    # the critical alert's: its reminders (every 4 h) are not held either.
    assert len(mails) == 3
    assert all(hot in _subject(m) for m in everything if m not in mails)
    stamp = f"Résumé du {(due + timedelta(seconds=30)).astimezone(PARIS):%d/%m/%Y à %H:%M}"
    assert all(stamp in _subject(m) for m in mails)
    by_school = {S1: [m for m in mails if S1 in _subject(m)], S2: [m for m in mails if S2 in _subject(m)]}
    assert len(by_school[S1]) == 2 and len(by_school[S2]) == 1
    body = _body(by_school[S1][0])
    assert "200 nouvelles alertes" in _subject(by_school[S1][0])
    assert all(f"dev-{S1}-{i:04d}" in body for i in range(1, 201)) and hot not in body
    assert body.count("dev-") == 200
    assert "3 nouvelles alertes" in _subject(by_school[S2][0])


def test_a_digest_the_relay_refuses_goes_out_whole_later(tmp_path: Path) -> None:
    port = free_port()  # nothing listens: the relay is down at digest time
    now = datetime.now(UTC).replace(microsecond=0)
    with database("sqlite", str(tmp_path / "alerts.sqlite3")) as db:
        store = db()
        alerting = Alerting(RulesConfig(), store, _notifier(port, _registry()))
        alerting.on_samples(_first_day(now, {S2: 4}), now)
        assert store.outbox.status_counts() == {"pending": 0, "failed": 0, "digest": 4}
        due = next_digest(TIMES, now)
        alerting.sweep(due + timedelta(seconds=30))
        # A failed digest is a retry like any other: the operators' pending alarm sees it.
        assert store.outbox.status_counts() == {"pending": 4, "failed": 0, "digest": 0}
        assert {(r.status, r.attempts) for r in store.outbox.rows() if r.kind != "opened"} == {
            ("pending", 1)
        }
        with running_smtp(tmp_path / "smtp", port) as smtp:
            alerting.sweep(due + timedelta(minutes=5))  # past the 60 s backoff
            mails = smtp.wait_for(2, timeout_s=3)
        alerting.stop()
        assert {r.status for r in store.outbox.rows()} == {"sent"}
    assert len(mails) == 1 and "4 nouvelles alertes" in _subject(mails[0])


def test_a_school_without_digest_gets_each_alert_at_once(
    smtp_server: SmtpServer, tmp_path: Path
) -> None:
    smtp_server.clear()
    now = datetime.now(UTC).replace(microsecond=0)
    registry = _registry(**{S2: {"digest_times": []}})
    with database("sqlite", str(tmp_path / "alerts.sqlite3")) as db:
        store = db()
        alerting = Alerting(RulesConfig(), store, _notifier(smtp_server.port, registry))
        alerting.on_samples(_first_day(now, {S2: 3}), now)
        mails = smtp_server.wait_for(3, timeout_s=10)
        alerting.stop()
        assert store.outbox.status_counts()["digest"] == 0
    assert len(mails) == 3 and all("Nouvelle alerte" in _subject(m) for m in mails)
