"""A flooding device on the real stack: it is limited and its excess dead-lettered
with the reason, while 20 ordinary devices publishing at the same time lose nothing."""

from __future__ import annotations

import json
import threading
import time

from collector.config import RateLimitSettings
from collector.service import Collector
from lordi import vm
from lordi.stack import LocalStack
from tests.helpers import (
    Subscriber,
    envelope,
    minimal_sample,
    publish,
    recent,
    settings_for,
    unique_school,
    wait_stored,
)

FLOOD = 2000  # messages from the flooding device
DEVICES, PER_DEVICE = 20, 5  # the ordinary devices and their messages each
BURST, PER_S = 20, 2.0


def test_a_flood_is_limited_without_hurting_other_devices(stack: LocalStack) -> None:
    calm_school, flood_school = unique_school(), unique_school()
    flood_topic = f"lordi/v1/{flood_school}/dev-flood/telemetry"
    limit = RateLimitSettings(device_burst_messages=BURST, device_messages_per_s=PER_S)
    settings = settings_for(stack, rate_limit=limit)
    dead = Subscriber(stack, "lordi/deadletter/v1")
    collector = Collector(settings)
    collector.start()
    try:
        assert collector.connected.wait(10)
        time.sleep(0.2)
        t0 = time.monotonic()
        flood = threading.Thread(
            target=publish,
            args=(
                stack,
                flood_topic,
                [
                    envelope(flood_school, "dev-flood", [minimal_sample(recent(i))])
                    for i in range(FLOOD)
                ],
            ),
        )
        flood.start()
        for d in range(DEVICES):  # meanwhile, the ordinary devices report
            device = f"dev-{d}"
            publish(
                stack,
                f"lordi/v1/{calm_school}/{device}/telemetry",
                [
                    envelope(calm_school, device, [minimal_sample(recent(k))])
                    for k in range(PER_DEVICE)
                ],
            )
        flood.join(120)
        total = FLOOD + DEVICES * PER_DEVICE
        deadline = time.monotonic() + 60
        while collector.stats.acked < total and time.monotonic() < deadline:
            time.sleep(0.1)
        elapsed = time.monotonic() - t0
        assert collector.stats.acked == total
        # every ordinary sample stored, exactly once
        assert wait_stored(stack, calm_school, DEVICES * PER_DEVICE) == DEVICES * PER_DEVICE
        vm.force_flush(stack.vm_url)
        series = vm.export(stack.vm_url, f'device_report{{school="{calm_school}"}}')
        assert len(series) == DEVICES
        assert all(sorted(set(s["timestamps"])) == sorted(s["timestamps"]) for s in series)
        assert all(len(s["timestamps"]) == PER_DEVICE for s in series)
        # the flood: its burst and refill stored, the rest dead-lettered with the reason
        stored_flood = wait_stored(stack, flood_school, BURST)
        limited = FLOOD - stored_flood
        assert BURST <= stored_flood <= BURST + PER_S * elapsed + 1
        assert collector.stats.rate_limited_messages == limited
        assert dead.wait_for(lambda m: sum(t == flood_topic for t, _, _ in _topics(m)) >= limited)
        # the collector is still healthy: a later ordinary message is stored
        publish(
            stack,
            f"lordi/v1/{calm_school}/dev-late/telemetry",
            [envelope(calm_school, "dev-late", [minimal_sample(recent(1))])],
        )
        assert wait_stored(stack, calm_school, DEVICES * PER_DEVICE + 1) == DEVICES * PER_DEVICE + 1
        assert collector.connected.is_set()
    finally:
        collector.stop()
        dead.close()
    letters = [json.loads(p) for t, p, _ in dead.messages]
    mine = [d for d in letters if d["topic"] == flood_topic]
    assert len(mine) == limited  # each refused message once, nothing else of the flood
    assert all(
        d["reason"].startswith(f"rate limited: device {flood_school}/dev-flood sent ")
        and d["reason"].endswith(f"(limit: burst {BURST}, then {PER_S:g} per s)")
        for d in mine
    )
    assert all(json.loads(d["payload"])["device"] == "dev-flood" for d in mine)  # kept whole
    assert not [d for d in letters if d["topic"].startswith(f"lordi/v1/{calm_school}/")]


def _topics(messages: list[tuple[str, bytes, bool]]) -> list[tuple[str, bytes, bool]]:
    """Dead letters as (original topic, payload, retain)."""
    return [(json.loads(p)["topic"], p, r) for _, p, r in messages]
