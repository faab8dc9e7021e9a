"""The collector process: shared MQTT subscription in, time series out.

paho's network thread only enqueues messages. One ingest thread takes them in
batches, validates, writes the accepted samples to the store, publishes
rejections to the dead-letter topic, and only then acknowledges the MQTT messages
(manual PUBACK). A crash at any point leaves the unacknowledged messages with the
broker, which redelivers them to this client id's persistent session; the store
treats the redelivered points as the same points (same series, same timestamp).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from collector.alerting import Alerting
from collector.config import CollectorSettings
from collector.deadletter import DeadLetter, to_dead_letter
from collector.ingest import Batch, build_batch
from collector.stats import Stats
from collector.store import LineWriter, StoreRejected, StoreUnavailable
from collector.summaries import SchoolSummaries

log = logging.getLogger(__name__)

SUMMARY_FLUSH_S = 60.0


@dataclass(frozen=True, slots=True)
class Incoming:
    topic: str
    payload: bytes
    mid: int
    qos: int


class Collector:
    def __init__(
        self,
        settings: CollectorSettings,
        writer: LineWriter | None = None,
        alerting: Alerting | None = None,
    ) -> None:
        self.settings = settings
        self.alerting = alerting
        # Per-school summaries for the fleet dashboard (its cost must not grow with
        # the fleet): accumulated from confirmed samples, written every minute.
        self.summaries = SchoolSummaries()
        self._next_summary_flush = time.monotonic() + SUMMARY_FLUSH_S
        self.stats = Stats()
        self._queue: queue.Queue[Incoming] = queue.Queue()
        self._stop = threading.Event()
        self._writer = writer or LineWriter(
            settings.store.url,
            settings.store.token.get_secret_value(),
            settings.store.org,
            settings.store.bucket,
            settings.store.timeout_ms,
        )
        self._client = self._make_client()
        self._thread = threading.Thread(target=self._run, name="ingest", daemon=True)
        self.connected = threading.Event()

    # -- MQTT -----------------------------------------------------------------
    @property
    def topic_filter(self) -> str:
        m = self.settings.mqtt
        return f"$share/{m.share_group}/{m.topic}" if m.share_group else m.topic

    def _make_client(self) -> mqtt.Client:
        m = self.settings.mqtt
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=m.client_id,
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
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
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
            log.error("broker refused the connection: %s", reason)
            return
        m = self.settings.mqtt
        # Subscribe on every connect: Mosquitto 2.0 does not restore a shared
        # subscription from its persistence file after a restart (measured, see
        # docs/server-stack.md), so the session alone is not enough.
        client.subscribe(self.topic_filter, qos=1)
        log.info(
            "connected to %s:%s as %s (session present: %s)",
            m.host,
            m.port,
            m.client_id,
            flags.session_present,
        )

    def _on_subscribe(
        self,
        client: mqtt.Client,
        userdata: object,
        mid: int,
        reasons: list[ReasonCode],
        props: Properties | None,
    ) -> None:
        if any(r.is_failure for r in reasons):
            log.error("broker refused the subscription: %s", reasons)
            return
        log.info("subscribed to %s", self.topic_filter)
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
        if not self._stop.is_set():
            log.warning("disconnected from broker (%s); reconnecting", reason)

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        self._queue.put(Incoming(msg.topic, bytes(msg.payload), msg.mid, msg.qos))

    # -- lifecycle --------------------------------------------------------------
    def start(self) -> None:
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

    def stop(self, timeout_s: float = 10.0) -> None:
        """Finish the batch in hand, then disconnect. Unacknowledged messages stay
        with the broker for the next start."""
        self._stop.set()
        self._thread.join(timeout_s)
        self._write_summaries(None)
        self._client.disconnect()
        self._client.loop_stop()
        self._writer.close()

    # -- ingest -----------------------------------------------------------------
    def _take_batch(self) -> list[Incoming]:
        try:
            first = self._queue.get(timeout=0.2)
        except queue.Empty:
            return []
        items = [first]
        deadline = time.monotonic() + self.settings.ingest.linger_ms / 1000
        budget = self.settings.ingest.max_batch_messages
        while len(items) < budget:
            remaining = deadline - time.monotonic()
            try:
                items.append(
                    self._queue.get(timeout=remaining)
                    if remaining > 0
                    else self._queue.get_nowait()
                )
            except queue.Empty:
                break
        return items

    def _run(self) -> None:
        while not self._stop.is_set():
            items = self._take_batch()
            if items:
                self._handle(items)
            if time.monotonic() >= self._next_summary_flush:
                self._next_summary_flush = time.monotonic() + SUMMARY_FLUSH_S
                self._write_summaries(datetime.now(UTC))

    def _write_summaries(self, now: datetime | None) -> None:
        """Write the finished summary intervals (all open ones when `now` is None)."""
        lines = self.summaries.flush(now)
        if not lines:
            return
        try:
            self._writer.write(lines)
        except (StoreUnavailable, StoreRejected) as exc:
            # Summaries are derived data: a lost interval is logged, never retried
            # in the ingest path (the raw series still hold everything).
            self.stats.summary_write_errors += 1
            log.warning("school summaries not written (%s)", exc)

    def _handle(self, items: list[Incoming]) -> None:
        batch = build_batch([(i.topic, i.payload) for i in items])
        self.stats.count_batch(batch)
        if not self._write_with_retry(batch):
            return  # stopping: nothing acknowledged, the broker redelivers
        if not self._publish_dead_letters(batch.dead_letters):
            return
        for school, device, sample in batch.accepted:
            self.summaries.add(school, device, sample)
        self._run_rules(batch)
        for item in items:
            if item.qos > 0:
                self._client.ack(item.mid, item.qos)
        self.stats.acked += len(items)

    def _run_rules(self, batch: Batch) -> None:
        """The rules see what the store has confirmed. Their failure (a bug, the alert
        database down) must not stop telemetry: it is logged and counted, and the
        batch is still acknowledged (the time series hold the evidence)."""
        if self.alerting is None or not batch.accepted:
            return
        try:
            self.alerting.on_samples(batch.accepted, datetime.now(UTC))
        except Exception:
            self.stats.alerting_errors += 1
            log.exception("rules failed on a batch of %d samples", len(batch.accepted))

    def _write_with_retry(self, batch: Batch) -> bool:
        delay = self.settings.ingest.retry_initial_s
        while True:
            try:
                self._writer.write(batch.lines)
                self.stats.samples_written += batch.sample_count
                return True
            except StoreUnavailable as exc:
                self.stats.write_retries += 1
                log.warning("store unavailable (%s); retrying in %.1f s", exc, delay)
            except StoreRejected as exc:
                log.error("store refused a batch (%s); writing message by message", exc)
                batch.isolate(self._writer)
                return True
            if self._stop.wait(delay):
                return False
            delay = min(delay * 2, self.settings.ingest.retry_max_s)

    def _publish_dead_letters(self, letters: list[DeadLetter]) -> bool:
        """Publish each dead letter at QoS 1 and wait for the broker's PUBACK (at least
        once: a connection lost while waiting means publishing it again)."""
        for letter in letters:
            payload = to_dead_letter(letter)
            while not self._published(payload):
                if self._stop.is_set():
                    return False
            log.info("dead-lettered %s: %s", letter.topic, letter.reason)
        return True

    def _published(self, payload: bytes) -> bool:
        if not self.connected.wait(1.0):
            return False
        info = self._client.publish(self.settings.mqtt.dead_letter_topic, payload, qos=1)
        try:
            info.wait_for_publish(timeout=10.0)
            return info.is_published()
        except (RuntimeError, ValueError):  # not connected or queue full: try again
            time.sleep(0.2)
            return False
