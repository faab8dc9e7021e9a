"""The collector's /metrics, /healthz and /readyz on real servers: a real
`lordi-collector run` process on the session's Mosquitto and VictoriaMetrics,
scraped by a VictoriaMetrics of the test's own through the shipped
provisioning/metrics/scrape.yml; readiness while a private store goes away and
comes back; the alerting's gauges from a real alert store."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from collector import compiled
from collector.alerting import Alerting
from collector.alerts.model import Category, Finding
from collector.alerts.store import AlertStore
from collector.config import MetricsSettings
from collector.rules import RulesConfig
from collector.service import Collector
from lordi.collectorproc import CollectorProcess
from lordi.stack import LocalStack, free_port
from tests.helpers import (
    envelope,
    minimal_sample,
    publish,
    recent,
    settings_for,
    unique_school,
    wait_stored,
)
from tests.metrics.helpers import (
    eventually,
    forget_session,
    get,
    private_vm,
    scrape_config,
)

JOB = '{job="lordi-collector"}'


def metrics_env(port: int, client_id: str, **extra: str) -> dict[str, str]:
    return {
        "LORDI_COLLECTOR_METRICS__ENABLED": "true",
        "LORDI_COLLECTOR_METRICS__PORT": str(port),
        "LORDI_COLLECTOR_METRICS__STORE_CHECK_S": "0.5",
        # A group of its own: Mosquitto also gives a share of a group's messages to
        # disconnected members' persistent sessions (other tests' collectors).
        "LORDI_COLLECTOR_MQTT__SHARE_GROUP": client_id,
        "LORDI_COLLECTOR_INGEST__RETRY_INITIAL_S": "0.2",
        "LORDI_COLLECTOR_INGEST__RETRY_MAX_S": "0.5",
        **extra,
    }


@pytest.fixture
def collector_process(stack: LocalStack, tmp_path: Path) -> Iterator[Any]:
    """Start `lordi-collector run` with metrics on (see metrics_env); stopped, and
    its broker session ended, after the test."""
    started: list[tuple[CollectorProcess, str]] = []

    def start(client_id: str, port: int, **extra: str) -> CollectorProcess:
        process = CollectorProcess.start(
            stack, client_id, env=metrics_env(port, client_id, **extra),
            log=tmp_path / f"{client_id}.log",
        )  # fmt: skip
        started.append((process, client_id))
        return process

    yield start
    for process, client_id in started:
        process.stop()
        forget_session(stack, client_id)


def scraped(metrics: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """Samples of one metric in a /metrics text: labels -> value."""
    out = {}
    for family in text_string_to_metric_families(metrics):
        for sample in family.samples:
            if sample.name == name:
                out[tuple(sorted(sample.labels.items()))] = sample.value
    return out


def epoch(ts: datetime) -> float:
    return ts.timestamp()


def test_figures_scraped_by_victoriametrics_equal_what_was_sent(
    stack: LocalStack, tmp_path: Path, collector_process: Any
) -> None:
    """Valid and invalid messages through the broker to a real collector process;
    a VictoriaMetrics scraping it every second (provisioning/metrics/scrape.yml)
    has the counts of what was sent, by reason, the newest sample time per school,
    the broker's $SYS figures and the process's own."""
    port = free_port()
    collector_process("metrics-scrape", port)
    base = f"http://127.0.0.1:{port}"
    config = scrape_config(tmp_path / "scrape.yml", "lordi-collector", f"127.0.0.1:{port}")
    with private_vm(tmp_path / "scraper", f"-promscrape.config={config}") as scraper:
        school_a, school_b = unique_school(), unique_school()
        newest_a, newest_b = recent(3), recent(7)
        topic_a = f"lordi/v1/{school_a}/{{}}/telemetry"
        good = [
            envelope(school_a, "d1", [minimal_sample(recent(20)), minimal_sample(recent(15))]),
            envelope(school_a, "d2", [minimal_sample(recent(12)), minimal_sample(newest_a)]),
            envelope(school_a, "d3", [minimal_sample(recent(30)), minimal_sample(recent(25))]),
        ]
        for i, payload in enumerate(good, start=1):
            publish(stack, topic_a.format(f"d{i}"), [payload])
        publish(stack, f"lordi/v1/{school_b}/b1/telemetry",
                [envelope(school_b, "b1", [minimal_sample(newest_b)])])  # fmt: skip
        # Rejections: not JSON (malformed), another school than the topic's (topic),
        # and a message with one good sample and two impossible ones (invalid).
        publish(stack, topic_a.format("d4"), [b"{not json"])
        publish(
            stack, topic_a.format("d5"), [envelope(school_b, "d5", [minimal_sample(recent(9))])]
        )
        publish(stack, topic_a.format("d6"), [envelope(school_a, "d6", [
            minimal_sample(recent(40)), minimal_sample(recent(41), health=512.0),
            minimal_sample(recent(42), health=-3.0),
        ])])  # fmt: skip
        assert wait_stored(stack, school_a, 7) == 7

        accepted = f"lordi_collector_samples_accepted_total{JOB}"
        assert eventually(lambda: scraper.value(accepted) == 8), scraper.value(accepted)
        value = scraper.value
        assert value(f"lordi_collector_messages_total{JOB}") == 7
        rejected = {
            r["metric"]["reason"]: r["value"]
            for r in scraper.query(f"lordi_collector_samples_rejected_total{JOB}")
        }
        assert rejected == {
            "invalid": 2, "malformed": 1, "topic": 1, "rate_limited": 0, "collector_error": 0,
        }  # fmt: skip

        def letters() -> dict[str, float]:
            return {
                r["metric"]["reason"]: r["value"]
                for r in scraper.query(f"lordi_collector_dead_letters_total{JOB}")
            }

        # Each one published to the dead-letter topic: counted once the broker has
        # acknowledged it, which a scrape may precede (seen once on CI's kind of machine).
        assert eventually(lambda: letters() == rejected), letters()
        assert value(f"lordi_collector_broker_connected{JOB}") == 1
        # make test compiles the hot modules (collector/compiled.py): the process runs them
        assert value(f"lordi_collector_compiled_modules{JOB}") == len(compiled.MODULES)
        assert value(f"lordi_collector_store_reachable{JOB}") == 1
        assert value(f'lordi_collector_store_writes_total{{outcome="ok",{JOB[1:]}') >= 1
        assert value(f'lordi_collector_store_writes_total{{outcome="retry",{JOB[1:]}') == 0
        assert value(f"lordi_collector_batch_samples_sum{JOB}") == 8
        assert value(f"lordi_collector_store_write_seconds_count{JOB}") >= 1
        assert value(f"lordi_collector_inflight_messages{JOB}") == 0
        last = "lordi_collector_last_sample_timestamp_seconds"
        assert value(f'{last}{{school="{school_a}"}}') == epoch(newest_a)
        assert value(f'{last}{{school="{school_b}"}}') == epoch(newest_b)
        # Mosquitto's $SYS (sys_interval 1 on the test stack): this collector at least.
        assert eventually(lambda: (value(f"lordi_broker_clients_connected{JOB}") or 0) >= 1)
        # Each $SYS topic is a message of its own, scraped when it has arrived.
        assert eventually(lambda: (value(f"lordi_broker_subscriptions{JOB}") or 0) >= 1)
        assert eventually(lambda: value(f"lordi_broker_messages_stored{JOB}") is not None)
        # The process's own figures (prometheus_client's process collector).
        assert (value(f"process_resident_memory_bytes{JOB}") or 0) > 10_000_000
        assert value(f"up{JOB}") == 1
        # Each thread's CPU (collector/threadcpu.py): the loops that took the messages
        # used some, and together about the process's (which counts in clock ticks).
        threads = {
            r["metric"]["thread"]: r["value"]
            for r in scraper.query(f"lordi_collector_thread_cpu_seconds_total{JOB}")
        }
        assert {"mqtt-network", "ingest", "writer-0", "metrics-http"} <= set(threads), threads
        assert not any(name.startswith("paho-") for name in threads), threads
        assert threads["mqtt-network"] > 0 and threads["ingest"] > 0, threads
        process = value(f"process_cpu_seconds_total{JOB}") or 0
        assert sum(threads.values()) <= 1.1 * process + 0.1, (threads, process)
        # No alerting here: none of its series.
        assert scraper.query(f"lordi_collector_open_alerts{JOB}") == []

    assert get(f"{base}/healthz") == (200, "live\n")
    assert get(f"{base}/readyz") == (200, "ready\n")
    status, _ = get(f"{base}/nothing")
    assert status == 404


def test_readyz_follows_the_store(
    stack: LocalStack, tmp_path: Path, collector_process: Any
) -> None:
    """/readyz: 200, then 503 naming the store while a private VictoriaMetrics is
    stopped (a message sent meanwhile waits, unacknowledged), 200 again when it is
    back; /healthz stays 200 throughout."""
    with private_vm(tmp_path / "store") as store:
        port = free_port()
        collector_process("metrics-ready", port, LORDI_COLLECTOR_STORE__URL=store.url)
        base = f"http://127.0.0.1:{port}"
        assert eventually(lambda: get(f"{base}/readyz") == (200, "ready\n"), 15)
        store.stop()
        status, reason = eventually(lambda: (r := get(f"{base}/readyz"))[0] == 503 and r, 15)
        assert status == 503, reason
        assert reason.startswith("not ready: store unavailable: ") and reason.count("\n") == 1
        assert get(f"{base}/healthz") == (200, "live\n")
        metrics = get(f"{base}/metrics")[1]
        assert scraped(metrics, "lordi_collector_store_reachable") == {(): 0.0}
        assert scraped(metrics, "lordi_collector_broker_connected") == {(): 1.0}

        school = unique_school()
        publish(stack, f"lordi/v1/{school}/d1/telemetry",
                [envelope(school, "d1", [minimal_sample(recent(5))])])  # fmt: skip
        writes = "lordi_collector_store_writes_total"
        assert eventually(
            lambda: scraped(get(f"{base}/metrics")[1], writes)[(("outcome", "retry"),)] >= 1, 15
        )
        assert scraped(get(f"{base}/metrics")[1], "lordi_collector_inflight_messages") == {(): 1.0}

        store.start()  # same folder, same port
        assert eventually(lambda: get(f"{base}/readyz") == (200, "ready\n"), 20)
        assert eventually(lambda: store.value(f'count(device_report{{school="{school}"}})') == 1)
        metrics = eventually(
            lambda: (
                (m := get(f"{base}/metrics")[1])
                and scraped(m, "lordi_collector_inflight_messages") == {(): 0.0}
                and m
            )
        )
        assert scraped(metrics, "lordi_collector_store_reachable") == {(): 1.0}
        assert scraped(metrics, "lordi_collector_samples_accepted_total") == {(): 1.0}


def test_readyz_503_without_the_broker_and_healthz_200(tmp_path: Path, stack: LocalStack) -> None:
    """Nothing listens on the broker's port: live, not ready, broker_connected 0."""
    port = free_port()
    env = {
        **stack.env(),
        **metrics_env(port, "metrics-nobroker"),
        "LORDI_COLLECTOR_MQTT__PORT": str(free_port()),
    }
    log = tmp_path / "collector.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "collector.cli", "run"], env=env, stdout=out,
            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        assert eventually(lambda: get(f"{base}/healthz")[0] == 200, 20), log.read_text()
        assert get(f"{base}/healthz") == (200, "live\n")
        assert get(f"{base}/readyz") == (
            503, "not ready: not connected and subscribed to the broker\n",
        )  # fmt: skip
        metrics = get(f"{base}/metrics")[1]
        assert scraped(metrics, "lordi_collector_broker_connected") == {(): 0.0}
        assert scraped(metrics, "lordi_broker_clients_connected") == {}
    finally:
        proc.terminate()
        proc.wait(20)


def test_the_metrics_port_taken_is_a_start_error(tmp_path: Path, stack: LocalStack) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "collector.cli", "run"],
            env={**stack.env(), **metrics_env(port, "metrics-taken")},
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert f"metrics: cannot listen on 127.0.0.1:{port} (Address already in use)" in done.stderr


# --- the alerting's gauges ---------------------------------------------------------


def finding(school: str, device: str, category: Category, rule: str) -> Finding:
    return Finding(
        rule=rule, key=f"{school}/{device}/{rule}", subject="device", school=school,
        device=device, category=category, severity="warning", active=True,
        at=datetime.now(UTC) - timedelta(hours=1), summary=rule, action="-",
    )  # fmt: skip


def test_alerting_gauges_from_the_alert_store(stack: LocalStack, tmp_path: Path) -> None:
    """Open alerts per category, the outbox's pending and failed rows, devices held
    and the rules' time: read from a real SQLite alert store by the refresh thread
    (every refresh_s), never on the ingest path."""
    store = AlertStore(f"sqlite:///{tmp_path / 'alerts.sqlite3'}")
    store.create_tables()
    school = unique_school()
    now = datetime.now(UTC)
    opened: list[tuple[Category, str]] = [
        ("hardware", "charging_fault"), ("hardware", "battery_watch"),
        ("network", "wifi_weak"), ("hardware", "battery_replace"),
    ]  # fmt: skip
    ids = [
        store.open_alert(finding(school, f"d{i}", category, rule), now).id
        for i, (category, rule) in enumerate(opened)
    ]
    store.resolve(ids[3], "test", note="fixed", at=now)
    for alert_id in ids[:3]:
        store.enqueue(alert_id, "opened", now)
    claimed = store.outbox.claim(now, limit=1)
    store.outbox.retry(claimed[0].id, ["mail"], "refused", now, give_up=True)

    port = free_port()
    # Its own session and share group: the shared "test-collector" session may hold
    # other tests' queued messages, whose ingest under the alerting's lock delays the
    # refresh past the wait below (seen once in a full CI run).
    settings = settings_for(stack, client_id="metrics-alerting")
    settings = settings.model_copy(
        update={
            "metrics": MetricsSettings(enabled=True, port=port, refresh_s=1),
            "mqtt": settings.mqtt.model_copy(update={"share_group": "metrics-alerting"}),
        }
    )
    collector = Collector(settings, alerting=Alerting(RulesConfig(), store))
    collector.start()
    try:
        assert collector.connected.wait(10)
        base = f"http://127.0.0.1:{port}"

        def figures() -> str:
            return get(f"{base}/metrics")[1]

        text = eventually(lambda: (m := figures()) and "lordi_collector_open_alerts" in m and m)
        assert scraped(text, "lordi_collector_open_alerts") == {
            (("category", "hardware"),): 2.0, (("category", "network"),): 1.0,
        }  # fmt: skip
        assert scraped(text, "lordi_collector_outbox_notifications") == {
            (("status", "pending"),): 2.0, (("status", "failed"),): 1.0,
            (("status", "digest"),): 0.0,
        }  # fmt: skip
        assert scraped(text, "lordi_collector_devices_tracked") == {(): 0.0}
        assert scraped(text, "lordi_collector_samples_late_total") == {(): 0.0}
        publish(stack, f"lordi/v1/{school}/d9/telemetry",
                [envelope(school, "d9", [minimal_sample(recent(5))])])  # fmt: skip
        assert eventually(
            lambda: scraped(figures(), "lordi_collector_devices_tracked") == {(): 1.0}, 15
        ), figures()
        text = figures()
        assert scraped(text, "lordi_collector_rules_seconds_count") == {(): 1.0}
        assert scraped(text, "lordi_collector_alerting_errors_total") == {(): 0.0}
    finally:
        collector.stop()
        forget_session(stack, "metrics-alerting")  # nothing queued for it afterwards
    assert get(f"{base}/metrics")[0] == 0  # the server stopped with the collector


def test_metrics_off_by_default(stack: LocalStack) -> None:
    collector = Collector(settings_for(stack))
    assert collector.metrics is None
    collector.store_writer.close()
    assert MetricsSettings().model_dump() == {
        "enabled": False, "host": "127.0.0.1", "port": 9108, "broker_sys": True,
        "refresh_s": 15.0, "store_check_s": 10.0,
    }  # fmt: skip
