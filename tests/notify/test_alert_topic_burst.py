"""A first day's burst and the retained alert topic (collector/notify/deliver.py,
`Notifier.topic_pass`): the outbox reads and publishes each school's list once per
pass over the rows it claimed, not once per alert, and what the broker retains at
the end lists every open alert. Real Mosquitto, real SMTP server, SQLite store."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from collector.alerting import Alerting
from collector.alerts.model import Alert
from collector.alerts.store import AlertStore
from collector.notify import mqtt_publish
from collector.notify.deliver import Notifier
from collector.notify.settings import NotifySettings
from collector.rules import RulesConfig
from lordi.stack import LocalStack
from tests.helpers import Subscriber
from tests.notify.conftest import SmtpServer
from tests.notify.test_digest import S1, S2, _first_day, _registry


def test_a_burst_publishes_each_school_list_once_per_pass(
    smtp_server: SmtpServer, tmp_path: Path
) -> None:
    stack = LocalStack()
    stack.start_mosquitto()
    store = AlertStore(f"sqlite:///{tmp_path / 'alerts.sqlite3'}")
    store.create_tables()
    reads: list[str] = []

    def open_alerts(uai: str) -> list[Alert]:
        reads.append(uai)
        return store.list_alerts(school=uai, unresolved=True)

    settings = NotifySettings.model_validate(
        {
            "smtp": {"host": "127.0.0.1", "port": smtp_server.port, "tls": "none"},
            "alert_topic": {"enabled": True, "port": stack.mqtt_port},
            "outbox": {"batch": 500},
        }
    )
    watchers: dict[str, Subscriber] = {}
    try:
        alerting = Alerting(RulesConfig(), store, Notifier(_registry(), settings, open_alerts))
        now = datetime.now(UTC).replace(microsecond=0)
        alerting.on_samples(_first_day(now, {S1: 120, S2: 3}), now)
        alerting.sweep(now + timedelta(seconds=1))
        alerting.stop()
        assert len(store.list_alerts(unresolved=True)) == 123
        assert store.outbox.status_counts()["pending"] == 0
        # One pass claimed every row: each school's list read once, not 123 times.
        assert sorted(reads) == [S1, S2]
        # What a technician's phone gets on subscribing now: the retained lists.
        watchers = {uai: Subscriber(stack, f"lordi/v1/{uai}/alerts") for uai in (S1, S2)}

        def retained(uai: str, count: int) -> bool:
            return watchers[uai].wait_for(
                lambda got: any(r and len(json.loads(p)) == count for _, p, r in got)
            )

        assert retained(S1, 120) and retained(S2, 3)
    finally:
        for watcher in watchers.values():
            watcher.close()
        mqtt_publish.close()
        store.close()
        stack.stop()
