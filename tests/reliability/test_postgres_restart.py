"""The alert store (PostgreSQL, a private cluster) restarted while the collector with
alerts enabled ingests: telemetry is stored exactly once throughout, the rules' failure
while the database is away is counted and does not stop the ingest, and alerts open
again once it is back, without reopening the ones already open."""

from __future__ import annotations

import time

import pytest

from collector.alerting import Alerting
from collector.alerts.store import AlertStore
from collector.config import CollectorSettings, IngestSettings, MqttSettings, StoreSettings
from collector.rules import RulesConfig
from collector.service import Collector
from lordi.stack import LocalStack
from tests.helpers import publish as publish_on
from tests.helpers import recent, unique_school
from tests.reliability.servers import (
    PostgresCluster,
    SteadyPublisher,
    duplicates,
    envelope,
    sample_at,
    stored_timestamps,
    wait_stored_total,
    wait_until,
)


def _replace_alerts(store: AlertStore, school: str, device: str) -> list[str]:
    return [
        a.status
        for a in store.list_alerts(school=school)
        if a.rule == "battery_replace" and a.device == device
    ]


@pytest.mark.timeout(300)
def test_postgres_restart_while_ingesting_with_alerts(
    private_stack: LocalStack, postgres_cluster: PostgresCluster
) -> None:
    school = unique_school()
    store = AlertStore(postgres_cluster.url)
    store.create_tables()
    alerting = Alerting(RulesConfig(), store, notifier=None)
    collector = Collector(
        CollectorSettings(
            mqtt=MqttSettings(port=private_stack.mqtt_port, client_id="pg-collector"),
            store=StoreSettings(url=private_stack.vm_url),
            ingest=IngestSettings(linger_ms=20, retry_initial_s=0.2),
        ),
        alerting=alerting,
    )
    # Steady healthy traffic in one school, failing batteries in another.
    publisher = SteadyPublisher(
        private_stack.mqtt_port, school, devices=4, per_message=2, interval_s=0.1
    )
    worn = unique_school()
    topic = f"lordi/v1/{worn}/{{}}/telemetry"

    reports = [0]

    def report(device: str, minutes_ago: int, health: float) -> None:
        reports[0] += 1
        payload = envelope(worn, device, [sample_at(recent(minutes_ago), health)])
        publish_on(private_stack, topic.format(device), [payload])

    checker = AlertStore(postgres_cluster.url)
    collector.start()
    try:
        assert collector.connected.wait(20)
        publisher.begin()
        report("pc-a", 30, 61.0)
        report("pc-a", 29, 59.0)  # crosses 60 %: replace alert before the restart
        report("pc-b", 28, 61.0)
        assert wait_until(lambda: _replace_alerts(checker, worn, "pc-a") == ["open"], 30)
        checker.close()

        postgres_cluster.stop("fast")
        down_at = time.monotonic()
        report("pc-a", 20, 58.0)  # still failing, the database is away
        time.sleep(5.0)
        postgres_cluster.start()
        down_s = time.monotonic() - down_at
        errors_during = collector.stats.alerting_errors

        checker = AlertStore(postgres_cluster.url)
        report("pc-b", 10, 59.0)  # crosses 60 % after the restart: a new alert
        report("pc-a", 9, 57.0)
        opened = wait_until(lambda: _replace_alerts(checker, worn, "pc-b") == ["open"], 30)
        assert opened, [(a.device, a.rule, a.status) for a in checker.list_alerts(school=worn)]
        publisher.finish()
        sent = publisher.sent_samples
        assert wait_stored_total(private_stack.vm_url, school, sent, timeout_s=60) >= sent
        assert wait_stored_total(private_stack.vm_url, worn, reports[0], timeout_s=30) >= reports[0]
        time.sleep(1.0)
        stamps = stored_timestamps(private_stack.vm_url, school)
        worn_stamps = stored_timestamps(private_stack.vm_url, worn)
        pc_a = _replace_alerts(checker, worn, "pc-a")
    finally:
        publisher.finish(5)
        collector.stop()
        checker.close()
        store.close()
    assert duplicates(stamps) == 0 and duplicates(worn_stamps) == 0
    assert sum(len(t) for t in stamps.values()) == sent
    reported = sum(len(t) for t in worn_stamps.values())
    assert reported == reports[0]  # every report of the worn school stored once
    assert pc_a == ["open"], "the alert open before the restart was opened again"
    print(
        f"PostgreSQL restart ({down_s:.1f} s down) while ingesting: {sent} + {reported} samples "
        f"stored once, {errors_during} batch(es) whose rules failed meanwhile (counted, "
        f"telemetry acknowledged), alerts open after the restart as before"
    )
