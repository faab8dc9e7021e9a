"""The per-device token bucket (pure: the tests pass the time)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from collector.ingest import build_batch
from collector.ratelimit import DeviceRateLimiter

SCHOOL = "0341234A"


def test_burst_then_refused() -> None:
    limiter = DeviceRateLimiter(burst=3, per_s=1.0)
    verdicts = [limiter.check(SCHOOL, "dev-1", 0.0) for _ in range(5)]
    assert [v.allowed for v in verdicts] == [True, True, True, False, False]
    assert verdicts[4].messages == 5


def test_refill_at_the_configured_rate() -> None:
    limiter = DeviceRateLimiter(burst=2, per_s=0.5)
    assert limiter.check(SCHOOL, "d", 0.0).allowed
    assert limiter.check(SCHOOL, "d", 0.0).allowed
    assert not limiter.check(SCHOOL, "d", 1.0).allowed  # half a token so far
    assert limiter.check(SCHOOL, "d", 2.0).allowed  # one token after 2 s
    assert not limiter.check(SCHOOL, "d", 2.0).allowed


def test_a_flooding_device_does_not_touch_another() -> None:
    limiter = DeviceRateLimiter(burst=5, per_s=1.0)
    refused = sum(not limiter.check(SCHOOL, "flood", 0.001 * i).allowed for i in range(1000))
    assert refused >= 990
    assert all(limiter.check(SCHOOL, f"quiet-{i}", 1.0).allowed for i in range(100))
    assert limiter.check("0341234B", "flood", 1.0).allowed  # same name, other school


def test_a_spool_drain_passes_whole() -> None:
    """A week offline: ~2,000 samples in ≤ 200-sample messages, 4 in flight."""
    limiter = DeviceRateLimiter(burst=300, per_s=0.5)
    assert all(limiter.check(SCHOOL, "back", i * 0.01).allowed for i in range(10))
    # and a spool at its 50,000-sample cap, in ~170-sample messages
    assert all(limiter.check(SCHOOL, "full", i * 0.01).allowed for i in range(295))


def test_the_reason_names_device_count_window_and_limit() -> None:
    limiter = DeviceRateLimiter(burst=2, per_s=0.5)
    for i in range(4):
        verdict = limiter.check(SCHOOL, "dev-9", i * 0.5)
    assert not verdict.allowed
    assert limiter.describe(SCHOOL, "dev-9", verdict) == (
        f"rate limited: device {SCHOOL}/dev-9 sent 4 messages in 1.5 s "
        "(limit: burst 2, then 0.5 per s)"
    )


def test_a_full_bucket_starts_a_new_window() -> None:
    limiter = DeviceRateLimiter(burst=1, per_s=1.0)
    limiter.check(SCHOOL, "d", 0.0)
    assert limiter.check(SCHOOL, "d", 0.1).messages == 2
    assert limiter.check(SCHOOL, "d", 100.0).allowed  # idle: full again
    verdict = limiter.check(SCHOOL, "d", 100.0)
    assert (verdict.allowed, verdict.messages, verdict.window_s) == (False, 2, 0.0)


def test_idle_buckets_are_forgotten() -> None:
    limiter = DeviceRateLimiter(burst=10, per_s=1.0)  # full again after 10 s
    for i in range(1000):
        limiter.check(SCHOOL, f"d{i}", 0.0)
    assert len(limiter) == 1000
    limiter.check(SCHOOL, "late", 11.0)
    assert len(limiter) == 1


def test_memory_is_capped_and_the_oldest_go_first() -> None:
    limiter = DeviceRateLimiter(burst=1, per_s=0.001, max_devices=100)
    for i in range(1000):
        limiter.check(SCHOOL, f"d{i}", i * 0.001)
    assert len(limiter) == 100
    assert not limiter.check(SCHOOL, "d999", 1.0).allowed  # still known: still limited


@pytest.mark.parametrize(("burst", "per_s"), [(0, 1.0), (1, 0.0), (1, -1.0)])
def test_nonsense_limits_are_refused(burst: int, per_s: float) -> None:
    with pytest.raises(ValueError, match="burst"):
        DeviceRateLimiter(burst, per_s)


def _message(device: str, minutes_ago: int) -> tuple[str, bytes]:
    ts = (datetime.now(UTC) - timedelta(minutes=minutes_ago)).isoformat()
    body = {
        "schema": 1,
        "device": device,
        "school": SCHOOL,
        "agent_version": "t",
        "samples": [{"ts": ts, "os": {"platform": "linux"}}],
    }
    return f"lordi/v1/{SCHOOL}/{device}/telemetry", json.dumps(body).encode()


def test_a_batch_dead_letters_what_is_over_the_limit_with_its_payload() -> None:
    limiter = DeviceRateLimiter(burst=2, per_s=0.1)
    messages = [_message("flood", i) for i in range(1, 6)] + [_message("calm", 1)]
    batch = build_batch(messages, limiter, now=5.0)
    assert batch.sample_count == 3  # 2 of the flood, 1 of the calm device
    assert batch.rate_limited_messages == 3
    assert [d.payload for d in batch.dead_letters] == [p for _, p in messages[2:5]]
    assert all(d.sample_index is None for d in batch.dead_letters)
    assert batch.dead_letters[0].reason.startswith(
        f"rate limited: device {SCHOOL}/flood sent 3 messages in 0.0 s"
    )
