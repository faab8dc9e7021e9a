"""Collectors that own schools (issue 19), against the real servers: three partitioned
collectors with alerts on a shared PostgreSQL store, a standby for one of them; the
active one is killed with SIGKILL mid-ingest and the standby takes over its broker
session; then Mosquitto restarts under traffic. Every sample published reaches the
store, and the alerts are those a single unpartitioned collector raises from the
same telemetry (it runs beside them, with its own store and alert database)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from collector.alerts.store import AlertStore
from collector.partition import Partition, PartitionSettings
from lordi.collectorproc import CollectorProcess, write_collector_config
from lordi.pgschema import fresh_schema
from lordi.smtp import SmtpServer, running_smtp
from lordi.stack import LocalStack
from tests.alerts.helpers import POSTGRES_URL
from tests.helpers import unique_school
from tests.notify.registries import registry_toml, technician
from tests.reliability.servers import (
    SteadyPublisher,
    stored_total,
    wait_until,
)

COUNT = 3
SCHOOLS = 7
DEVICES = 4


@pytest.fixture
def pg_schema() -> Iterator[str]:
    """A fresh schema on the PostgreSQL server (dropped afterwards): the alert store."""
    with fresh_schema(POSTGRES_URL, "lordi_part_") as url:
        yield url


@pytest.fixture
def smtp(tmp_path: Path) -> Iterator[SmtpServer]:
    with running_smtp(tmp_path / "smtp") as server:
        yield server


@pytest.fixture
def second_store() -> Iterator[LocalStack]:
    """The single collector's own VictoriaMetrics, so it cannot fill the partitions' gaps."""
    stack = LocalStack()
    try:
        stack.start_victoriametrics()
        yield stack
    finally:
        stack.stop()


def _registry(path: Path, schools: list[str]) -> Path:
    """The first three schools placed by the registry (one per partition), the
    others by the hash of their UAI."""
    text = registry_toml({uai: technician(uai) for uai in schools})
    for i, uai in enumerate(schools[:COUNT]):
        text = text.replace(f"[schools.{uai}]\n", f"[schools.{uai}]\npartition = {i}\n")
    path.write_text(text, encoding="utf-8")
    return path


def _health(school: int) -> object:
    """A worn battery on about a third of the laptops, different ones per school."""
    return lambda device: 50.0 if (device + school) % 3 == 0 else 85.0


def _alerts(url: str) -> set[tuple[str, str, str, str]]:
    store = AlertStore(url)
    try:
        return {(a.school, a.device or "", a.rule, a.status) for a in store.list_alerts()}
    finally:
        store.close()


@pytest.mark.timeout(600)
def test_partitions_standby_takeover_and_broker_restart_lose_nothing_and_alert_alike(
    private_stack: LocalStack,
    second_store: LocalStack,
    pg_schema: str,
    smtp: SmtpServer,
    tmp_path: Path,
) -> None:
    schools = sorted(unique_school() for _ in range(SCHOOLS))
    registry = _registry(tmp_path / "schools.toml", schools)
    common = {
        "ingest": {"linger_ms": 50, "retry_initial_s": 0.2},
        "alerts.notify.smtp": {"host": "127.0.0.1", "port": smtp.port},
    }

    def config(name: str, vm_url: str, store_url: str, **more: dict[str, object]) -> Path:
        return write_collector_config(
            tmp_path / f"{name}.toml",
            more={**common, **more},
            mqtt={"port": private_stack.mqtt_port, "client_id": name, "share_group": ""},
            store={"url": vm_url},
            alerts={"enabled": True, "store_url": store_url, "registry": str(registry),
                    "sweep_interval_s": 2.0},
        )  # fmt: skip

    def part(index: int) -> dict[str, object]:
        return {"count": COUNT, "index": index, "lock": "postgresql",
                "standby_poll_s": 0.5, "lock_check_s": 1.0}  # fmt: skip

    run = uuid.uuid4().hex[:6]  # the locks are the database's: no other run's name
    configs = [
        config(f"part{i}-{run}", private_stack.vm_url, pg_schema, partition=part(i))
        for i in range(COUNT)
    ]
    # Each process of a partition names it the same way (same config file, same lock,
    # same MQTT session): the test's copies differ only by name for readability.
    actives = [CollectorProcess(c, tmp_path / f"part{i}.log") for i, c in enumerate(configs)]
    standby = CollectorProcess(configs[1], tmp_path / "part1-standby.log")
    single = CollectorProcess(
        config("single", second_store.vm_url, f"sqlite:///{tmp_path / 'single.sqlite3'}"),
        tmp_path / "single.log",
    )
    owned = {
        i: Partition(PartitionSettings(count=COUNT, index=i), "lordi/v1/+/+/telemetry",
                     lambda: {u: (k if k < COUNT else None) for k, u in enumerate(schools)}).owned()
        for i in range(COUNT)
    }  # fmt: skip
    assert sorted(u for us in owned.values() for u in us) == schools  # disjoint, complete
    publishers = [
        SteadyPublisher(private_stack.mqtt_port, uai, devices=DEVICES, per_message=5,
                        interval_s=0.1, health=_health(n))  # type: ignore[arg-type]
        for n, uai in enumerate(schools)
    ]  # fmt: skip
    everyone = [*actives, standby, single]
    try:
        for proc in actives:
            proc.spawn()
        for proc in actives:
            assert proc.wait_subscribed(), proc.this_run()[-3000:]
        standby.spawn()
        assert wait_until(lambda: b"standby" in standby.this_run(), 60), standby.this_run()
        single.spawn()
        assert single.wait_subscribed(), single.this_run()[-3000:]
        for i, proc in enumerate(actives):  # each subscribed to its own schools only
            expected = f"subscribed to {len(owned[i])} school topic(s) of partition {i} of 3"
            assert expected.encode() in proc.this_run(), proc.this_run()[-2000:]
        for pub in publishers:
            pub.begin()

        def every_school_stored(n: int) -> bool:
            return all(stored_total(private_stack.vm_url, uai) >= n for uai in schools)

        assert wait_until(lambda: every_school_stored(10), 90)
        actives[1].kill()  # SIGKILL mid-ingest: its lock's connection dies with it
        assert standby.wait_subscribed(60), standby.this_run()[-3000:]
        assert b"holds PostgreSQL advisory lock" in standby.this_run()
        before = {uai: stored_total(private_stack.vm_url, uai) for uai in owned[1]}
        assert wait_until(
            lambda: all(stored_total(private_stack.vm_url, u) > before[u] for u in owned[1]), 60
        ), "the standby did not take the partition's schools over"

        # The broker restarts under traffic (SIGTERM: it saves its sessions).
        private_stack.stop_process("mosquitto")
        time.sleep(2.0)
        private_stack.start_mosquitto()
        for proc in (actives[0], actives[2], standby, single):
            assert wait_until(lambda p=proc: p.this_run().count(b"subscribed to") >= 2, 60)
        time.sleep(3.0)
        for pub in publishers:
            pub.finish()
        sent = {pub.school: pub.sent_samples for pub in publishers}
        assert all(n > 50 for n in sent.values()), sent

        def all_stored(url: str) -> bool:
            return all(stored_total(url, uai) >= sent[uai] for uai in schools)

        assert wait_until(lambda: all_stored(private_stack.vm_url), 120)
        assert wait_until(lambda: all_stored(second_store.vm_url), 120)
        stored = {uai: stored_total(private_stack.vm_url, uai) for uai in schools}
        baseline = {uai: stored_total(second_store.vm_url, uai) for uai in schools}
        assert stored == sent == baseline  # nothing lost, nothing stored twice

        expected_alerts: set[tuple[str, str, str, str]] = set()

        def same_alerts() -> bool:
            nonlocal expected_alerts
            expected_alerts = _alerts(f"sqlite:///{tmp_path / 'single.sqlite3'}")
            return bool(expected_alerts) and _alerts(pg_schema) == expected_alerts

        assert wait_until(same_alerts, 60, 1.0), (_alerts(pg_schema), expected_alerts)
        worn = {
            (uai, f"dev-{d}") for n, uai in enumerate(schools) for d in range(DEVICES)
            if (d + n) % 3 == 0
        }  # fmt: skip
        assert {(s, d) for s, d, rule, _ in expected_alerts if rule == "battery_replace"} == worn
        codes = [proc.stop() for proc in (actives[0], actives[2], standby, single)]
        assert codes == [0, 0, 0, 0], [p.this_run()[-2000:] for p in everyone]
    finally:
        for proc in everyone:  # first: a leaked collector would hold its lock for good
            proc.stop()
        for pub in publishers:
            pub.finish(5)
    print(
        f"partitions: {SCHOOLS} schools over {COUNT} collectors, one killed and taken over "
        f"by its standby, broker restarted: {sum(sent.values())} samples published, "
        f"{sum(stored.values())} stored, {len(expected_alerts)} alerts, the same as "
        "a single collector's"
    )
