"""The simulator's memory spool keeps the agent spool's contract, and `lordi simulate`
publishes to a real Mosquitto (the session's private stack)."""

from __future__ import annotations

import json
import threading
import time
from datetime import date

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from agent.spool import SpoolLimits
from lordi.sim.spool import MemorySpool
from lordi.simulate import Options, parse_faults, run
from lordi.stack import LocalStack


def test_memory_spool_batches_oldest_first_within_bounds() -> None:
    spool = MemorySpool(SpoolLimits(max_samples=100))
    ids = [spool.put("x" * 10, float(i)) for i in range(5)]
    assert [i for i, _ in spool.batch(0, 3, 10_000)] == ids[:3]
    assert [i for i, _ in spool.batch(ids[1], 10, 10_000)] == ids[2:]
    assert len(spool.batch(0, 10, 25)) == 2  # 11 bytes a sample with its comma
    assert len(spool.batch(0, 10, 1)) == 1  # at least one, whatever its size
    spool.ack(ids[:2])
    assert spool.pending() == 3
    for i in range(200):
        spool.put("y", float(i))
    assert spool.pending() == 100
    assert spool.take_dropped() == 103 and spool.take_dropped() == 0


def test_publishes_every_message_to_the_broker(stack: LocalStack) -> None:
    got: list[int] = [0]
    lock = threading.Lock()

    def on_message(client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        with lock:
            got[0] += len(json.loads(msg.payload)["samples"])

    sub = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    sub.on_message = on_message
    sub.connect("127.0.0.1", stack.mqtt_port)
    sub.subscribe("lordi/v1/+/+/telemetry", qos=1)
    sub.loop_start()
    try:
        time.sleep(0.5)
        opts = Options(
            schools=2,
            per_school=5,
            start=date(2026, 11, 16),
            days=2,
            seed=1,
            faults=parse_faults("none"),
            interval_min=60,
        )
        summary = run(opts, mqtt=("127.0.0.1", stack.mqtt_port), quiet=True)
        deadline = time.monotonic() + 30
        while got[0] < summary["samples"] and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        sub.disconnect()
        sub.loop_stop()
    assert 0 < summary["messages"] <= summary["samples"]  # a batch when acks lag behind
    assert summary["laptops_not_drained"] == 0
    assert got[0] == summary["samples"]
