"""The outbox's own thread: notifications are delivered off the ingest path.

The alert engine writes each notification to the durable outbox in the same
transaction as the alert's change (collector.alerts). Sending it (SMTP, webhooks,
the retained MQTT topic) takes milliseconds to seconds per message; done inline,
on the thread that commits telemetry, a school's first day (hundreds of alerts
opening at once) would slow ingest for as long as the mails take. So the
collector's alerting only wakes this worker (`wake`), which claims and sends what
is due (`OutboxDeliverer.deliver_due`, leased rows: several collectors may share
the outbox), and looks again every `poll_s` for retries that came due.

`stop` lets the pass under way finish and, on the same thread, sends what is
due once more, so a collector stopped right after opening alerts still mails them.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime

from collector.notify.dispatch import OutboxDeliverer

log = logging.getLogger(__name__)


class OutboxWorker:
    def __init__(
        self,
        deliverer: OutboxDeliverer,
        poll_s: float = 30.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.deliverer = deliverer
        self.poll_s = poll_s
        self.clock = clock
        self.passes = 0  # delivery passes run (tests, metrics)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lordi-outbox", daemon=True)

    def start(self) -> None:
        if not self._thread.is_alive():
            self._thread.start()

    def wake(self) -> None:
        """Something was written to the outbox (or is due): deliver soon."""
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.poll_s)
            self._wake.clear()
            if not self._stop.is_set():
                self._pass()
        self._pass()  # the last pass, still on this thread

    def _pass(self) -> None:
        try:
            self.deliverer.deliver_due(self.clock())
        except Exception:  # the alert store away: the rows wait in the outbox
            log.exception("outbox delivery pass failed; retrying in %.0f s", self.poll_s)
        self.passes += 1

    def stop(self, timeout_s: float = 30.0) -> None:
        """Finish the pass under way, then send what is due once more.

        The last pass runs on the worker's thread; only a worker never started
        sends from the caller's.
        """
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                log.warning("outbox pass still running after %.0f s; rows stay leased", timeout_s)
        elif self._thread.ident is None:
            self._pass()
