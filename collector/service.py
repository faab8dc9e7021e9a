"""The collector process: shared MQTT subscription in, time series out.

A pipeline of threads, so that validation and the store's write time overlap:
- paho's network thread only enqueues the messages it receives;
- the ingest thread takes them, applies the per-device rate limit, validates and
  builds line protocol into a batch, numbered in the order received;
- `store_connections` writer threads each write a batch to the store (retrying
  while it is unavailable), then commit it in batch order: publish its rejections
  to the dead-letter topic, feed the summaries and rules, and only then
  acknowledge its MQTT messages (manual PUBACK).
A crash at any point leaves the unacknowledged messages with the broker, which
redelivers them to this client id's persistent session; the store treats the
redelivered points as the same points (same series, same timestamp).
"""

from __future__ import annotations

import gc
import logging
import queue
import sys
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from collector.alerting import Alerting
from collector.brokerfail import Endpoint, Repeats, refused, unreachable
from collector.config import CollectorSettings
from collector.deadletter import to_dead_letter
from collector.derived import Derived
from collector.ingest import Batch
from collector.metrics import SYS_TOPICS, CollectorMetrics
from collector.partition import Partition
from collector.ratelimit import DeviceRateLimiter
from collector.stats import Stats
from collector.store import LineWriter, StoreRejected, StoreUnavailable, StoreWriter

log = logging.getLogger(__name__)

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
    items: list[Incoming]
    batch: Batch


class Collector:
    def __init__(
        self,
        settings: CollectorSettings,
        writer: StoreWriter | None = None,
        alerting: Alerting | None = None,
        client: mqtt.Client | None = None,
        partition: Partition | None = None,
    ) -> None:
        self.settings = settings
        self.alerting = alerting
        # `[partition]`: a plain subscription per school this collector owns.
        self.partition = partition
        self._filters: set[str] = set()  # the school filters subscribed (partition)
        self._filters_lock = threading.Lock()
        self.stats = Stats()
        self._queue: queue.Queue[Incoming] = queue.Queue()
        self._stop = threading.Event()
        self._writer: StoreWriter = writer or LineWriter(
            settings.store.url,
            settings.store.token.get_secret_value(),
            settings.store.org,
            settings.store.bucket,
            settings.store.timeout_ms,
        )
        # Summaries, alert transitions and forecasts, the alerting's sweeps.
        self.derived = Derived(self._writer, self.stats, alerting)
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
        self._client = client or self._make_client()  # a test may bring a fake
        self._thread = threading.Thread(target=self._run, name="ingest", daemon=True)
        self._writers = [
            threading.Thread(target=self._write_loop, name=f"writer-{i}", daemon=True)
            for i in range(connections)
        ]
        self.connected = threading.Event()
        # A refused or failed connection is logged as one line naming the broker, the
        # user and the fix: at once, then every 5 min while it lasts (paho retries
        # every few seconds, silently).
        self._failures = Repeats()
        self._up = False  # the broker accepted the latest CONNECT
        self._subscribe_mid: int | None = None  # the telemetry SUBSCRIBE's packet id
        self._beat = time.monotonic()  # the ingest thread's latest loop (liveness)
        # `[metrics] enabled`: counted per batch, served by its own thread.
        self.metrics = (
            CollectorMetrics(settings.metrics, self) if settings.metrics.enabled else None
        )
        if self.metrics is not None and alerting is not None:
            self.derived.rules_timer = self.metrics.rules_timer()

    # -- MQTT -----------------------------------------------------------------
    @property
    def topic_filter(self) -> str:
        m = self.settings.mqtt
        if self.partition is not None:
            return f"{m.topic} for the schools of {self.partition.name}"
        return f"$share/{m.share_group}/{m.topic}" if m.share_group else m.topic

    @property
    def client_id(self) -> str:
        base = self.settings.mqtt.client_id
        return base if self.partition is None else self.partition.client_id(base)

    def _make_client(self) -> mqtt.Client:
        m = self.settings.mqtt
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=mqtt.MQTTv5,
            manual_ack=True,
        )
        if m.username:
            client.username_pw_set(
                m.username, m.password.get_secret_value() if m.password else None
            )
        if m.tls:
            client.tls_set(ca_certs=str(m.ca_file) if m.ca_file else None)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        # The broker's $SYS figures ([metrics] broker_sys) never reach the telemetry
        # queue, even from a session that subscribed to them earlier.
        client.message_callback_add("$SYS/#", self._on_sys)
        # Come back fast after a broker restart: until the collector resubscribes, the
        # broker has nowhere to queue telemetry (see _on_connect).
        client.reconnect_delay_set(min_delay=1, max_delay=5)
        return client

    def _connect_properties(self) -> Properties:
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = self.settings.mqtt.session_expiry_s
        props.ReceiveMaximum = self.settings.mqtt.receive_maximum
        return props

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: mqtt.ConnectFlags,
        reason: ReasonCode,
        props: Properties | None,
    ) -> None:
        if reason.is_failure:
            self._connection_failed(refused(self.endpoint, reason))
            return
        m = self.settings.mqtt
        self._up = True
        failed = self._failures.clear()
        if failed:
            log.info("connected after %d failed attempt(s)", failed)
        # Subscribe on every connect: Mosquitto 2.0 does not restore a shared
        # subscription from its persistence file after a restart (measured, see
        # docs/server-stack.md), so the session alone is not enough.
        if self.partition is None:
            self._subscribe_mid = client.subscribe(self.topic_filter, qos=1)[1]
        else:
            self._subscribe_partition(client)
        if self.metrics is not None and self.settings.metrics.broker_sys:
            client.subscribe([(topic, SubscribeOptions(qos=0)) for topic in SYS_TOPICS])
        log.info(
            "connected to %s:%s as %s (session present: %s)",
            m.host,
            m.port,
            self.client_id,
            flags.session_present,
        )

    def _subscribe_partition(self, client: mqtt.Client) -> None:
        """This partition's schools, one plain subscription each; and none of the
        others' (the session may hold them from an earlier registry or configuration)."""
        assert self.partition is not None
        filters = self.partition.filters()
        for misplaced in self.partition.misplaced():
            log.error("registry: school %s is not a partition of %d: placed by hash",
                      misplaced, self.partition.count)  # fmt: skip
        with self._filters_lock:
            self._filters = set(filters)
        client.unsubscribe(self.partition.foreign_filters())
        if not filters:  # SUBSCRIBE needs one filter at least
            log.warning("%s owns no school of the registry: nothing to subscribe to",
                        self.partition.name)  # fmt: skip
            self._subscribe_mid = None
            self._subscribed(len(filters))
            return
        options = SubscribeOptions(qos=1)
        self._subscribe_mid = client.subscribe([(f, options) for f in filters])[1]

    def refresh_subscriptions(self) -> int:
        """Follow the registry in force: subscribe to the schools this partition gained
        (a school added or moved to it), unsubscribe those it lost. Returns how many
        filters changed; the main loop calls it every few seconds."""
        if self.partition is None or not self._up:
            return 0
        wanted = set(self.partition.filters())
        with self._filters_lock:
            gained, lost = sorted(wanted - self._filters), sorted(self._filters - wanted)
            self._filters = wanted
        if gained:
            self._client.subscribe([(f, SubscribeOptions(qos=1)) for f in gained])
            log.info("%s: subscribed to %d more school(s): %s", self.partition.name,
                     len(gained), ", ".join(f.split("/")[2] for f in gained))  # fmt: skip
        if lost:
            self._client.unsubscribe(lost)
            log.info("%s: left %d school(s): %s", self.partition.name, len(lost),
                     ", ".join(f.split("/")[2] for f in lost))  # fmt: skip
        return len(gained) + len(lost)

    @property
    def schools_subscribed(self) -> int:
        with self._filters_lock:
            return len(self._filters)

    @property
    def endpoint(self) -> Endpoint:
        m = self.settings.mqtt
        return Endpoint(m.host, m.port, m.username, m.tls, m.ca_file, "[mqtt]")

    def _on_connect_fail(self, client: mqtt.Client, userdata: object) -> None:
        # paho calls this from its `except OSError:` around connect: the exception
        # being handled is the reason (refused, unreachable, TLS verification).
        self._connection_failed(unreachable(self.endpoint, sys.exc_info()[1]))

    def _connection_failed(self, line: str) -> None:
        if self._failures.worth_logging(line):
            log.error("%s (attempt %d; retrying)", line, self._failures.count)

    def _on_subscribe(
        self,
        client: mqtt.Client,
        userdata: object,
        mid: int,
        reasons: list[ReasonCode],
        props: Properties | None,
    ) -> None:
        if mid != self._subscribe_mid and self._subscribe_mid is not None:
            if any(r.is_failure for r in reasons):  # $SYS, or a school the partition gained
                log.warning("broker refused a subscription ($SYS or a school): %s", reasons)
            return
        if any(r.is_failure for r in reasons):
            log.error("broker refused the subscription: %s", reasons)
            return
        self._subscribed(len(reasons))

    def _subscribed(self, filters: int) -> None:
        if self.partition is None:
            log.info("subscribed to %s", self.topic_filter)
        else:
            log.info("subscribed to %d school topic(s) of %s", filters, self.partition.name)
        if self.alerting is not None:  # telemetry can arrive: laptops may be absent again
            self.alerting.resume(datetime.now(UTC))
        self.connected.set()  # ready: connected and subscribed

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: mqtt.DisconnectFlags,
        reason: ReasonCode,
        props: Properties | None,
    ) -> None:
        self.connected.clear()
        if self.metrics is not None:
            self.metrics.disconnected()
        if self.alerting is not None:  # nothing can arrive: nobody becomes absent
            self.alerting.pause(datetime.now(UTC))
        was_up, self._up = self._up, False
        if was_up and not self._stop.is_set():  # a refused CONNECT was logged already
            log.warning("disconnected from broker (%s); reconnecting", reason)

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        self._queue.put(Incoming(msg.topic, bytes(msg.payload), msg.mid, msg.qos))

    def _on_sys(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        if self.metrics is not None and self.settings.metrics.broker_sys:
            self.metrics.on_sys(msg.topic, bytes(msg.payload))

    # -- figures for the metrics (read when scraped, from another thread) -------------
    @property
    def store_writer(self) -> StoreWriter:
        return self._writer

    def inflight(self) -> int:
        """Messages received and not yet acknowledged (queued, or in a batch)."""
        return self._queue.qsize() + self.stats.messages - self.stats.acked

    def rate_limited_devices(self) -> int:
        return 0 if self._limiter is None else self._limiter.limited

    def stalled(self) -> str | None:
        """None while every loop runs, else which one stopped (for /healthz)."""
        if not self._thread.is_alive():
            return "the ingest thread has stopped"
        if time.monotonic() - self._beat > INGEST_STALL_S:
            return f"the ingest thread has not looped for {INGEST_STALL_S:.0f} s"
        for writer in self._writers:
            if not writer.is_alive():
                return f"{writer.name} has stopped"
        network = getattr(self._client, "_thread", None)  # paho's loop_start thread
        if isinstance(network, threading.Thread) and not network.is_alive():
            return "the MQTT network thread has stopped"
        return None

    # -- lifecycle --------------------------------------------------------------
    def start(self) -> None:
        """Start the loops (and the metrics server first: OSError if its port is taken)."""
        if self.metrics is not None:
            self.metrics.start()
        tune_runtime()
        m = self.settings.mqtt
        self._client.connect_async(
            m.host,
            m.port,
            keepalive=m.keepalive_s,
            clean_start=False,
            properties=self._connect_properties(),
        )
        self._client.loop_start()
        self._thread.start()
        for writer in self._writers:
            writer.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Finish the batches in hand if the store takes them, then disconnect.
        Unacknowledged messages stay with the broker for the next start."""
        self._stop.set()
        deadline = time.monotonic() + timeout_s
        for thread in (self._thread, *self._writers):
            if thread.is_alive():
                thread.join(max(0.0, deadline - time.monotonic()))
        self.derived.stop()
        self._client.disconnect()
        self._client.loop_stop()
        self._writer.close()
        if self.metrics is not None:
            self.metrics.stop()

    # -- ingest thread: rate limit, validate, build line protocol -------------------
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
                work = _Work(seq, items, batch)
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

    # -- writer threads: write, then commit in order ---------------------------------
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
        batch = work.batch
        if not self._publish_dead_letters(batch):
            return False  # stopping: nothing acknowledged, the broker redelivers
        self.derived.add(batch.groups)
        for item in work.items:
            if item.qos > 0:
                self._client.ack(item.mid, item.qos)
        self.stats.acked += len(work.items)
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
            self._writer.write(batch.lines)
        except StoreRejected as exc:
            log.error("store refused a batch (%s); writing message by message", exc)
            if self.metrics is not None:
                self.metrics.store_write("error", None)
            batch.isolate(self._writer)  # StoreUnavailable: the whole batch is retried

    def _publish_dead_letters(self, batch: Batch) -> bool:
        """Publish the batch's dead letters at QoS 1 and wait for the broker's PUBACKs
        (at least once: those not acknowledged, e.g. the connection was lost, are
        published again). False when stopping before they all were."""
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
            if not self.connected.wait(1.0):
                if self._stop.is_set():
                    return False
                continue
            sent = [
                (letter, self._client.publish(topic, to_dead_letter(letter), qos=1))
                for letter in pending
            ]
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


def tune_runtime() -> None:
    """Fewer garbage collections: validation allocates ~40 objects per sample (pydantic
    models and their dicts); with the default threshold (700) building a batch took
    ~24 µs per sample instead of ~17 (measured, BENCHMARKS.md). Objects alive at
    start-up are frozen out of every pass; cycles are still collected."""
    gc.freeze()
    gc.set_threshold(50_000, 20, 10)
