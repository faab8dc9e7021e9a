"""The outbox is sent by its own thread, never by the one that commits telemetry
(collector/notify/worker.py): a first day's alerts do not hold ingest while the mails
go out. Real alert store, real SMTP server."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from collector.alerting import Alerting
from collector.alerts.store import AlertStore
from collector.contract import Sample
from collector.notify.deliver import Notifier
from collector.notify.worker import OutboxWorker
from collector.rules import RulesConfig
from lordi.stack import LocalStack
from tests.helpers import minimal_sample, recent
from tests.notify.conftest import SmtpServer
from tests.notify.test_delivery import _local_registry, _settings

SCHOOL = "0340001A"


def _worn(n: int) -> list[tuple[str, str, Sample]]:
    doc = minimal_sample(recent(5), health=50.0)
    sample = Sample.model_validate_json(json.dumps(doc))
    return [(SCHOOL, f"dev-{SCHOOL}-{i:04d}", sample) for i in range(1, n + 1)]


def test_notifications_leave_from_the_outbox_thread(
    stack: LocalStack, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    smtp_server.clear()
    store = AlertStore(f"sqlite:///{tmp_path / 'alerts.sqlite3'}")
    store.create_tables()
    notifier = Notifier(_local_registry(), _settings(smtp_server.port, stack.mqtt_port))
    release = threading.Event()
    senders: list[str] = []
    real_send = notifier.send

    def held_send(*args: Any, **kw: Any) -> Any:
        senders.append(threading.current_thread().name)
        assert release.wait(30), "never released"
        return real_send(*args, **kw)

    notifier.send = held_send  # type: ignore[method-assign]
    alerting = Alerting(RulesConfig(), store, notifier, deliver_in_background=True)
    try:
        # Three worn batteries: the engine opens three alerts and writes their
        # notifications to the outbox; ingest returns while the first send is held.
        alerting.on_samples(_worn(3), datetime.now(UTC))
        assert [a.rule for a in store.list_alerts(school=SCHOOL)] == ["battery_replace"] * 3
        pending = [r for r in store.outbox.rows() if r.status == "pending"]
        assert len(pending) == 3
        # More telemetry is taken while the mail is still held.
        alerting.on_samples(_worn(5)[3:], datetime.now(UTC))
        assert len(store.list_alerts(school=SCHOOL)) == 5
        release.set()
        mails = smtp_server.wait_for(5, timeout_s=20)
    finally:
        release.set()
        alerting.stop()
    assert set(senders) == {"lordi-outbox"}
    assert {r.status for r in store.outbox.rows()} == {"sent"}
    assert len(mails) >= 5  # each alert's level-1 e-mail


def test_stop_sends_what_is_due(stack: LocalStack, smtp_server: SmtpServer, tmp_path: Path) -> None:
    """Stopped right after opening alerts, the collector still mails them."""
    smtp_server.clear()
    store = AlertStore(f"sqlite:///{tmp_path / 'alerts.sqlite3'}")
    store.create_tables()
    notifier = Notifier(_local_registry(), _settings(smtp_server.port, stack.mqtt_port))
    alerting = Alerting(RulesConfig(), store, notifier, deliver_in_background=True)
    alerting.on_samples(_worn(2), datetime.now(UTC))
    alerting.stop()
    assert {r.status for r in store.outbox.rows()} == {"sent"}
    assert len(smtp_server.wait_for(2, timeout_s=10)) >= 2


class _Recorder:
    """Stands for OutboxDeliverer: records which thread runs each pass."""

    def __init__(self) -> None:
        self.threads: list[str] = []

    def deliver_due(self, now: datetime) -> int:
        self.threads.append(threading.current_thread().name)
        return 0


def test_the_last_pass_runs_on_the_worker_thread() -> None:
    recorder = _Recorder()
    worker = OutboxWorker(recorder, poll_s=60)  # type: ignore[arg-type]
    worker.start()
    worker.wake()
    worker.stop()
    assert recorder.threads and set(recorder.threads) == {"lordi-outbox"}
    assert recorder.threads.count("lordi-outbox") == worker.passes


def test_a_worker_never_started_sends_from_the_caller_at_stop() -> None:
    recorder = _Recorder()
    worker = OutboxWorker(recorder, poll_s=60)  # type: ignore[arg-type]
    worker.stop()
    assert recorder.threads == [threading.current_thread().name]
