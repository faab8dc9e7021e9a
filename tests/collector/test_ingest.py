"""Building a write batch: one message at a time, a failure costs only its message."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from collector import ingest
from collector.ingest import build_batch

SCHOOL = "0341234A"


def message(device: str, samples: int = 2) -> tuple[str, bytes]:
    ts = [(datetime.now(UTC) - timedelta(minutes=m + 1)).isoformat() for m in range(samples)]
    body = {
        "schema": 1,
        "device": device,
        "school": SCHOOL,
        "agent_version": "1.0",
        "samples": [{"ts": t, "os": {"platform": "linux"}} for t in ts],
    }
    return f"lordi/v1/{SCHOOL}/{device}/telemetry", json.dumps(body).encode()


def test_spans_point_at_each_message_lines() -> None:
    batch = build_batch([message("a"), message("b", 3)])
    assert batch.sample_count == 5 and batch.messages == 2
    for topic, start, end, samples in batch.spans:
        device = topic.split("/")[3]
        assert end - start == samples
        assert all(f",device={device} " in line for line in batch.lines[start:end])


def test_a_collector_bug_dead_letters_only_its_message(monkeypatch: pytest.MonkeyPatch) -> None:
    real = ingest.append_message

    def broken(lines: list[str], school: str, device: str, *rest: Any, **kw: Any) -> list[str]:
        real(lines, school, device, *rest, **kw)  # half-written lines must not stay
        if device == "bad":
            raise KeyError("status")
        return lines

    monkeypatch.setattr(ingest, "append_message", broken)
    topic, payload = message("bad")
    batch = build_batch([message("a"), (topic, payload), message("b")])
    assert batch.sample_count == 4 and len(batch.lines) == 4
    assert not any("device=bad" in line for line in batch.lines)
    [letter] = batch.dead_letters
    assert (letter.topic, letter.payload) == (topic, payload)
    assert letter.reason == "collector error: KeyError: 'status'"


def test_a_collector_bug_leaves_one_dead_letter_for_the_message(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A message with a rejected sample, then a bug while encoding its good one: the
    whole message is one dead letter, not also its sample's (it would be sent twice)."""

    def broken(*_: Any, **__: Any) -> list[str]:
        raise KeyError("status")

    monkeypatch.setattr(ingest, "append_message", broken)
    topic, payload = message("bad", 1)
    doc = json.loads(payload)
    doc["samples"].append({"ts": "not a date", "os": {"platform": "linux"}})
    batch = build_batch([(topic, json.dumps(doc).encode())])
    [letter] = batch.dead_letters
    assert letter.reason == "collector error: KeyError: 'status'"
    assert (batch.rejected_messages, batch.rejected_samples, batch.sample_count) == (1, 0, 0)
