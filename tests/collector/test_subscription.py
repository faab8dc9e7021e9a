"""Which topic filter the collector subscribes to (no broker needed)."""

from __future__ import annotations

from collector.config import CollectorSettings, MqttSettings
from collector.service import Collector


def _collector(share_group: str) -> Collector:
    settings = CollectorSettings(mqtt=MqttSettings(share_group=share_group))
    return Collector(settings, writer=object())  # type: ignore[arg-type]


def test_a_share_group_gives_a_shared_subscription() -> None:
    assert _collector("g1").topic_filter == "$share/g1/lordi/v1/+/+/telemetry"


def test_an_empty_share_group_gives_a_plain_subscription() -> None:
    assert _collector("").topic_filter == "lordi/v1/+/+/telemetry"
