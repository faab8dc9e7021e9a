"""Reachability on a school network, end to end: the real service loop
(`agent.service.run`, single-threaded, with the real Publisher and Agent) on a
laptop associated with the school's Wi-Fi, against a broker name that does not
resolve, a closed port, a captive portal answering the TLS port, and a real
Mosquitto that comes up while the laptop waits. The `connectivity` blocks are read
where they end up: in the spool while cut off, at the broker once connected.

Intervals are shrunk to 1 s (the config file would refuse them; the dataclasses are
built directly) so that each case takes a few seconds.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from agent import service
from agent.config import AgentConfig
from agent.mqtt import Publisher
from agent.reach import ReachWatch
from agent.spool import Spool
from collector.contract import Connectivity
from lordi.stack import LocalStack, free_port
from tests.agent.test_connectivity_failures import TlsImpostor
from tests.helpers import unique_school
from tests.integration.test_pipeline import FixedProvider, full_reading
from tests.secure_broker import make_certs

SCHOOL_SSID = "LORDI-EDU"  # full_reading()'s network


def school_laptop(tmp_path: Path, host: str, port: int, **mqtt_kw: Any) -> AgentConfig:
    cfg = AgentConfig(school=unique_school(), device=f"dev-reach-{uuid.uuid4().hex[:8]}")
    cfg.mqtt.host, cfg.mqtt.port = host, port
    for key, value in mqtt_kw.items():
        setattr(cfg.mqtt, key, value)
    cfg.cadence.report_interval_s = 1
    cfg.cadence.wifi_interval_s = 1
    cfg.cadence.drain_spread_s = 0
    cfg.privacy.school_ssids = [SCHOOL_SSID]
    cfg.privacy.bssid_key = "k"
    cfg.spool.path = str(tmp_path / "spool.sqlite3")
    return cfg


class GatewayProbe:
    """Stands for the live gateway check: counts the calls, answers `answer`."""

    def __init__(self, answer: bool | None) -> None:
        self.answer, self.calls = answer, 0

    def __call__(self) -> bool | None:
        self.calls += 1
        return self.answer


@contextmanager
def running(cfg: AgentConfig, gateway: Callable[[], bool | None]) -> Iterator[None]:
    stop = threading.Event()
    thread = threading.Thread(
        target=service.run,
        args=(cfg, stop, FixedProvider(full_reading())),
        kwargs={"gateway_check": gateway},
        daemon=True,
    )
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(30)
        assert not thread.is_alive(), "the agent did not stop"


def spooled(cfg: AgentConfig) -> list[dict[str, Any]]:
    spool = Spool(Path(cfg.spool.path))
    try:
        return [json.loads(body) for _, body in spool.batch(0, 10_000, 10**9)]
    finally:
        spool.close()


def cut_off_for(cfg: AgentConfig, seconds: float, answer: bool | None) -> list[dict[str, Any]]:
    """Run the laptop `seconds` with the broker out of reach; its spooled samples."""
    probe = GatewayProbe(answer)
    with running(cfg, probe):
        time.sleep(seconds)
    samples = spooled(cfg)
    assert len(samples) >= 2 and probe.calls >= 1
    for s in samples:
        Connectivity.model_validate(s["connectivity"])  # what the collector accepts
    return samples


def failures(samples: list[dict[str, Any]]) -> set[str]:
    """The causes named (a report names the last failure of its own window only)."""
    return {s["connectivity"]["failure"] for s in samples if s["connectivity"]["failure"]}


def test_a_name_that_does_not_resolve_is_a_dns_failure(tmp_path: Path) -> None:
    cfg = school_laptop(tmp_path, "lordi-broker.invalid", 8883)
    samples = cut_off_for(cfg, 3.5, answer=True)
    last = samples[-1]["connectivity"]
    assert failures(samples) == {"dns"} and last["dns_ok"] is False
    assert last["broker_ok"] is False and last["gateway_ok"] is True
    assert sum(s["connectivity"]["school_unreachable_s"] for s in samples) > 2
    assert sum(s["connectivity"]["failed_attempts"] for s in samples) >= 1
    assert all(s["connectivity"]["school_online_s"] == 0 for s in samples)


def test_a_closed_port_is_a_connect_failure(tmp_path: Path) -> None:
    # "localhost" resolves (dns_ok true); nothing listens on the port.
    cfg = school_laptop(tmp_path, "localhost", free_port())
    samples = cut_off_for(cfg, 3.5, answer=False)
    last = samples[-1]["connectivity"]
    assert failures(samples) == {"connect"} and last["dns_ok"] is True
    assert last["broker_ok"] is False and last["gateway_ok"] is False
    assert last["connect_delay_s"] is None


def test_a_captive_portal_on_the_tls_port_is_a_tls_failure(tmp_path: Path) -> None:
    ours = tmp_path / "our-ca"
    ours.mkdir()
    make_certs(ours)
    portal = TlsImpostor(tmp_path / "portal", "tls")
    try:
        cfg = school_laptop(
            tmp_path, "127.0.0.1", portal.port, tls=True, ca_file=str(ours / "ca.crt")
        )
        samples = cut_off_for(cfg, 3.5, answer=None)
    finally:
        portal.close()
    last = samples[-1]["connectivity"]
    assert failures(samples) == {"tls"}
    assert last["dns_ok"] is None  # an address: nothing to resolve
    assert last["broker_ok"] is False and last["gateway_ok"] is None


class Watcher:
    """A persistent MQTT session on the telemetry topic that outlives broker restarts
    (paho reconnects by itself; the broker queues for the session meanwhile)."""

    def __init__(self, port: int, topic: str) -> None:
        self.samples: list[tuple[float, dict[str, Any]]] = []  # (arrival, sample)
        self._lock = threading.Lock()
        self.subscribed = threading.Event()
        c = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"reach-watch-{uuid.uuid4().hex[:8]}",
            protocol=mqtt.MQTTv5,
        )
        c.reconnect_delay_set(min_delay=1, max_delay=1)
        c.on_connect = lambda cl, *_: cl.subscribe(topic, qos=1)
        c.on_subscribe = lambda *_: self.subscribed.set()
        c.on_message = self._on_message
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 600
        c.connect("127.0.0.1", port, clean_start=False, properties=props)
        c.loop_start()
        self.client = c

    def _on_message(self, _c: object, _u: object, msg: mqtt.MQTTMessage) -> None:
        now = time.time()
        with self._lock:
            self.samples.extend((now, s) for s in json.loads(msg.payload)["samples"])

    def all(self) -> list[tuple[float, dict[str, Any]]]:
        with self._lock:
            return sorted(self.samples, key=lambda a: a[1]["ts"])

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def wait_for(check: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return check()


def test_the_morning_connection_is_timed_and_the_backlog_arrives(tmp_path: Path) -> None:
    broker = LocalStack(mqtt_port=free_port(), keep_files=True)
    cfg = school_laptop(tmp_path, "127.0.0.1", broker.mqtt_port)
    topic = f"lordi/v1/{cfg.school}/{cfg.device}/telemetry"
    # A session that subscribes before the laptop is there, then waits through the
    # outage: nothing the laptop sends later can be missed.
    broker.start_mosquitto()
    watcher = Watcher(broker.mqtt_port, topic)
    assert watcher.subscribed.wait(10)
    broker.stop_process("mosquitto")
    probe = GatewayProbe(True)
    try:
        associated = time.time()
        with running(cfg, probe):
            time.sleep(3.0)  # at school, the broker down: spooling
            came_up = time.time()
            broker.start_mosquitto()

            def morning() -> bool:
                return any(s["connectivity"]["connect_delay_s"] for _, s in watcher.all())

            assert wait_for(morning, 20), "no report with a connection delay"
            checks_when_connected = probe.calls
            # A few reports while connected: online time and round trips.
            assert wait_for(
                lambda: sum(s["connectivity"]["broker_ok"] is True for _, s in watcher.all()) >= 3,
                10,
            )
        received = watcher.all()
    finally:
        watcher.close()
        broker.stop()
    samples = [s for _, s in received]
    for s in samples:
        Connectivity.model_validate(s["connectivity"])
    # The backlog spooled while cut off arrived, with its unreachable time.
    cut_off = [s["connectivity"] for s in samples if s["connectivity"]["broker_ok"] is False]
    assert len(cut_off) >= 2
    assert sum(c["school_unreachable_s"] for c in cut_off) >= 2.0
    assert all(c["failure"] == "connect" for c in cut_off if c["failed_attempts"])
    assert any(c["gateway_ok"] is True for c in cut_off)
    # The morning report: taken as soon as the broker answered, with the delay from
    # the association (the agent's start) to the first PUBACK.
    (arrival, first), *_ = [(t, s) for t, s in received if s["connectivity"]["connect_delay_s"]]
    delay = first["connectivity"]["connect_delay_s"]
    assert came_up - associated - 0.5 <= delay <= arrival - associated + 0.5
    assert first["connectivity"]["broker_ok"] is True
    later = [s["connectivity"] for s in samples if s["ts"] > first["ts"]]
    assert later and all(c["broker_ok"] is True and c["connect_delay_s"] is None for c in later)
    assert any(c["school_online_s"] > 0 for c in later)
    assert all(c["broker_rtt_ms"] is not None and c["broker_rtt_ms"] > 0 for c in later[1:])
    # No gateway check once connected.
    assert probe.calls == checks_when_connected


def _serve(link: Publisher, until: Callable[[], bool], timeout_s: float = 10) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not until():
        link.service(0.05)
    return until()


def test_a_lost_connection_is_closed_and_a_clean_stop_is_not(tmp_path: Path) -> None:
    broker = LocalStack(mqtt_port=free_port())
    broker.start_mosquitto()
    cfg = school_laptop(tmp_path, "127.0.0.1", broker.mqtt_port)
    try:
        reach = ReachWatch()
        link = Publisher(cfg.mqtt, cfg.school, cfg.device, threaded=False, reach=reach)
        link.start()
        reach.look(True, link.up(), time.time())  # associated, not yet connected
        assert _serve(link, lambda: reach.connect_delay_s is not None)  # "online" acked
        assert reach.rtts_ms and reach.rtts_ms[0] > 0
        broker.stop_process("mosquitto")  # the school's uplink goes down
        assert _serve(link, lambda: not link.up())
        reach.look(True, link.up(), time.time())
        lost = reach.summary()
        assert lost is not None and lost["failure"] == "closed" and lost["broker_ok"] is False
        broker.start_mosquitto()
        assert _serve(link, link.up, 30)
        reach.look(True, link.up(), time.time())
        back = reach.summary()
        assert back is not None and back["broker_ok"] is True
        assert back["failure"] in (None, "connect")  # attempts while it was down
        link.stop()
        reach.look(True, link.up(), time.time())
        stopped = reach.summary()
        assert stopped is not None and stopped["failure"] is None
        assert stopped["failed_attempts"] == 0
    finally:
        broker.stop()
