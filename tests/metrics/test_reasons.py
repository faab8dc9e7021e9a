"""The `reason` label from the reason texts the collector really writes, and the rate
limiter's count of devices it currently refuses (no server needed)."""

from __future__ import annotations

import json

import pytest

from collector.ingest import Batch, build_batch
from collector.metrics import REASONS, reason_class
from collector.ratelimit import DeviceRateLimiter
from collector.validate import MessageRejected, check_message, parse_topic
from tests.helpers import envelope, minimal_sample, recent

SCHOOL = "0341234A"
TOPIC = f"lordi/v1/{SCHOOL}/d1/telemetry"


def rejection(topic: str, payload: bytes) -> str:
    with pytest.raises(MessageRejected) as info:
        check_message(topic, payload)
    return info.value.reason


@pytest.mark.parametrize(
    ("topic", "payload", "expected"),
    [
        (TOPIC, b"{not json", "malformed"),
        (TOPIC, b"\xff\xfe\x00garbage", "malformed"),
        (TOPIC, b"[" * 100_000, "malformed"),  # nested too deeply, or not JSON
        ("lordi/v1/0341234A/d1/status", b"{}", "topic"),
        ("lordi/v1/nope/d1/telemetry", b"{}", "topic"),
        ("lordi/v1/0341234A/bad device/telemetry", b"{}", "topic"),
        (TOPIC, envelope("0341234B", "d1", [minimal_sample(recent(5))]), "topic"),
        (TOPIC, envelope(SCHOOL, "d2", [minimal_sample(recent(5))]), "topic"),
        (TOPIC, json.dumps({"schema": 2}).encode(), "invalid"),
        (TOPIC, b"x" * 300_000, "invalid"),  # over the contract's size limit
        (TOPIC, envelope(SCHOOL, "d1", []), "invalid"),
    ],
)
def test_whole_message_rejections(topic: str, payload: bytes, expected: str) -> None:
    assert reason_class(rejection(topic, payload)) == expected


def test_sample_rejections_are_invalid() -> None:
    payload = envelope(SCHOOL, "d1", [minimal_sample(recent(5), health=512.0)])
    checked = check_message(TOPIC, payload)
    assert [reason_class(r.reason) for r in checked.rejected] == ["invalid"]


def test_rate_limited_and_collector_errors() -> None:
    limiter = DeviceRateLimiter(burst=1, per_s=0.001)
    payload = envelope(SCHOOL, "d1", [minimal_sample(recent(5))])
    batch = build_batch([(TOPIC, payload), (TOPIC, payload)], limiter, now=1.0)
    assert [reason_class(d.reason) for d in batch.dead_letters] == ["rate_limited"]
    assert reason_class("collector error: KeyError: 'x'") == "collector_error"
    # A store's refusal of a message (ingest.isolate) is about the data.
    assert reason_class("store refused the write: HTTP 400 bad field") == "invalid"


def test_every_class_is_a_label() -> None:
    texts = [
        "rate limited: ...",
        "collector error: ...",
        "payload: not JSON (x)",
        "topic: x",
        "a: b",
    ]
    assert {reason_class(t) for t in texts} == set(REASONS)


def test_the_parsers_wording_is_what_the_classes_read() -> None:
    """If validate.py rewords a topic rejection, this fails before the label drifts."""
    with pytest.raises(MessageRejected, match=r"^topic"):
        parse_topic("a/b")
    batch = Batch()
    batch.add(TOPIC, b"{", None, 0.0)
    assert [d.reason.startswith("payload: not JSON") for d in batch.dead_letters] == [True]


def test_limited_devices_follow_the_latest_verdict() -> None:
    limiter = DeviceRateLimiter(burst=2, per_s=1.0, max_devices=3)
    for _ in range(3):
        limiter.check(SCHOOL, "flood", 0.0)
    assert limiter.limited == 1
    limiter.check(SCHOOL, "flood", 0.5)  # still refused: counted once
    assert limiter.limited == 1
    limiter.check(SCHOOL, "other", 0.5)
    assert limiter.limited == 1
    assert limiter.check(SCHOOL, "flood", 2.0).allowed  # refilled: no longer limited
    assert limiter.limited == 0
    for _ in range(3):
        limiter.check(SCHOOL, "flood", 2.0)
    assert limiter.limited == 1
    for i in range(4):  # past max_devices: the limited bucket is forgotten
        limiter.check(SCHOOL, f"new-{i}", 2.1)
    assert limiter.limited == 0
