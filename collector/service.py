"""The collector process: MQTT in, time series out, acknowledged only once stored.

Two parts, joined here:
- the MQTT side (collector/mqttlink.py): the paho client, its persistent session,
  the subscription (shared, plain, or one per school of a partition), PUBACKs and
  dead-letter publishes;
- the ordered-commit pipeline (collector/pipeline.py): ingest thread, writer
  threads, commit in the order received, then PUBACK through the MQTT side.
Around them: the summaries and rules (`Derived`), the metrics, the stats.
"""

from __future__ import annotations

import gc
import threading
import time
from datetime import UTC, datetime

import paho.mqtt.client as mqtt

from collector.alerting import Alerting
from collector.config import CollectorSettings
from collector.derived import Derived
from collector.metrics import CollectorMetrics
from collector.mqttlink import MqttLink
from collector.partition import Partition
from collector.pipeline import INGEST_STALL_S, CommitPipeline, Incoming
from collector.stats import Stats
from collector.store import LineWriter, StoreWriter

__all__ = ["INGEST_STALL_S", "Collector", "Incoming", "tune_runtime"]


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
        self.partition = partition  # `[partition]`: a plain subscription per school
        self.stats = Stats()
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
        # `[metrics] enabled`: counted per batch, served by its own thread.
        self.metrics = (
            CollectorMetrics(settings.metrics, self) if settings.metrics.enabled else None
        )
        if self.metrics is not None and alerting is not None:
            self.derived.rules_timer = self.metrics.rules_timer()
        self.pipeline = CommitPipeline(
            settings, self._writer, self.derived,
            stats=self.stats, stopping=self._stop, metrics=self.metrics,
        )  # fmt: skip
        self.link = MqttLink(
            settings, self.pipeline.put, on_up=self._broker_up, on_down=self._broker_down,
            stopping=self._stop, client=client, partition=partition, metrics=self.metrics,
        )  # fmt: skip
        self.pipeline.link = self.link
        self.connected = self.link.connected  # connected and subscribed

    # -- the MQTT side's state --------------------------------------------------------------
    @property
    def topic_filter(self) -> str:
        return self.link.topic_filter

    @property
    def client_id(self) -> str:
        return self.link.client_id

    def refresh_subscriptions(self) -> int:
        """With partitions: follow the registry's schools (the main loop's call)."""
        return self.link.refresh_subscriptions()

    @property
    def schools_subscribed(self) -> int:
        return self.link.schools_subscribed

    def _broker_up(self) -> None:
        if self.alerting is not None:  # telemetry can arrive: laptops may be absent again
            self.alerting.resume(datetime.now(UTC))

    def _broker_down(self) -> None:
        if self.metrics is not None:
            self.metrics.disconnected()
        if self.alerting is not None:  # nothing can arrive: nobody becomes absent
            self.alerting.pause(datetime.now(UTC))

    # -- figures for the metrics (read when scraped, from another thread) -------------
    @property
    def store_writer(self) -> StoreWriter:
        return self._writer

    def inflight(self) -> int:
        """Messages received and not yet acknowledged (queued, or in a batch)."""
        return self.pipeline.inflight()

    def rate_limited_devices(self) -> int:
        return self.pipeline.rate_limited_devices()

    def stalled(self) -> str | None:
        """None while every loop runs, else which one stopped (for /healthz)."""
        stalled = self.pipeline.stalled()
        if stalled is None and self.link.network_stalled():
            return "the MQTT network thread has stopped"
        return stalled

    # -- lifecycle --------------------------------------------------------------------
    def start(self) -> None:
        """Start the loops (and the metrics server first: OSError if its port is taken)."""
        if self.metrics is not None:
            self.metrics.start()
        tune_runtime()
        self.link.start()
        self.pipeline.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Finish the batches in hand if the store takes them, then disconnect.
        Unacknowledged messages stay with the broker for the next start."""
        self._stop.set()
        self.pipeline.join(time.monotonic() + timeout_s)
        self.derived.stop()
        self.link.stop()
        self._writer.close()
        if self.metrics is not None:
            self.metrics.stop()


def tune_runtime() -> None:
    """Fewer garbage collections: validation allocates ~40 objects per sample (pydantic
    models and their dicts); with the default threshold (700) building a batch took
    ~24 µs per sample instead of ~17 (measured, BENCHMARKS.md). Objects alive at
    start-up are frozen out of every pass; cycles are still collected."""
    gc.freeze()
    gc.set_threshold(50_000, 20, 10)
