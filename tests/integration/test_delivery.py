"""Delivery guarantees on real servers: ack only after the write, crash recovery,
retained status with a Last Will, reconnection after a broker restart."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from agent.config import MqttConfig
from agent.mqtt import Publisher
from agent.privacy import PrivacyPolicy
from agent.runtime import Agent
from agent.spool import Spool
from lordi.stack import LocalStack, free_port
from tests.helpers import (
    Subscriber,
    envelope,
    minimal_sample,
    publish,
    recent,
    running_collector,
    stored_count,
    unique_school,
    wait_stored,
)
from tests.integration.test_pipeline import FixedProvider, full_reading


def _collector_process(stack: LocalStack, store_url: str, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **stack.env(),
        "LORDI_COLLECTOR_STORE__URL": store_url,
        "LORDI_COLLECTOR_MQTT__CLIENT_ID": "crash-collector",
        # A group of its own: Mosquitto also gives a share of a group's messages to
        # disconnected members' persistent sessions (other tests' collectors).
        "LORDI_COLLECTOR_MQTT__SHARE_GROUP": "crash-test",
        "LORDI_COLLECTOR_INGEST__RETRY_INITIAL_S": "0.2",
    }
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "collector.cli", "run"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _wait_log(log: Path, text: bytes, timeout_s: float = 20) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if text in log.read_bytes():
            return True
        time.sleep(0.1)
    return False


def test_messages_are_acked_only_after_the_store_confirmed(
    stack: LocalStack, tmp_path: Path
) -> None:
    """Store down -> no ack; collector killed -9; store back -> every message stored once."""
    school = unique_school()
    log = tmp_path / "collector.log"
    dead_store = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    first = _collector_process(stack, dead_store, log)
    try:
        assert _wait_log(log, b"subscribed to"), log.read_text()
        publish(
            stack,
            f"lordi/v1/{school}/dev-crash/telemetry",
            [envelope(school, "dev-crash", [minimal_sample(recent(60 + i))]) for i in range(5)],
        )
        assert _wait_log(log, b"store unavailable"), log.read_text()
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    assert stored_count(stack, school) == 0
    second = _collector_process(stack, stack.vm_url, log)
    try:
        assert wait_stored(stack, school, 5) == 5
        time.sleep(1.0)  # a duplicate, if any, would arrive now
        assert stored_count(stack, school) == 5
    finally:
        second.terminate()
        second.wait(20)


def test_status_is_retained_online_and_the_will_says_offline(
    stack: LocalStack, tmp_path: Path
) -> None:
    school = unique_school()
    env = {
        **os.environ,
        "LORDI_AGENT_SCHOOL": school,
        "LORDI_AGENT_DEVICE": "dev-will",
        "LORDI_AGENT_MQTT__PORT": str(stack.mqtt_port),
        "LORDI_AGENT_SPOOL__PATH": str(tmp_path / "spool.sqlite3"),
    }
    agent = subprocess.Popen(
        [sys.executable, "-m", "agent.cli", "run"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    status = f"lordi/v1/{school}/dev-will/status"
    watcher = Subscriber(stack, status)
    try:
        assert watcher.wait_for(lambda m: any(p == b"online" for _, p, _ in m))
        agent.send_signal(signal.SIGKILL)
        agent.wait(10)
        assert watcher.wait_for(lambda m: m[-1][1] == b"offline", timeout_s=15)
    finally:
        watcher.close()
        if agent.poll() is None:
            agent.kill()
    late = Subscriber(stack, status)  # a newcomer gets the retained state
    try:
        assert late.wait_for(lambda m: m == [(status, b"offline", True)])
    finally:
        late.close()


def test_agent_and_collector_reconnect_after_a_broker_restart(stack: LocalStack) -> None:
    school = unique_school()
    clock_ts = [recent(100)]
    link = Publisher(MqttConfig(port=stack.mqtt_port), school, "dev-rc", max_delay_s=2)
    agent = Agent(
        school,
        "dev-rc",
        provider=FixedProvider(full_reading()),
        link=link,
        spool=Spool(None),
        policy=PrivacyPolicy(frozenset(), b""),
        clock=lambda: clock_ts[0],
    )
    with running_collector(stack) as collector:
        link.start()
        assert link.connected.wait(10)
        stack.stop_process("mosquitto")
        assert not link.connected.wait(0) or _wait_false(link.connected.is_set)
        for i in range(3):  # taken while the broker is down: they wait in the spool
            clock_ts[0] = recent(90 - i)
            agent.take_sample()
            agent.pump()
        assert agent.spool.pending() == 3
        stack.start_mosquitto()
        # The collector must be subscribed again before the backlog is sent:
        # Mosquitto 2.0 does not restore shared subscriptions from persistence.
        assert collector.connected.wait(20), "collector did not reconnect and resubscribe"
        assert link.connected.wait(20), "agent did not reconnect"
        assert agent.drain(20)
        assert wait_stored(stack, school, 3) == 3
    link.stop()


def _wait_false(pred: object, timeout_s: float = 10) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if callable(pred) and not pred():
            return True
        time.sleep(0.05)
    return False
