"""The collector's own metrics and health checks over HTTP (`[metrics] enabled = true`).

One small HTTP server thread (the standard library's; loopback by default, no
authentication: never expose it publicly, docs/operations.md) answers:
- `/metrics`: the Prometheus text format (prometheus_client), this collector's
  figures, its process's (CPU, memory, open files) and each thread's CPU time;
- `/healthz`: 200 while the process runs its loops (ingest, writers, the MQTT
  network thread); 503 naming the one that stopped;
- `/readyz`: 200 when connected and subscribed to the broker AND the latest store
  write or ping succeeded within 3 x `store_check_s`; else 503 and a one-line reason.
  A school registry file refused by a reload is added to its line (the previous
  registry still routes, so it does not make the collector unready).

What it costs the ingest path: nothing per message or sample. The counters the
collector keeps anyway (collector/stats.py) are read when scraped; what is new is
counted once per batch (rejections by reason, write outcomes, the histograms) and,
once the store has a batch, one `max()` per message for the newest sample time of
its school. Figures that need the alert database (outbox, open alerts) or the
alerting's lock (devices held, late samples) are read every `refresh_s` by this
module's own thread, which also pings the store when no write succeeded lately.

Each collector has its own registry (tests run several collectors in one process).
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import TYPE_CHECKING, Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from collector import BUILD
from collector.store import StoreError
from collector.threadcpu import thread_cpu_seconds

if TYPE_CHECKING:
    from collector.config import MetricsSettings
    from collector.deadletter import DeadLetter
    from collector.ingest import Batch
    from collector.notify.live import LiveRegistry
    from collector.service import Collector

log = logging.getLogger(__name__)

# Why a sample or message was refused, by class (the `reason` label).
REASONS = ("invalid", "malformed", "topic", "rate_limited", "collector_error")
# A telemetry batch's write attempt (the `outcome` label).
OUTCOMES = ("ok", "retry", "error")
OUTBOX_STATUSES = ("pending", "failed")
CATEGORIES = ("hardware", "network")

# Mosquitto's $SYS topics -> our gauges. Mosquitto 2.0 publishes both stored-message
# topics (the second is the older name); a broker with only one still fills the gauge.
SYS_TOPICS = {
    "$SYS/broker/clients/connected": "lordi_broker_clients_connected",
    "$SYS/broker/store/messages/count": "lordi_broker_messages_stored",
    "$SYS/broker/messages/stored": "lordi_broker_messages_stored",
    "$SYS/broker/subscriptions/count": "lordi_broker_subscriptions",
}
_BROKER_HELP = {
    "lordi_broker_clients_connected": "Clients connected to the broker ($SYS).",
    "lordi_broker_messages_stored": "Messages the broker holds, retained and queued ($SYS).",
    "lordi_broker_subscriptions": "Subscriptions on the broker ($SYS).",
}

_MAX_REASON = 200


def reason_class(reason: str) -> str:
    """The `reason` label of a dead letter's reason text (collector/validate.py,
    ingest.py and ratelimit.py word them)."""
    if reason.startswith("rate limited:"):
        return "rate_limited"
    if reason.startswith("collector error:"):
        return "collector_error"
    if reason.startswith(("payload: not JSON", "payload: JSON nested")):
        return "malformed"
    if reason.startswith("topic") or "differs from the topic's" in reason:
        return "topic"
    return "invalid"  # the contract, a size limit, or the store refused it


def _count_reasons(letters: Iterable[DeadLetter], into: dict[str, int]) -> None:
    for letter in letters:
        into[reason_class(letter.reason)] += 1


def _one_line(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= _MAX_REASON else line[: _MAX_REASON - 3] + "..."


class CollectorMetrics:
    """The figures of one `Collector`, its registry and its HTTP endpoints."""

    def __init__(self, settings: MetricsSettings, collector: Collector) -> None:
        # No *_created series beside every histogram (process-wide; the web's too).
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.settings = settings
        self._collector = collector
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        self.store_write_seconds = Histogram(
            "lordi_collector_store_write_seconds",
            "Time of one write request of a telemetry batch to the store (every attempt).",
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.batch_samples = Histogram(
            "lordi_collector_batch_samples",
            "Accepted samples per write batch.",
            registry=self.registry,
            buckets=(0, 1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 50_000),
        )
        self.rules_seconds = Histogram(
            "lordi_collector_rules_seconds",
            "Time in the alerting (rules, alert engine, sweeps) per confirmed batch.",
            # Only with [alerts] enabled: no rules, no series.
            registry=self.registry if collector.alerting is not None else None,
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.registry.register(_Figures(self))
        self._lock = threading.Lock()
        # Counted once per batch; every label present from the start (at 0), so a
        # rate() sees the first rejection.
        self.rejected = dict.fromkeys(REASONS, 0)  # ingest thread
        self.dead_letters = dict.fromkeys(REASONS, 0)  # commit (under its lock)
        self.store_writes = dict.fromkeys(OUTCOMES, 0)  # writer threads, self._lock
        self.newest_ms: dict[str, int] = {}  # school -> newest accepted sample (epoch ms)
        self.broker: dict[str, float] = {}  # $SYS figures, cleared when disconnected
        # Refreshed every refresh_s (alert database, alerting's lock); None: unknown.
        self.outbox: dict[str, int] | None = None
        self.open_alerts: dict[str, int] | None = None
        self.census: dict[str, int] | None = None
        # The store: latest outcome of a write or ping, and when one last succeeded.
        self._store_ok: bool | None = None
        self._store_ok_at = float("-inf")
        self._store_tried_at = float("-inf")
        self._store_reason = "not checked yet"
        self._refresh_failed = False
        self._stop = threading.Event()
        self._server: HTTPServer | None = None
        self._threads: list[threading.Thread] = []

    # --- the collector's calls (cheap: per batch) ---------------------------------

    def batch_built(self, batch: Batch) -> None:
        """Ingest thread: a batch was validated."""
        self.batch_samples.observe(batch.sample_count)
        if batch.dead_letters:
            _count_reasons(batch.dead_letters, self.rejected)

    def store_write(self, outcome: str, seconds: float | None, reason: str = "") -> None:
        """Writer threads: one write attempt of a telemetry batch (`seconds` None: a
        refusal inside an attempt, timed with the attempt)."""
        if seconds is not None:
            self.store_write_seconds.observe(seconds)
        now = time.monotonic()
        with self._lock:
            self.store_writes[outcome] += 1
            if outcome == "ok":
                self._store_ok, self._store_ok_at = True, now
                self._store_tried_at = now
            elif outcome == "retry":  # the store is unavailable
                self._store_ok, self._store_reason = False, _one_line(reason)
                self._store_tried_at = now

    def batch_committed(self, batch: Batch) -> None:
        """Commit (one batch at a time): the store has it, its dead letters are out."""
        if batch.dead_letters:
            _count_reasons(batch.dead_letters, self.dead_letters)
        if not batch.groups:
            return
        newest: dict[str, int] = {}
        for group in batch.groups:
            ts = max(group.ts_ms)
            if ts > newest.get(group.school, 0):
                newest[group.school] = ts
        with self._lock:
            known = self.newest_ms
            for school, ts in newest.items():
                if ts > known.get(school, 0):
                    known[school] = ts

    def rules_timer(self) -> Callable[[float], None]:
        return self.rules_seconds.observe

    def on_sys(self, topic: str, payload: bytes) -> None:
        """MQTT thread: a $SYS figure of the broker."""
        name = SYS_TOPICS.get(topic)
        if name is None:
            return
        try:
            self.broker[name] = float(payload.decode("ascii").strip())
        except (UnicodeDecodeError, ValueError):
            log.debug("unexpected $SYS payload on %s: %r", topic, payload[:40])

    def disconnected(self) -> None:
        self.broker.clear()  # stale until the broker publishes them again

    # --- health --------------------------------------------------------------------

    def live(self) -> tuple[bool, str]:
        stalled = self._collector.stalled()
        return (False, f"not live: {stalled}") if stalled else (True, "live")

    def store_reachable(self) -> tuple[bool, str]:
        with self._lock:
            ok, ok_at, reason = self._store_ok, self._store_ok_at, self._store_reason
        if ok is None:
            return False, "store: not checked yet"
        if not ok:
            return False, f"store unavailable: {reason}"
        age = time.monotonic() - ok_at
        if age > 3 * self.settings.store_check_s:
            return False, f"store: no write or ping succeeded for {age:.0f} s"
        return True, "store reachable"

    def ready(self) -> tuple[bool, str]:
        if not self._collector.connected.is_set():
            ok, why = False, "not ready: not connected and subscribed to the broker"
        else:
            ok, why = self.store_reachable()
            why = "ready" if ok else f"not ready: {why}"
        live = self.live_registry()
        if live is not None and live.refused is not None:
            why += f"; registry refused, previous one in force: {_one_line(live.refused)}"
        return ok, why

    def live_registry(self) -> LiveRegistry | None:
        """The school registry the alerting routes with (None: alerts off)."""
        alerting = self._collector.alerting
        notifier = alerting.notifier if alerting is not None else None
        return notifier.live if notifier is not None else None

    # --- the background thread: store ping, database figures ----------------------------

    def _ping_due(self, now: float) -> bool:
        with self._lock:
            return now - self._store_tried_at >= self.settings.store_check_s

    def ping_store(self) -> None:
        writer = self._collector.store_writer
        ping = getattr(writer, "ping", None)
        now = time.monotonic()
        if ping is None:  # a writer without /ping (tests' fakes): writes alone tell
            with self._lock:
                self._store_tried_at = now
            return
        try:
            ping()
        except StoreError as exc:
            ok, reason = False, str(exc)
        except Exception as exc:  # a bug must not stop the thread
            ok, reason = False, f"{type(exc).__name__}: {exc}"
        else:
            ok, reason = True, ""
        with self._lock:
            self._store_tried_at = time.monotonic()
            if ok:
                self._store_ok, self._store_ok_at = True, self._store_tried_at
            else:
                self._store_ok, self._store_reason = False, _one_line(reason)

    def refresh(self) -> None:
        """Figures from the alert database and the alerting (never the ingest path)."""
        alerting = self._collector.alerting
        if alerting is None:
            return
        try:
            census = alerting.census()
            outbox = alerting.store.outbox.status_counts()
            open_alerts = alerting.store.open_counts()
        except Exception as exc:  # the alert database away: keep the last figures
            if not self._refresh_failed:
                log.warning("metrics: alert figures not refreshed (%s)", _one_line(str(exc)))
            self._refresh_failed = True
            return
        if self._refresh_failed:
            log.info("metrics: alert figures refreshed again")
        self._refresh_failed = False
        self.census, self.open_alerts = census, open_alerts
        self.outbox = {str(status): count for status, count in outbox.items()}

    def _background(self) -> None:
        tick = min(1.0, self.settings.store_check_s / 2)
        next_refresh = 0.0
        while True:
            now = time.monotonic()
            if self._ping_due(now):
                self.ping_store()
            if now >= next_refresh:
                next_refresh = now + self.settings.refresh_s
                self.refresh()
            if self._stop.wait(tick):
                return

    # --- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        """Listen (raises OSError when the address is taken), then serve."""
        host, port = self.settings.host, self.settings.port
        server_class = _Server6 if ":" in host else _Server
        self._server = server_class((host, port), self)
        log.info("metrics and health on http://%s:%d/metrics, /healthz, /readyz",
                 host if ":" not in host else f"[{host}]", self.port)  # fmt: skip
        self._threads = [
            threading.Thread(
                target=self._server.serve_forever, kwargs={"poll_interval": 0.5},
                name="metrics-http", daemon=True,
            ),
            threading.Thread(target=self._background, name="metrics-refresh", daemon=True),
        ]  # fmt: skip
        for thread in self._threads:
            thread.start()

    @property
    def port(self) -> int:
        """The port listened on (the configured one, or the one given for 0)."""
        if self._server is None:
            return self.settings.port
        return int(self._server.server_address[1])

    def stop(self) -> None:
        self._stop.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        for thread in self._threads:
            thread.join(5)


class _Server(HTTPServer):
    def __init__(self, address: tuple[str, int], metrics: CollectorMetrics) -> None:
        self.metrics = metrics
        super().__init__(address, _Handler)


class _Server6(_Server):
    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    """GET and HEAD on three paths; anything else 404 (or 501 for other methods)."""

    server: _Server
    timeout = 5.0  # a client that sends nothing does not hold the (only) server thread
    server_version = "lordi-collector"
    sys_version = ""

    def do_GET(self) -> None:
        self._reply(body=True)

    def do_HEAD(self) -> None:
        self._reply(body=False)

    def _reply(self, body: bool) -> None:
        path = self.path.split("?", 1)[0]
        metrics = self.server.metrics
        text = "text/plain; charset=utf-8"
        try:
            if path == "/metrics":
                status, ctype, data = 200, CONTENT_TYPE_LATEST, generate_latest(metrics.registry)
            elif path in ("/healthz", "/readyz"):
                ok, why = metrics.live() if path == "/healthz" else metrics.ready()
                status, ctype, data = (200 if ok else 503), text, f"{why}\n".encode()
            else:
                status, ctype, data = 404, text, b"not found\n"
        except Exception:  # a bug in a figure: say so, keep serving
            log.exception("metrics: %s failed", path)
            status, ctype, data = 500, text, b"internal error\n"
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if body:
            self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # a scrape every few seconds: not worth a log line each


def _counter(name: str, doc: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, doc, value=value)


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)


def _labelled(
    family: type[CounterMetricFamily] | type[GaugeMetricFamily],
    name: str,
    doc: str,
    label: str,
    values: dict[str, int] | dict[str, float],
) -> Metric:
    metric = family(name, doc, labels=[label])
    for key, value in values.items():
        metric.add_metric([key], value)
    return metric


class _Figures:
    """Read at scrape time: the collector's counters and state, and the figures the
    background thread refreshed. No Python object of the ingest path is allocated
    per message for these."""

    def __init__(self, metrics: CollectorMetrics) -> None:
        self.m = metrics

    def collect(self) -> Iterator[Metric]:
        m, c = self.m, self.m._collector
        stats = c.stats
        yield _counter(
            "lordi_collector_messages_total",
            "MQTT telemetry messages received (taken into a batch).",
            stats.messages,
        )
        yield _counter(
            "lordi_collector_samples_accepted_total",
            "Samples that passed validation.",
            stats.samples_accepted,
        )
        yield _labelled(
            CounterMetricFamily,
            "lordi_collector_samples_rejected_total",
            "Rejected samples by reason; a message refused whole counts as one.",
            "reason",
            dict(m.rejected),
        )
        yield _labelled(
            CounterMetricFamily,
            "lordi_collector_dead_letters_total",
            "Dead letters published to the dead-letter topic, by reason.",
            "reason",
            dict(m.dead_letters),
        )
        with m._lock:
            writes, newest = dict(m.store_writes), dict(m.newest_ms)
        yield _labelled(
            CounterMetricFamily,
            "lordi_collector_store_writes_total",
            "Write attempts of telemetry batches to the store, by outcome.",
            "outcome",
            writes,
        )
        yield _gauge(
            "lordi_collector_inflight_messages",
            "Messages received from the broker and not acknowledged yet.",
            c.inflight(),
        )
        yield _gauge(
            "lordi_collector_rate_limited_devices",
            "Devices whose latest message the rate limit refused.",
            c.rate_limited_devices(),
        )
        yield _counter(
            "lordi_collector_alerting_errors_total",
            "Failures of the rules, sweeps or alert database (logged).",
            stats.alerting_errors,
        )
        threads = thread_cpu_seconds()
        if threads:  # Linux
            yield _labelled(
                CounterMetricFamily,
                "lordi_collector_thread_cpu_seconds_total",
                "CPU time of each of the collector's threads (mqtt-network, ingest, "
                "writer-N, lordi-outbox...): one near 1 s/s is the bottleneck.",
                "thread",
                threads,
            )
        yield _gauge(
            "lordi_collector_compiled_modules",
            "Hot modules running as mypyc extensions (collector/compiled.py; 0: pure Python).",
            len(BUILD.compiled),
        )
        yield _gauge(
            "lordi_collector_broker_connected",
            "1 when connected and subscribed to the broker.",
            1.0 if c.connected.is_set() else 0.0,
        )
        yield _gauge(
            "lordi_collector_store_reachable",
            "1 when the latest store write or ping succeeded, recently.",
            1.0 if m.store_reachable()[0] else 0.0,
        )
        last = GaugeMetricFamily(
            "lordi_collector_last_sample_timestamp_seconds",
            "Sample time of the newest accepted sample, per school.",
            labels=["school"],
        )
        for school, ts_ms in sorted(newest.items()):
            last.add_metric([school], ts_ms / 1000)
        yield last
        yield from self._alerting()
        yield from self._partition()
        yield from self._registry()
        yield from self._calendar()
        for name, value in sorted(m.broker.copy().items()):
            yield _gauge(name, _BROKER_HELP[name], value)

    def _partition(self) -> Iterator[Metric]:
        c = self.m._collector
        if c.partition is None:
            return
        yield _labelled(
            GaugeMetricFamily,
            "lordi_collector_partition_schools",
            "Schools whose telemetry this collector subscribes to ([partition]), labelled "
            '"index/count", as of the latest (re)subscription.',
            "partition",
            {f"{c.partition.index}/{c.partition.count}": float(c.schools_subscribed)},
        )

    def _registry(self) -> Iterator[Metric]:
        live = self.m.live_registry()
        if live is None:
            return
        yield _gauge(
            "lordi_collector_registry_schools",
            "Schools in the school registry in force.",
            len(live.current.schools),
        )
        yield _gauge(
            "lordi_collector_registry_loaded_timestamp_seconds",
            "When the school registry in force was loaded (start-up or reload).",
            live.loaded_at,
        )
        yield _gauge(
            "lordi_collector_registry_valid",
            "0 when the latest reload refused the registry file (the previous one routes).",
            0.0 if live.refused is not None else 1.0,
        )
        yield _counter(
            "lordi_collector_registry_reload_failures_total",
            "Reloads of the school registry refused (invalid or unreadable file).",
            live.failures,
        )

    def _calendar(self) -> Iterator[Metric]:
        """Per holiday zone of the registry's schools: does the school calendar hold
        today's school year (collector/rules/calendar.py)."""
        alerting = self.m._collector.alerting
        if alerting is None:
            return
        from collector.rules.silent import local_day  # noqa: PLC0415 - alerts on only

        covered = alerting.calendar.coverage(local_day(datetime.now(UTC)))
        yield _labelled(
            GaugeMetricFamily,
            "lordi_collector_calendar_covered",
            "1 when the school calendar holds today's school year for the zone (zone "
            '"": schools without one); 0: holiday weekdays count as school days there.',
            "zone",
            {zone: float(ok) for zone, ok in covered.items()},
        )

    def _alerting(self) -> Iterator[Metric]:
        m = self.m
        if m.outbox is not None:
            yield _labelled(
                GaugeMetricFamily,
                "lordi_collector_outbox_notifications",
                "Notifications in the outbox: pending (to send or retry), failed, "
                "digest (waiting for the school's digest time).",
                "status",
                m.outbox,
            )
        if m.open_alerts is not None:
            yield _labelled(
                GaugeMetricFamily,
                "lordi_collector_open_alerts",
                "Unresolved alerts (open or acknowledged), per category.",
                "category",
                m.open_alerts,
            )
        if m.census is not None:
            yield _gauge(
                "lordi_collector_devices_tracked",
                "Devices whose rule state this collector holds in memory.",
                m.census["devices"],
            )
            yield _counter(
                "lordi_collector_samples_late_total",
                "Samples too late for their Wi-Fi window or day verdicts.",
                m.census["samples_late"],
            )
