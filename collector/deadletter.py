"""Dead letters: rejected input, kept with the reason, never written to the store.

A dead letter is published (QoS 1) to the dead-letter topic as one JSON object:
`{"topic", "reason", "sample_index", "received_at", "payload"}`. `payload` holds the
rejected sample, or the whole message text when the message itself is unusable
(truncated to 64 KiB; undecodable bytes become U+FFFD).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

MAX_KEPT_PAYLOAD = 64 * 1024


@dataclass(frozen=True, slots=True)
class DeadLetter:
    topic: str
    reason: str
    payload: Any  # the rejected sample (parsed), or the raw message bytes
    sample_index: int | None = None  # None: the whole message was rejected


def to_dead_letter(letter: DeadLetter, now: datetime | None = None) -> bytes:
    payload = letter.payload
    if isinstance(payload, bytes):
        payload = payload[:MAX_KEPT_PAYLOAD].decode("utf-8", errors="replace")
    doc = {
        "topic": letter.topic[:512],
        "reason": letter.reason,
        "sample_index": letter.sample_index,
        "received_at": (now or datetime.now(UTC)).isoformat().replace("+00:00", "Z"),
        "payload": payload,
    }
    # allow_nan: a rejected sample may hold the NaN that got it rejected. ensure_ascii:
    # it may also hold a lone surrogate ("\ud800"), which has no UTF-8 encoding; as a
    # JSON escape it is kept as sent (tests/reliability corpus: lone_surrogate_*).
    return json.dumps(doc, ensure_ascii=True, allow_nan=True, default=str).encode("ascii")
