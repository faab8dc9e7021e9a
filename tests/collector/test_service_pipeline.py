"""The collector's threads with a fake broker client and a fake store: PUBACKs only
after the store confirmed, in the order received, nothing acked through an outage or
at a stop, and the rate limit in the real ingest path. (The same paths run on real
servers in tests/integration.)"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from collector.config import CollectorSettings, IngestSettings, RateLimitSettings
from collector.service import Collector
from collector.store import StoreUnavailable

SCHOOL = "0341234A"


@dataclass
class Journal:
    """Everything the fakes saw, in order."""

    events: list[tuple[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, kind: str, what: Any) -> None:
        with self.lock:
            self.events.append((kind, what))

    def of(self, kind: str) -> list[Any]:
        with self.lock:
            return [w for k, w in self.events if k == kind]


class FakeStore:
    def __init__(self, journal: Journal, outages: int = 0, slow_first_s: float = 0.0) -> None:
        self.journal, self.outages, self.slow_first_s = journal, outages, slow_first_s
        self.calls = 0

    def write(self, lines: Sequence[str]) -> None:
        self.calls += 1
        if self.calls == 1 and self.slow_first_s:
            time.sleep(self.slow_first_s)  # the first batch is overtaken by the second
        if self.outages:
            self.outages -= 1
            raise StoreUnavailable("store unreachable: fake outage")
        devices = {ln.split("device=")[1].split(" ")[0] for ln in lines if ln.startswith("device,")}
        if devices:  # not the school summaries written at stop
            self.journal.add("written", devices)

    def close(self) -> None:
        pass


class Published:
    def wait_for_publish(self, timeout: float | None = None) -> None:
        pass

    def is_published(self) -> bool:
        return True


class FakeClient:
    def __init__(self, journal: Journal) -> None:
        self.journal = journal

    def ack(self, mid: int, qos: int) -> None:
        self.journal.add("ack", mid)

    def publish(self, topic: str, payload: bytes, qos: int = 0) -> Published:
        self.journal.add("dead_letter", json.loads(payload))
        return Published()

    def connect_async(self, *args: Any, **kwargs: Any) -> None:
        pass

    def loop_start(self) -> None:
        pass

    def loop_stop(self) -> None:
        pass

    def disconnect(self) -> None:
        pass


def message(device: str) -> bytes:
    ts = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
    sample = {"ts": ts, "os": {"platform": "linux"}}
    return json.dumps(
        {"schema": 1, "device": device, "school": SCHOOL, "agent_version": "t", "samples": [sample]}
    ).encode()


@contextmanager
def collector(store: FakeStore, journal: Journal, **limits: Any) -> Iterator[Collector]:
    settings = CollectorSettings(
        ingest=IngestSettings(
            max_batch_messages=2,
            linger_ms=0,
            store_connections=2,
            retry_initial_s=0.05,
            rate_limit=RateLimitSettings(**limits),
        ),
    )
    c = Collector(settings, writer=store, client=FakeClient(journal))  # type: ignore[arg-type]
    c.connected.set()
    c.start()
    try:
        yield c
    finally:
        c.stop()


def feed(c: Collector, devices: list[str]) -> None:
    for mid, device in enumerate(devices, start=1):
        c.link._on_message(
            None, None, _Msg(f"lordi/v1/{SCHOOL}/{device}/telemetry", message(device), mid)
        )  # type: ignore[arg-type]


@dataclass
class _Msg:
    topic: str
    payload: bytes
    mid: int
    qos: int = 1


def wait_until(pred: Any, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.01)
    return False


def test_acks_follow_the_store_and_keep_the_order_received() -> None:
    journal = Journal()
    devices = [f"dev-{i}" for i in range(12)]
    with collector(FakeStore(journal, slow_first_s=0.3), journal) as c:
        feed(c, devices)
        assert wait_until(lambda: len(journal.of("ack")) == 12)
    assert journal.of("ack") == list(range(1, 13))
    written: set[str] = set()
    for kind, what in journal.events:
        if kind == "written":
            written |= what
        elif kind == "ack":
            assert devices[what - 1] in written, f"message {what} acked before it was stored"
    assert c.stats.samples_written == 12 and c.stats.acked == 12


def test_a_store_outage_is_retried_and_nothing_is_acked_meanwhile() -> None:
    journal = Journal()
    with collector(FakeStore(journal, outages=3), journal) as c:
        feed(c, ["dev-a", "dev-b"])
        assert wait_until(lambda: len(journal.of("ack")) == 2)
    assert c.stats.write_retries == 3
    assert [k for k, _ in journal.events] == ["written", "ack", "ack"]


def test_a_stop_during_an_outage_acks_nothing() -> None:
    journal = Journal()
    store = FakeStore(journal, outages=10**6)
    with collector(store, journal) as c:
        feed(c, [f"dev-{i}" for i in range(6)])
        assert wait_until(lambda: store.calls >= 3)
    assert journal.of("ack") == [] and journal.of("written") == []
    assert c.stats.acked == 0


def test_a_flood_is_dead_lettered_and_the_others_are_stored() -> None:
    journal = Journal()
    flood = ["flood"] * 40
    calm = [f"calm-{i}" for i in range(10)]
    with collector(FakeStore(journal), journal, device_burst_messages=5) as c:
        feed(c, flood + calm)
        assert wait_until(lambda: len(journal.of("ack")) == 50)
    letters = journal.of("dead_letter")
    assert len(letters) == 35 and c.stats.rate_limited_messages == 35
    assert all(d["reason"].startswith(f"rate limited: device {SCHOOL}/flood") for d in letters)
    assert all(json.loads(d["payload"])["device"] == "flood" for d in letters)
    stored = set().union(*journal.of("written"))
    assert stored == {"flood", *calm}
    assert c.stats.samples_written == 15
