"""The alert topic's publishes reuse one connection (collector/notify/mqtt_publish.py),
on the real broker; a kept connection that the broker dropped is replaced."""

from __future__ import annotations

import json

import pytest

from collector.notify import mqtt_publish
from collector.notify.settings import AlertTopicSettings
from lordi.stack import LocalStack
from tests.helpers import Subscriber, unique_school


def test_twenty_publishes_one_connection_and_a_dropped_one_replaced(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    made: list[object] = []
    real = mqtt_publish._Publish

    def counting(*args: object, **kwargs: object) -> object:
        made.append(args)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(mqtt_publish, "_Publish", counting)
    stack = LocalStack()
    stack.start_mosquitto()
    try:
        broker = AlertTopicSettings(port=stack.mqtt_port)
        topic = f"lordi/v1/{unique_school()}/alerts"
        for n in range(20):
            assert mqtt_publish.publish_retained(broker, topic, json.dumps([n]).encode()) is None
        assert len(made) == 1
        stack.stop_process("mosquitto")  # drops the kept connection
        stack.start_mosquitto()
        assert mqtt_publish.publish_retained(broker, topic, b"[20]") is None
        assert len(made) == 2  # the dead connection was noticed and replaced once
        watcher = Subscriber(stack, topic)
        try:
            assert watcher.wait_for(lambda got: any(p == b"[20]" and r for _, p, r in got))
        finally:
            watcher.close()
    finally:
        mqtt_publish.close()
        stack.stop()
