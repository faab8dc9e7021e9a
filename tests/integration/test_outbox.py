"""Durable delivery: the SMTP relay is down when an alert opens, the collector stops,
a new one starts with the relay back, and the e-mail arrives exactly once. Real
aiosmtpd server; SQLite and the real PostgreSQL server."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from collector.alerting import Alerting
from collector.alerts.store import AlertStore
from collector.contract import Sample
from collector.notify.deliver import Notifier
from collector.notify.settings import NotifySettings
from collector.rules import RulesConfig
from lordi.stack import free_port
from tests.alerts.helpers import BACKENDS, Database, database
from tests.helpers import minimal_sample
from tests.notify.conftest import running_smtp
from tests.notify.test_delivery import _local_registry

SCHOOL, DEVICE = "0340001A", "dev-0340001A-0001"


def _collector(db: Database, smtp_port: int) -> tuple[AlertStore, Alerting]:
    """One collector's alerting part: its own store connection and notifier."""
    store = db()
    settings = NotifySettings.model_validate(
        {"smtp": {"port": smtp_port, "timeout_s": 5}, "alert_topic": {"enabled": False}}
    )
    alerting = Alerting(RulesConfig(), store, Notifier(_local_registry(), settings))
    alerting.restore()
    return store, alerting


@pytest.mark.parametrize("backend", BACKENDS)
def test_mail_sent_after_a_restart_arrives_exactly_once(backend: str, tmp_path: Path) -> None:
    smtp_port = free_port()  # nothing listens there yet: the relay is down
    now = datetime.now(UTC).replace(microsecond=0)
    worn = Sample.model_validate_json(
        json.dumps(minimal_sample(now - timedelta(minutes=1), health=52.0))
    )
    with database(backend, str(tmp_path / "alerts.sqlite3")) as db:
        store, first = _collector(db, smtp_port)
        first.on_samples([(SCHOOL, DEVICE, worn)], now)
        [row] = store.outbox.rows()
        assert (row.kind, row.status, row.attempts) == ("opened", "pending", 1)
        assert "email_level1" in (row.last_error or "")
        first.stop()  # the collector stops (its device state is saved)
        store.close()

        with running_smtp(tmp_path / "smtp", smtp_port) as smtp:
            store, second = _collector(db, smtp_port)
            assert second.state(SCHOOL, DEVICE) is not None
            second.sweep(now + timedelta(minutes=5))  # the backoff (60 s) has passed
            # apprise sends one message per level-1 recipient (two at this school).
            assert len(smtp.wait_for(2, timeout_s=5)) == 2
            # Further sweeps, and a third collector on the same store, send nothing more.
            second.sweep(now + timedelta(minutes=10))
            _, third = _collector(db, smtp_port)
            third.sweep(now + timedelta(minutes=15))
            mails = smtp.wait_for(3, timeout_s=1.5)
        assert sorted(m["To"] for m in mails) == [
            "camille.roux@jeanmoulin.example.org",
            "karim.benali@jeanmoulin.example.org",
        ]  # each recipient exactly once
        assert all(DEVICE in m.as_string() for m in mails)
        [row] = store.outbox.rows()
        assert (row.status, row.attempts, row.sent_at) == ("sent", 1, now + timedelta(minutes=5))
        [alert] = store.list_alerts()
        assert (alert.rule, alert.device, alert.status) == ("battery_replace", DEVICE, "open")
