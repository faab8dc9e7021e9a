"""The benchmarks' minimal MQTT v5 publisher: packets a real Mosquitto accepts, every
PUBACK counted, the broker's Receive Maximum honoured."""

from __future__ import annotations

import struct
import uuid

import pytest

from lordi.bench import mqttpub
from lordi.stack import LocalStack
from tests.helpers import Subscriber


def test_every_message_reaches_a_subscriber_once_and_every_puback_is_counted(
    stack: LocalStack,
) -> None:
    prefix = f"bench-test/{uuid.uuid4().hex}"
    sub = Subscriber(stack, f"{prefix}/#")
    try:
        messages = [
            (f"{prefix}/{i % 7}", f"payload {i} ".encode() * (i % 300 + 1)) for i in range(700)
        ]
        result = mqttpub.publish_all(stack.mqtt_port, messages)
        assert result["acked"] == 700 and result["seconds"] > 0 and result["cpu_s"] >= 0
        assert sub.wait_for(lambda m: len(m) >= 700)
    finally:
        sub.close()
    got = sorted((t, p) for t, p, _ in sub.messages)
    assert got == sorted(messages)


def _connack(props: bytes) -> bytes:
    return bytes([0, 0]) + mqttpub._varint(len(props)) + props


def test_receive_maximum_is_read_among_other_properties() -> None:
    reason = b"\x1f" + struct.pack("!H", 3) + b"abc"
    user = b"\x26" + struct.pack("!H", 1) + b"k" + struct.pack("!H", 2) + b"vv"
    others = b"\x22\x00\x0a" + b"\x27\x00\x01\x00\x00" + b"\x24\x01" + reason + user
    assert mqttpub.receive_maximum(_connack(others + b"\x21\x00\x14")) == 20
    assert mqttpub.receive_maximum(_connack(others)) == 65_535
    assert mqttpub.receive_maximum(_connack(b"")) == 65_535


def test_a_refused_connection_says_why() -> None:
    with pytest.raises(ConnectionError, match="reason 135"):
        mqttpub.receive_maximum(bytes([0, 0x87, 0]))


def test_variable_byte_integers_round_trip() -> None:
    for n in (0, 1, 127, 128, 16_383, 16_384, 2_097_151, 2_097_152, 268_435_455):
        encoded = mqttpub._varint(n)
        assert mqttpub._read_varint(encoded, 0) == (n, len(encoded))
