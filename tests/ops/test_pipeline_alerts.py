"""Alerts on the pipeline itself (provisioning/vmalert/pipeline-rules.yml), each
one fired by causing its condition against real servers: a real `lordi-collector
run` process (metrics and alerting on) on a private Mosquitto and a private
VictoriaMetrics store, a second VictoriaMetrics scraping the collector every
second through provisioning/metrics/scrape.yml, Debian's vmalert on a copy of the
rules (`for: 0s`, 1 s evaluation, no school-hours clause) and an
Alertmanager-compatible receiver recording what vmalert sends."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from collector.alerts.model import Finding
from collector.alerts.store import AlertStore
from lordi import vm
from lordi.collectorproc import CollectorProcess
from lordi.stack import LocalStack, free_port
from tests.helpers import envelope, minimal_sample, publish, recent, unique_school
from tests.metrics.helpers import eventually, private_vm, scrape_config
from tests.ops.helpers import (
    RULES,
    VMALERT,
    Receiver,
    idle_clients,
    load_rules,
    receiver,
    rules_for_test,
    running_vmalert,
    split_school_hours,
)

ALERTS = {
    "LordiCollectorDown", "LordiIngestStalled", "LordiDeadLettersHigh",
    "LordiStoreWriteFailures", "LordiOutboxFailing", "LordiSchoolSilent",
}  # fmt: skip
JOB = 'job="lordi-collector"'
# The sample registry's school and laptop (provisioning/schools.toml).
REGISTRY_SCHOOL, REGISTRY_DEVICE = "0340001A", "dev-0340001A-0001"


def dry_run(rules: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [VMALERT, "-dryRun", f"-rule={rules}"], capture_output=True, text=True, timeout=30,
        check=False,
    )  # fmt: skip


def test_the_shipped_rules_are_valid_for_vmalert_and_complete(tmp_path: Path) -> None:
    """vmalert 1.79 parses the file (MetricsQL and annotation templates); every rule
    waits (`for`), has a severity and French annotations; the test copy changes
    only `for`, the interval and the school-hours clause."""
    done = dry_run(RULES)
    assert done.returncode == 0, done.stdout + done.stderr
    rules = load_rules()
    assert set(rules) == ALERTS
    for name, rule in rules.items():
        assert rule["for"] not in ("0s", "0m", 0), name
        assert rule["labels"]["severity"] in ("critical", "warning"), name
        notes = rule["annotations"]
        assert set(notes) == {"summary", "description", "action"}, name
        assert all(notes[k].strip() for k in notes), name
        assert any(ch in "éèàêç" for ch in notes["description"] + notes["action"]), name
    copy = rules_for_test(tmp_path / "rules.yml")
    done = dry_run(copy)
    assert done.returncode == 0, done.stdout + done.stderr
    for name, rule in load_rules(copy).items():
        assert rule["for"] == "0s"
        shipped = rules[name]["expr"]
        if name == "LordiSchoolSilent":
            shipped = split_school_hours(shipped)[0] + "\n"
        assert rule["expr"] == shipped, name
        assert rule["annotations"] == rules[name]["annotations"]


def _at(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def test_school_hours_follow_paris_time(tmp_path: Path) -> None:
    """LordiSchoolSilent's school-hours clause, evaluated by VictoriaMetrics at fixed
    instants: Monday to Friday 10:00-16:59 in Paris, Wednesday until 11:59, in
    summer (UTC+2) and winter (UTC+1) time."""
    clause = split_school_hours(load_rules()["LordiSchoolSilent"]["expr"])[1]
    expected = {
        "2026-09-07T10:00:00+02:00": True,  # Monday, summer time
        "2026-09-07T09:59:00+02:00": False,
        "2026-09-07T16:59:00+02:00": True,
        "2026-09-07T17:00:00+02:00": False,
        "2026-09-09T11:59:00+02:00": True,  # Wednesday morning
        "2026-09-09T12:00:00+02:00": False,  # Wednesday afternoon
        "2026-09-11T15:00:00+02:00": True,  # Friday
        "2026-09-12T11:00:00+02:00": False,  # Saturday
        "2026-09-13T11:00:00+02:00": False,  # Sunday
        "2027-01-04T10:00:00+01:00": True,  # Monday, winter time
        "2027-01-04T09:59:00+01:00": False,
        "2027-01-07T16:30:00+01:00": True,  # Thursday
        "2027-01-07T17:00:00+01:00": False,
    }
    with private_vm(tmp_path / "vm") as server:
        got = {when: bool(vm.query(server.url, clause, _at(when))) for when in expected}
    assert got == expected


# --- the real pipeline ---------------------------------------------------------------


def _registry(dest: Path) -> Path:
    """provisioning/schools.toml without its (example.org) webhooks: notifications go
    by e-mail (to an SMTP port where nothing listens) and the MQTT alert topic."""
    lines = (RULES.parents[1] / "schools.toml").read_text(encoding="utf-8").splitlines()
    kept = [line for line in lines if not line.startswith(("webhook_url", "helpdesk_webhook_url"))]
    dest.write_text("\n".join(kept) + "\n", encoding="utf-8")
    return dest


@pytest.fixture
def private_stack(tmp_path: Path) -> Iterator[LocalStack]:
    """Mosquitto and VictoriaMetrics (the collector's store) of this test alone: it
    stops both, and counts the broker's clients."""
    root = tmp_path / "stack"
    root.mkdir()
    stack = LocalStack(root=root, keep_files=True)
    try:
        stack.start_mosquitto()
        stack.start_victoriametrics()
        yield stack
    finally:
        stack.stop()


def _waiting_notification(store_url: str) -> None:
    """An alert whose e-mail already failed once (the SMTP relay was down before the
    collector started) and waits in the outbox for its retry, due in a day: the
    outbox's `pending` count is 1 from the collector's first scrape on."""
    store = AlertStore(store_url)
    store.create_tables()
    now = datetime.now(UTC)
    finding = Finding(
        rule="battery_watch", key=f"{REGISTRY_SCHOOL}/dev-0340001A-0002/battery_watch",
        subject="device", school=REGISTRY_SCHOOL, device="dev-0340001A-0002",
        category="hardware", severity="warning", active=True,
        at=now - timedelta(minutes=10), summary="battery_watch", action="-",
    )  # fmt: skip
    alert = store.open_alert(finding, now - timedelta(minutes=10))
    store.enqueue(alert.id, "opened", now - timedelta(minutes=10))
    [row] = store.outbox.claim(now, limit=1)
    store.outbox.retry(
        row.id, ["email_level1"], "SMTP: connection refused", now + timedelta(days=1)
    )
    assert store.outbox.status_counts() == {"pending": 1, "failed": 0, "digest": 0}


def _sample(school: str, device: str, minutes_ago: int, health: float = 80.0) -> bytes:
    return envelope(school, device, [minimal_sample(recent(minutes_ago), health=health)])


def test_each_pipeline_alert_fires_when_its_condition_is_caused(
    tmp_path: Path, private_stack: LocalStack
) -> None:
    stack = private_stack
    metrics_port = free_port()
    alert_store = f"sqlite:///{tmp_path / 'alerts.sqlite3'}"
    _waiting_notification(alert_store)
    env = {
        "LORDI_COLLECTOR_METRICS__ENABLED": "true",
        "LORDI_COLLECTOR_METRICS__PORT": str(metrics_port),
        "LORDI_COLLECTOR_METRICS__STORE_CHECK_S": "0.5",
        "LORDI_COLLECTOR_METRICS__REFRESH_S": "1",
        "LORDI_COLLECTOR_INGEST__RETRY_INITIAL_S": "0.2",
        "LORDI_COLLECTOR_INGEST__RETRY_MAX_S": "0.5",
        "LORDI_COLLECTOR_ALERTS__ENABLED": "true",
        "LORDI_COLLECTOR_ALERTS__STORE_URL": alert_store,
        "LORDI_COLLECTOR_ALERTS__REGISTRY": str(_registry(tmp_path / "schools.toml")),
        # The SMTP relay is down: nothing listens there. One attempt, then given up.
        "LORDI_COLLECTOR_ALERTS__NOTIFY__SMTP__PORT": str(free_port()),
        "LORDI_COLLECTOR_ALERTS__NOTIFY__SMTP__TIMEOUT_S": "2",
        "LORDI_COLLECTOR_ALERTS__NOTIFY__ALERT_TOPIC__PORT": str(stack.mqtt_port),
        "LORDI_COLLECTOR_ALERTS__NOTIFY__OUTBOX__MAX_ATTEMPTS": "1",
    }
    collector = CollectorProcess.start(
        stack, "pipeline-alerts", env=env, log=tmp_path / "collector.log"
    )
    config = scrape_config(tmp_path / "scrape.yml", "lordi-collector", f"127.0.0.1:{metrics_port}")
    try:
        with (
            private_vm(tmp_path / "scraper", f"-promscrape.config={config}") as scraper,
            receiver() as alerts,
            idle_clients(stack.mqtt_port, 22),  # laptops between two reports
        ):
            # vmalert starts once the scraper has a healthy collector (a `for: 0s`
            # copy would fire on the first scrape's absence otherwise).
            healthy = (
                f"up{{{JOB}}} == 1 and on() lordi_collector_store_reachable{{{JOB}}} == 1"
                f" and on() lordi_broker_clients_connected{{{JOB}}} > 20"
            )
            assert eventually(lambda: scraper.query(healthy), 20), collector.log.read_text()
            rules = rules_for_test(tmp_path / "rules.yml")
            with running_vmalert(tmp_path, rules, scraper.url, alerts.url):
                _run_phases(stack, collector, alerts)
    finally:
        collector.stop()


def _wait(alerts: Receiver, name: str, since: float, firing: bool = True, **labels: str) -> None:
    found = alerts.wait(name, since, firing, 20, **labels)
    state = "firing" if firing else "resolved"
    assert found, f"{name} {labels or ''} not received {state}; got {sorted(alerts.names())}"


def _run_phases(stack: LocalStack, collector: CollectorProcess, alerts: Receiver) -> None:
    # 1. Laptops connected (22 idle clients), no sample at all: ingest stalled. A
    #    notification has been waiting in the outbox all along: outbox failing
    #    (pending). Nothing else fires.
    t0 = time.monotonic()
    _wait(alerts, "LordiIngestStalled", t0)
    _wait(alerts, "LordiOutboxFailing", t0, status="pending")
    time.sleep(2)  # a few more evaluations: still nothing else
    assert alerts.names(t0) == {"LordiIngestStalled", "LordiOutboxFailing"}
    assert not alerts.alerts("LordiOutboxFailing", t0, status="failed")

    # 2. Telemetry: two schools report now, a third's newest sample is 3 h old (its
    #    laptops silent since), a worn battery of the registry's laptop opens an
    #    alert whose e-mail cannot go (SMTP down, one attempt), and a flood of
    #    malformed messages.
    t2 = time.monotonic()
    fresh_a, fresh_b, silent = unique_school(), unique_school(), unique_school()
    for school in (fresh_a, fresh_b):
        publish(stack, f"lordi/v1/{school}/d1/telemetry", [_sample(school, "d1", 1)])
    publish(stack, f"lordi/v1/{silent}/d1/telemetry", [_sample(silent, "d1", 180)])
    publish(
        stack, f"lordi/v1/{REGISTRY_SCHOOL}/{REGISTRY_DEVICE}/telemetry",
        [_sample(REGISTRY_SCHOOL, REGISTRY_DEVICE, 2, health=59.0)],
    )  # fmt: skip
    publish(stack, f"lordi/v1/{fresh_a}/flood/telemetry", [b"{not json"] * 30)
    _wait(alerts, "LordiIngestStalled", t2, firing=False)  # samples flow: resolved
    _wait(alerts, "LordiSchoolSilent", t2, school=silent)
    _wait(alerts, "LordiDeadLettersHigh", t2)
    _wait(alerts, "LordiOutboxFailing", t2, status="failed")  # given up at once
    silent_schools = {r.labels["school"] for r in alerts.alerts("LordiSchoolSilent", t2)}
    assert silent_schools == {silent}
    assert alerts.names(t2) <= {
        "LordiIngestStalled", "LordiSchoolSilent", "LordiDeadLettersHigh", "LordiOutboxFailing",
    }  # fmt: skip

    # 3. The broker stops: the collector runs (scraped, up) but is not connected.
    t3 = time.monotonic()
    stack.stop_process("mosquitto")
    _wait(alerts, "LordiCollectorDown", t3)
    stack.start_mosquitto()  # same port, same persistence: the collector reconnects
    _wait(alerts, "LordiCollectorDown", t3, firing=False)

    # 4. The store stops: the collector cannot write (a message waits meanwhile).
    t4 = time.monotonic()
    stack.stop_process("victoria-metrics")
    publish(stack, f"lordi/v1/{fresh_a}/d1/telemetry", [_sample(fresh_a, "d1", 0)])
    _wait(alerts, "LordiStoreWriteFailures", t4)

    # 5. The collector's process stops (by its PID): up == 0.
    t5 = time.monotonic()
    wall5 = time.time()
    collector.stop()
    _wait(alerts, "LordiCollectorDown", t5)
    [*_, down] = alerts.alerts("LordiCollectorDown", t5)
    assert datetime.fromisoformat(down.alert["startsAt"]).timestamp() >= wall5 - 1
    assert alerts.names() == ALERTS  # every rule fired
    assert set(alerts.posts) == {"/api/v2/alerts"}
