"""Test helpers that talk to the real servers of the session's stack."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from collector.config import (
    CollectorSettings,
    IngestSettings,
    MqttSettings,
    RateLimitSettings,
    StoreSettings,
)
from collector.service import Collector
from lordi import vm
from lordi.stack import LocalStack


def unique_school() -> str:
    """A fresh UAI per test, so tests sharing the store never see each other's series."""
    return f"{uuid.uuid4().int % 10**7:07d}T"


def settings_for(
    stack: LocalStack, client_id: str | None = None, string_fields: bool = False, **ingest: Any
) -> CollectorSettings:
    return CollectorSettings(
        # One stable id, as in production: a shared subscription also round-robins to
        # the persistent sessions of disconnected members, so a fresh id per test
        # would leave sessions behind that swallow later tests' messages.
        mqtt=MqttSettings(port=stack.mqtt_port, client_id=client_id or "test-collector"),
        # VictoriaMetrics: no string fields, as configured in production (lineproto.py)
        store=StoreSettings(url=stack.vm_url, string_fields=string_fields),
        # The rate limit is off unless a test asks for it (tests/integration/
        # test_ratelimit.py): the durability tests drive one device far faster than a
        # laptop ever reports, which is exactly what the limit exists to stop.
        ingest=IngestSettings(
            **{
                "linger_ms": 20,
                "retry_initial_s": 0.2,
                "rate_limit": RateLimitSettings(enabled=False),
                **ingest,
            }
        ),
    )


@contextmanager
def running_collector(stack: LocalStack, **kw: Any) -> Iterator[Collector]:
    collector = Collector(settings_for(stack, **kw))
    collector.start()
    assert collector.connected.wait(10), "collector did not connect"
    time.sleep(0.2)  # let the SUBSCRIBE reach the broker
    try:
        yield collector
    finally:
        collector.stop()


class Subscriber:
    """A plain MQTT v5 client collecting what arrives on a topic filter."""

    def __init__(self, stack: LocalStack, topic: str) -> None:
        self.messages: list[tuple[str, bytes, bool]] = []
        self._lock = threading.Lock()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self.client.on_message = lambda c, u, m: self._add(m.topic, bytes(m.payload), m.retain)
        self.client.connect("127.0.0.1", stack.mqtt_port)
        self.client.subscribe(topic, qos=1)
        self.client.loop_start()
        time.sleep(0.3)

    def _add(self, topic: str, payload: bytes, retain: bool) -> None:
        with self._lock:
            self.messages.append((topic, payload, retain))

    def wait_for(
        self, pred: Callable[[list[tuple[str, bytes, bool]]], bool], timeout_s: float = 10
    ) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                if pred(list(self.messages)):
                    return True
            time.sleep(0.05)
        return False

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def publish(stack: LocalStack, topic: str, payloads: list[bytes]) -> None:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.connect("127.0.0.1", stack.mqtt_port)
    client.loop_start()
    infos = [client.publish(topic, p, qos=1) for p in payloads]
    for info in infos:
        info.wait_for_publish(10)
    client.disconnect()
    client.loop_stop()


def envelope(school: str, device: str, samples: list[dict[str, Any]]) -> bytes:
    return json.dumps(
        {
            "schema": 1,
            "device": device,
            "school": school,
            "agent_version": "test",
            "samples": samples,
        }
    ).encode()


def minimal_sample(ts: datetime, health: float = 80.0) -> dict[str, Any]:
    return {
        "ts": ts.isoformat().replace("+00:00", "Z"),
        "os": {"platform": "linux"},
        "batteries": [
            {"name": "BAT0", "present": True, "status": "discharging", "health_pct": health}
        ],
    }


def recent(minutes_ago: int) -> datetime:
    return (datetime.now(UTC) - timedelta(minutes=minutes_ago)).replace(microsecond=0)


def stored_count(stack: LocalStack, school: str, metric: str = "device_report") -> int:
    vm.force_flush(stack.vm_url)
    rows = vm.export(stack.vm_url, f'{metric}{{school="{school}"}}')
    return sum(len(r["values"]) for r in rows)


def wait_stored(stack: LocalStack, school: str, expected: int, timeout_s: float = 15) -> int:
    deadline = time.monotonic() + timeout_s
    n = 0
    while time.monotonic() < deadline:
        n = stored_count(stack, school)
        if n >= expected:
            return n
        time.sleep(0.2)
    return n


def full_sample(ts: datetime, bssid_hash: str | None = None) -> dict[str, Any]:
    """A sample with every contract field set (one battery, Wi-Fi, connectivity, agent)."""
    return {
        "ts": ts.isoformat().replace("+00:00", "Z"),
        "os": {"platform": "windows", "release": "10.0.22631"},
        "batteries": [
            {
                "name": "BAT0",
                "present": True,
                "status": "charging",
                "percent": 55.0,
                "plugged": True,
                "design_capacity_mwh": 50000.0,
                "full_capacity_mwh": 45000.0,
                "health_pct": 90.0,
                "cycle_count": 120,
                "voltage_mv": 12000.0,
                "temperature_c": 35.5,
                "manufacturer": "LGC",
                "model": "L19L3PD1",
                "technology": "Li-ion",
            }
        ],
        "wifi": {
            "interface": "Wi-Fi",
            "connected": True,
            "ssid": None,
            "ssid_state": "other",
            "on_school_network": False,
            "bssid_hash": bssid_hash,
            "rssi_dbm": -70.0,
            "signal_pct": 60.0,
            "noise_dbm": -95.0,
            "channel": 6,
            "band_ghz": 2.4,
            "rx_rate_mbps": 72.2,
            "tx_rate_mbps": 65.0,
            "radio": "802.11n",
            "rssi_min_dbm": -77.0,
            "disconnects": 2,
            "connected_s": 280.0,
        },
        "connectivity": {"broker_rtt_ms": 42.5, "dns_ok": True, "gateway_ok": False},
        "agent": {"spool_pending": 3, "spool_dropped": 0},
    }


def json_paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key and index path inside a JSON document (for mutation tests)."""
    out = [prefix] if prefix else []
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += json_paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += json_paths(v, (*prefix, i))
    return out


def influx_request(url: str, body: bytes = b"") -> tuple[int, bytes]:
    """POST to a test InfluxDB 1.x: (status, body). A write answered 404 "database not
    found" right after CREATE DATABASE is tried again for a few seconds (a known
    InfluxDB 1.x race, influxdata/influxdb#5547; seen in three CI runs on a loaded
    machine); any other answer is returned at once."""
    deadline = time.monotonic() + 5
    while True:
        req = urllib.request.Request(url, data=body, method="POST")  # noqa: S310 - loopback
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 - loopback
                return int(resp.status), bytes(resp.read())
        except urllib.error.HTTPError as exc:
            if exc.code != 404 or time.monotonic() > deadline:
                return int(exc.code), bytes(exc.read())
        time.sleep(0.2)


def influx_post(url: str, body: bytes = b"") -> None:
    """`influx_request` that fails unless InfluxDB accepted, with InfluxDB's own message."""
    status, answer = influx_request(url, body)
    if status not in (200, 204):
        message = answer.decode(errors="replace")
        raise AssertionError(f"{url}: HTTP {status}: {message}")
