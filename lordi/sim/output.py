"""Where simulated laptops' messages go: an MQTT broker, or a folder of JSON lines.

Each laptop keeps its own `Agent` (spool, batching, envelopes: the real agent code);
only its link differs. Thousands of laptops share one MQTT connection here instead
of one each (one paho thread per laptop does not scale in one process); the broker
sees the same topics and payloads, QoS 1, but one client. `lordi bench storm`
is the benchmark that opens one connection per device.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

from lordi.sim.fleet import Fleet


class _Written(mqtt.MQTTMessageInfo):
    """A message a file sink wrote: "published" at once, as far as the agent knows."""

    def is_published(self) -> bool:
        return True


class FileLink:
    def __init__(self, sink: DirSink, topic: str) -> None:
        self.sink, self.topic = sink, topic

    def publish(self, payload: bytes) -> mqtt.MQTTMessageInfo:
        return self.sink.write(self.topic, payload)

    def up(self) -> bool:
        return True  # a file always takes what is written


class MqttLink:
    def __init__(self, sink: MqttSink, topic: str) -> None:
        self.sink, self.topic = sink, topic

    def publish(self, payload: bytes) -> mqtt.MQTTMessageInfo | None:
        return self.sink.publish(self.topic, payload)

    def up(self) -> bool:
        return self.sink.up()


class DirSink:
    """`messages.jsonl`: one line per MQTT message, {"topic": ..., "payload": {...}}."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self._out: IO[bytes] = (folder / "messages.jsonl").open("wb")
        self.messages = 0
        self._mid = 0

    def write(self, topic: str, payload: bytes) -> mqtt.MQTTMessageInfo:
        self._out.write(b'{"topic":"' + topic.encode() + b'","payload":' + payload + b"}\n")
        self.messages += 1
        self._mid += 1
        return _Written(self._mid)

    def attach(self, fleet: Fleet) -> None:
        for v in fleet.laptops:
            v.agent.link = FileLink(self, f"lordi/v1/{v.school}/{v.hardware.device}/telemetry")

    def close(self) -> None:
        self._out.close()

    def __enter__(self) -> DirSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class MqttSink:
    """One MQTT v5 connection publishing every laptop's telemetry topic at QoS 1."""

    def __init__(self, host: str, port: int, client_id: str = "lordi-simulate") -> None:
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5
        )
        self.client.max_inflight_messages_set(1000)
        self._connected = threading.Event()
        self.client.on_connect = lambda *a: self._connected.set()
        self.client.connect(host, port)
        self.client.loop_start()
        if not self._connected.wait(30):
            raise ConnectionError(f"no CONNACK from {host}:{port}")
        self.messages = 0

    def up(self) -> bool:
        return self._connected.is_set()

    def publish(self, topic: str, payload: bytes) -> mqtt.MQTTMessageInfo | None:
        info = self.client.publish(topic, payload, qos=1)
        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            return None  # stays in the laptop's spool; the driver pumps again later
        self.messages += 1
        return info

    def attach(self, fleet: Fleet) -> None:
        for v in fleet.laptops:
            v.agent.link = MqttLink(self, f"lordi/v1/{v.school}/{v.hardware.device}/telemetry")

    def close(self) -> None:
        """Disconnect. The driver drained every agent first: each waited for the
        broker's PUBACK of what it sent (`Agent.drain`)."""
        self.client.disconnect()
        self.client.loop_stop()

    def __enter__(self) -> MqttSink:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8") as out:
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n")
