"""A delivery that fails on one channel stays in the outbox and is retried at the
next sweep, on that channel only (real HTTP server answering 500, then 200)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from collector.alerting import Alerting
from collector.alerts.store import AlertStore
from collector.contract import Sample
from collector.notify.deliver import Notifier
from collector.rules import RulesConfig
from lordi.stack import LocalStack
from tests.helpers import minimal_sample, recent
from tests.notify.conftest import SmtpServer, WebhookServer
from tests.notify.test_delivery import _local_registry, _settings


def test_failed_webhook_is_retried_at_the_next_sweep(
    stack: LocalStack, smtp_server: SmtpServer, webhook_server: WebhookServer, tmp_path: Path
) -> None:
    webhook_server.status = 500
    store = AlertStore(f"sqlite:///{tmp_path / 'alerts.sqlite3'}")
    store.create_tables()
    notifier = Notifier(
        _local_registry(webhook_server), _settings(smtp_server.port, stack.mqtt_port)
    )
    alerting = Alerting(RulesConfig(), store, notifier, sweep_interval_s=3600)
    sample = Sample.model_validate_json(json.dumps(minimal_sample(recent(5), health=50.0)))
    now = datetime.now(UTC)
    alerting.on_samples([("0340001A", "dev-0340001A-0002", sample)], now)
    [row] = store.outbox.rows()
    assert (row.kind, row.status, row.channels, row.attempts) == (
        "opened", "pending", ("webhook_helpdesk",), 1
    )  # fmt: skip
    assert row.last_error is not None and "webhook_helpdesk" in row.last_error
    first = len(webhook_server.requests)
    webhook_server.status = 200
    alerting.sweep(now + timedelta(seconds=30))  # before the backoff: not retried yet
    assert len(webhook_server.requests) == first
    alerting.sweep(now + timedelta(minutes=5))
    [row] = store.outbox.rows()
    assert (row.status, row.attempts) == ("sent", 1)
    retried = webhook_server.requests[first:]
    assert [r["path"] for r in retried] == ["/helpdesk?token=tok-123"]
    assert retried[0]["json"]["event"] == "opened"
    assert retried[0]["json"]["packet"]["alert"]["device"] == "dev-0340001A-0002"
