"""Per-device message rate limit: one token bucket per (school, device) of the topic.

Why messages and not samples: a laptop back after a week offline drains its spool in
a few large messages (≤ 200 samples each, ≤ 4 in flight), which is legitimate; a
device stuck in a publish loop sends many messages. The bucket holds `burst`
messages and refills at `per_s` messages per second, so a drain passes whole and a
flood is cut to the refill rate after its burst, without touching other devices.

Memory is bounded: a bucket that has been idle long enough to be full again is
equivalent to no bucket and is forgotten, and beyond `max_devices` the least
recently seen bucket is forgotten (forgetting only ever makes the limit more
lenient). No I/O and no clock reads here: the caller passes `now` (monotonic s).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float  # when `tokens` was computed
    window_start: float  # first message since the bucket was last full
    window_messages: int  # messages (allowed or not) since window_start
    limited: bool = False  # the device's latest message was refused


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    messages: int = 0  # messages of this device in the current window
    window_s: float = 0.0  # length of that window


class DeviceRateLimiter:
    def __init__(self, burst: int, per_s: float, max_devices: int = 300_000) -> None:
        if burst < 1 or per_s <= 0 or max_devices < 1:
            raise ValueError("burst >= 1, per_s > 0 and max_devices >= 1 are required")
        self.burst = burst
        self.per_s = per_s
        self.max_devices = max_devices
        # Seconds after which an untouched bucket is full again (and can be dropped).
        self._refill_s = burst / per_s
        self._buckets: OrderedDict[tuple[str, str], _Bucket] = OrderedDict()
        # Tracked devices whose latest message was refused (the collector's
        # lordi_collector_rate_limited_devices gauge).
        self.limited = 0

    def __len__(self) -> int:
        return len(self._buckets)

    def check(self, school: str, device: str, now: float) -> Verdict:
        """Take one token for this device's message; `allowed` False when none is left."""
        key = (school, device)
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = _Bucket(float(self.burst), now, now, 0)
            self._buckets[key] = bucket
            self._evict(now)
        else:
            self._buckets.move_to_end(key)
            elapsed = max(0.0, now - bucket.updated)
            tokens = bucket.tokens + elapsed * self.per_s
            if tokens >= self.burst:  # full again: a new window starts
                tokens = float(self.burst)
                bucket.window_start, bucket.window_messages = now, 0
            bucket.tokens, bucket.updated = tokens, now
        bucket.window_messages += 1
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            if bucket.limited:
                bucket.limited = False
                self.limited -= 1
            return Verdict(True)
        if not bucket.limited:
            bucket.limited = True
            self.limited += 1
        return Verdict(False, bucket.window_messages, now - bucket.window_start)

    def describe(self, school: str, device: str, verdict: Verdict) -> str:
        """The dead-letter reason for a refused message."""
        return (
            f"rate limited: device {school}/{device} sent {verdict.messages} messages in "
            f"{verdict.window_s:.1f} s (limit: burst {self.burst}, then {self.per_s:g} per s)"
        )

    def _evict(self, now: float) -> None:
        """Forget buckets that are full again (oldest first), then any beyond the cap."""
        buckets = self._buckets
        while buckets:
            key, oldest = next(iter(buckets.items()))
            if len(buckets) <= self.max_devices and now - oldest.updated < self._refill_s:
                break
            del buckets[key]
            if oldest.limited:
                self.limited -= 1
