"""What the collector derives from confirmed telemetry and writes beside it: the
per-school summaries of the fleet dashboard, the alert transitions and forecast
counts of the alerting, and the alerting's periodic sweep.

Derived data never holds up telemetry: a summary interval the store refuses is
logged and counted (the raw series still hold everything); alert and forecast
points the store cannot take yet are kept for the next flush; an alerting failure
(a bug, the alert database away) is logged and counted.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from collector.alerting import Alerting
from collector.ingest import Accepted, each_sample
from collector.samples import Sample
from collector.stats import Stats
from collector.store import StoreRejected, StoreUnavailable, StoreWriter
from collector.summaries import SchoolSummaries

log = logging.getLogger(__name__)

SUMMARY_FLUSH_S = 60.0


class Derived:
    """Not thread-safe: the collector calls it under its commit lock (or once the
    writer threads have stopped), except `tick`, which the alerting locks itself."""

    def __init__(self, writer: StoreWriter, stats: Stats, alerting: Alerting | None) -> None:
        self.writer = writer
        self.stats = stats
        self.alerting = alerting
        # Per-school summaries for the fleet dashboard (its cost must not grow with
        # the fleet): accumulated from confirmed samples, written every minute.
        self.summaries = SchoolSummaries()
        self._alert_lines: list[str] = []  # alert/forecast points not written yet
        self._next_flush = time.monotonic() + SUMMARY_FLUSH_S
        # Seconds in the alerting per batch, to the collector's metrics when they are on.
        self.rules_timer: Callable[[float], None] | None = None

    def add(self, groups: Sequence[Accepted]) -> None:
        """A batch the store confirmed: into the summaries, then through the rules."""
        for group in groups:
            self.summaries.add_message(group.school, group.device, group.samples, group.ts_ms)
        if self.alerting is not None:
            self._run_rules(each_sample(groups))

    def _run_rules(self, accepted: list[tuple[str, str, Sample]]) -> None:
        """The rules see what the store has confirmed. Their failure must not stop
        telemetry: it is logged and counted, and the batch is still acknowledged
        (the time series hold the evidence)."""
        if self.alerting is None or not accepted:
            return
        started = time.perf_counter()
        try:
            self.alerting.on_samples(accepted, datetime.now(UTC))
        except Exception:
            self.stats.alerting_errors += 1
            log.exception("rules failed on a batch of confirmed samples")
        if self.rules_timer is not None:
            self.rules_timer(time.perf_counter() - started)

    def maybe_flush(self) -> None:
        if time.monotonic() >= self._next_flush:
            self._next_flush = time.monotonic() + SUMMARY_FLUSH_S
            self.flush(datetime.now(UTC))

    def flush(self, now: datetime | None) -> None:
        """Write the finished summary intervals (all open ones when `now` is None),
        and the alert transitions and forecasts for the dashboards."""
        lines = self.summaries.flush(now)
        alert_lines = self._take_alert_lines()
        try:
            if lines:
                self.writer.write(lines)
        except (StoreUnavailable, StoreRejected) as exc:
            self.stats.summary_write_errors += 1
            log.warning("school summaries not written (%s)", exc)
        if not alert_lines:
            return
        try:
            self.writer.write(alert_lines)
        except StoreUnavailable as exc:  # kept for the next flush
            self._alert_lines = alert_lines + self._alert_lines
            log.warning("%d alert/forecast points not written yet (%s)", len(alert_lines), exc)
            return
        except StoreRejected as exc:  # not retried: they would be refused again
            self.stats.summary_write_errors += 1
            log.error("store refused %d alert/forecast points (%s)", len(alert_lines), exc)
        self._lines_done()

    def _lines_done(self) -> None:
        if self.alerting is None:
            return
        try:
            self.alerting.lines_written()
        except Exception:  # the alert database away: written again later, same points
            self.stats.alerting_errors += 1
            log.exception("alert transitions cursor not saved")

    def _take_alert_lines(self) -> list[str]:
        lines, self._alert_lines = self._alert_lines, []
        if self.alerting is None:
            return lines
        try:
            return lines + self.alerting.take_lines()
        except Exception:  # the alert database away: the transitions wait there
            self.stats.alerting_errors += 1
            log.exception("alert transitions not read")
            return lines

    def tick(self) -> None:
        """Sweeps (silent devices, outbox retries, saves) also when no telemetry
        arrives; with telemetry, the batches' rules sweep on the same schedule."""
        if self.alerting is None:
            return
        try:
            self.alerting.tick(datetime.now(UTC))
        except Exception:
            self.stats.alerting_errors += 1
            log.exception("alert sweep failed")

    def stop(self) -> None:
        """Save the alerting's device state, then write everything still open."""
        if self.alerting is not None:
            try:
                self.alerting.stop()
            except Exception:
                self.stats.alerting_errors += 1
                log.exception("device state not saved at stop")
        self.flush(None)
