"""The collector's ordered-commit pipeline: messages in, time series out, PUBACKs last.

- `put()` (paho's network thread) only enqueues;
- the ingest thread takes messages, applies the per-device rate limit, validates and
  builds line protocol into a batch, numbered in the order received;
- `store_connections` writer threads each write a batch to the store (retrying while
  it is unavailable), then commit it in batch order: publish its rejections to the
  dead-letter topic, feed the summaries and rules, and only then acknowledge its MQTT
  messages (manual PUBACK) through the broker link.
A crash at any point leaves the unacknowledged messages with the broker, which
redelivers them to this client id's persistent session; the store treats the
redelivered points as the same points (same series, same timestamp).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass
from typing import Protocol

import paho.mqtt.client as mqtt

from collector.config import CollectorSettings
from collector.deadletter import to_dead_letter
from collector.derived import Derived
from collector.ingest import Batch
from collector.metrics import CollectorMetrics
from collector.ratelimit import DeviceRateLimiter
from collector.stats import Stats
from collector.store import StoreRejected, StoreUnavailable, StoreWriter

log = logging.getLogger("collector.service")

# Dead letters logged one by one per batch; the rest are counted (a flood would
# otherwise write one log line per refused message).
MAX_LOGGED_LETTERS = 5
# /healthz: an ingest thread that has not looped for this long is stuck (it loops
# at least every 0.2 s).
INGEST_STALL_S = 30.0


@dataclass(frozen=True, slots=True)
class Incoming:
    topic: str
    payload: bytes
    mid: int
    qos: int


@dataclass(slots=True)
class _Work:
    seq: int  # batch number in the order received: the commit order
    acks: list[tuple[int, int]]  # (mid, qos) of its QoS 1/2 messages: no payloads kept
    messages: int
    batch: Batch


class BrokerLink(Protocol):
    """What the pipeline needs from the MQTT side (collector/mqttlink.py)."""

    connected: threading.Event

    def ack(self, mid: int, qos: int) -> None: ...

    def publish(self, topic: str, payload: bytes) -> mqtt.MQTTMessageInfo: ...


class CommitPipeline:
    def __init__(
        self,
        settings: CollectorSettings,
        writer: StoreWriter,
        derived: Derived,
        *,
        stats: Stats,
        stopping: threading.Event,
        metrics: CollectorMetrics | None = None,
    ) -> None:
        self.settings = settings
        self.writer, self.derived, self.stats = writer, derived, stats
        self.metrics = metrics
        self.link: BrokerLink | None = None  # set before start()
        self._stop = stopping
        self._queue: queue.Queue[Incoming] = queue.Queue()
        lim = settings.ingest.rate_limit
        self._limiter = (
            DeviceRateLimiter(
                lim.device_burst_messages, lim.device_messages_per_s, lim.max_tracked_devices
            )
            if lim.enabled
            else None
        )
        connections = settings.ingest.store_connections
        # Batches built and waiting for a writer: enough to keep every connection busy.
        self._work: queue.Queue[_Work] = queue.Queue(maxsize=connections)
        self._ingest_done = threading.Event()
        self._commit = threading.Condition()
        self._next_commit = 0  # seq of the next batch to commit
        self._abandoned = False  # a batch was given up (stopping): ack nothing after it
        self._stats_lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="ingest", daemon=True)
        self._writers = [
            threading.Thread(target=self._write_loop, name=f"writer-{i}", daemon=True)
            for i in range(connections)
        ]
        self._beat = time.monotonic()  # the ingest thread's latest loop (liveness)

    # -- in, and figures ------------------------------------------------------------------
    def put(self, item: Incoming) -> None:
        self._queue.put(item)

    def inflight(self) -> int:
        """Messages received and not yet acknowledged (queued, or in a batch)."""
        return self._queue.qsize() + self.stats.messages - self.stats.acked

    def rate_limited_devices(self) -> int:
        return 0 if self._limiter is None else self._limiter.limited

    def stalled(self) -> str | None:
        """None while every thread runs, else which one stopped (for /healthz)."""
        if not self._thread.is_alive():
            return "the ingest thread has stopped"
        if time.monotonic() - self._beat > INGEST_STALL_S:
            return f"the ingest thread has not looped for {INGEST_STALL_S:.0f} s"
        for writer in self._writers:
            if not writer.is_alive():
                return f"{writer.name} has stopped"
        return None

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> None:
        assert self.link is not None, "the pipeline acknowledges through a broker link"
        self._thread.start()
        for writer in self._writers:
            writer.start()

    def join(self, deadline: float) -> None:
        """Wait (until the monotonic `deadline`) for the threads, once stopping is set."""
        for thread in (self._thread, *self._writers):
            if thread.is_alive():
                thread.join(max(0.0, deadline - time.monotonic()))

    # -- ingest thread: rate limit, validate, build line protocol -------------------------
    def _take_batch(self) -> tuple[list[Incoming], Batch]:
        """Validate messages as they come until the batch is full or lingered enough."""
        batch = Batch(string_fields=self.settings.store.string_fields)
        try:
            first = self._queue.get(timeout=0.2)
        except queue.Empty:
            return [], batch
        ingest = self.settings.ingest
        items = [first]
        self._add(batch, first)
        deadline = time.monotonic() + ingest.linger_ms / 1000
        while len(items) < ingest.max_batch_messages and (
            batch.sample_count < ingest.max_batch_samples
        ):
            remaining = deadline - time.monotonic()
            try:
                item = (
                    self._queue.get(timeout=remaining)
                    if remaining > 0
                    else self._queue.get_nowait()
                )
            except queue.Empty:
                break
            items.append(item)
            self._add(batch, item)
        return items, batch

    def _add(self, batch: Batch, item: Incoming) -> None:
        batch.add(item.topic, item.payload, self._limiter, time.monotonic())

    def _run(self) -> None:
        seq = 0
        try:
            while not self._stop.is_set():
                self._beat = time.monotonic()
                items, batch = self._take_batch()
                if not items:
                    continue
                self.stats.count_batch(batch)
                if self.metrics is not None:
                    self.metrics.batch_built(batch)
                acks = [(item.mid, item.qos) for item in items if item.qos > 0]
                work = _Work(seq, acks, len(items), batch)
                seq += 1
                while True:  # hand over; a full queue means the writers are behind
                    self._beat = time.monotonic()
                    try:
                        self._work.put(work, timeout=0.2)
                        break
                    except queue.Full:
                        if self._stop.is_set():
                            return  # dropped unacknowledged: the broker redelivers
        finally:
            self._ingest_done.set()

    # -- writer threads: write, then commit in order --------------------------------------
    def _write_loop(self) -> None:
        while True:
            try:
                work = self._work.get(timeout=0.2)
            except queue.Empty:
                if self._ingest_done.is_set():
                    return
                self.derived.tick()
                with self._commit:
                    self.derived.maybe_flush()
                continue
            confirmed = self._write_with_retry(work.batch)
            if confirmed:  # the store has its lines: not held while it waits its turn
                work.batch.lines = []
            with self._commit:
                while self._next_commit != work.seq:
                    self._commit.wait()
                try:
                    if confirmed and not self._abandoned:
                        self._abandoned = not self._commit_batch(work)
                    else:
                        self._abandoned = True
                    self.derived.maybe_flush()
                except Exception:  # a bug: the batch stays unacknowledged, ingest goes on
                    log.exception("committing batch %d failed; not acknowledged", work.seq)
                finally:
                    self._next_commit += 1
                    self._commit.notify_all()

    def _commit_batch(self, work: _Work) -> bool:
        """The store has the batch: dead letters, summaries, rules, then PUBACKs.
        Runs under the commit lock, one batch at a time, in the order received."""
        assert self.link is not None
        batch = work.batch
        if not self._publish_dead_letters(batch):
            return False  # stopping: nothing acknowledged, the broker redelivers
        self.derived.add(batch.groups)
        for mid, qos in work.acks:
            self.link.ack(mid, qos)
        self.stats.acked += work.messages
        if self.metrics is not None:
            self.metrics.batch_committed(batch)
        return True

    def _write_with_retry(self, batch: Batch) -> bool:
        """Write until the store confirms (True) or the collector stops (False)."""
        delay = self.settings.ingest.retry_initial_s
        metrics = self.metrics
        while True:
            started = time.perf_counter()
            try:
                self._write_once(batch)
                with self._stats_lock:  # several writer threads count here
                    self.stats.samples_written += batch.sample_count
                if metrics is not None:
                    metrics.store_write("ok", time.perf_counter() - started)
                return True
            except StoreUnavailable as exc:
                log.warning("store unavailable (%s); retrying in %.1f s", exc, delay)
                if metrics is not None:
                    metrics.store_write("retry", time.perf_counter() - started, str(exc))
            except Exception:  # a bug must not ack nor kill the writer: retry, loudly
                log.exception("writing a batch failed; retrying in %.1f s", delay)
                if metrics is not None:
                    metrics.store_write("error", time.perf_counter() - started)
            with self._stats_lock:
                self.stats.write_retries += 1
            if self._stop.wait(delay):
                return False
            delay = min(delay * 2, self.settings.ingest.retry_max_s)

    def _write_once(self, batch: Batch) -> None:
        try:
            self.writer.write(batch.lines)
        except StoreRejected as exc:
            log.error("store refused a batch (%s); writing message by message", exc)
            if self.metrics is not None:
                self.metrics.store_write("error", None)
            batch.isolate(self.writer)  # StoreUnavailable: the whole batch is retried

    def _publish_dead_letters(self, batch: Batch) -> bool:
        """Publish the batch's dead letters at QoS 1 and wait for the broker's PUBACKs
        (at least once: those not acknowledged, e.g. the connection was lost, are
        published again). False when stopping before they all were."""
        assert self.link is not None
        pending = batch.dead_letters
        for letter in pending[:MAX_LOGGED_LETTERS]:
            log.info("dead-lettered %s: %s", letter.topic, letter.reason)
        if len(pending) > MAX_LOGGED_LETTERS:
            log.info(
                "dead-lettered %d more messages or samples in this batch",
                len(pending) - MAX_LOGGED_LETTERS,
            )
        topic = self.settings.mqtt.dead_letter_topic
        while pending:
            if not self.link.connected.wait(1.0):
                if self._stop.is_set():
                    return False
                continue
            sent = [(x, self.link.publish(topic, to_dead_letter(x))) for x in pending]
            pending = [letter for letter, info in sent if not _acknowledged(info)]
            if pending and self._stop.wait(0.2):
                return False
        return True


def _acknowledged(info: mqtt.MQTTMessageInfo) -> bool:
    try:
        info.wait_for_publish(timeout=10.0)
        return info.is_published()
    except (RuntimeError, ValueError):  # not connected or queue full: publish again
        return False
