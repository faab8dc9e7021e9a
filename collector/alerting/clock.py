"""The collector's connected clock: the one use of the collector's own time in
deciding when telemetry is complete.

It runs only while telemetry can arrive: from `resume` (connected and subscribed)
to `pause` (disconnected). It is saved with the alerting's state and goes on after a
restart from where it stopped. So the hours a broker or the collector is down do not
count: whatever laptops and the broker hold back during an outage still arrives "in
time" when it is over.

A school's telemetry window (or day) is complete once this clock has run
`lateness_s` since the first report of that window reached the collector
(collector.alerting.school): that is the bounded lateness. A report in time is one
that arrives within `lateness_s` of connected time after the first report of its
window (of its day, for the silence rules) — a laptop that spooled its morning under
a failing access point and sends it from home that evening is in time with the
default 12 h, whatever the arrival order and batching.
"""

from __future__ import annotations

from datetime import datetime

DEFAULT_LATENESS_S = 12 * 3600.0


class ConnectedClock:
    def __init__(self) -> None:
        self.connected_s = 0.0  # connected time before the current stretch
        self._since: float | None = None  # epoch s the current stretch began; None: paused

    def restore(self, clock_s: float) -> None:
        """Go on from a saved clock."""
        self.connected_s = max(self.connected_s, clock_s)

    def resume(self, now: datetime) -> None:
        """Telemetry can arrive (start, reconnection): the clock runs."""
        if self._since is None:
            self._since = now.timestamp()

    def pause(self, now: datetime) -> None:
        """Telemetry cannot arrive (disconnected from the broker): the clock stops."""
        if self._since is not None:
            self.connected_s = self.at(now)
            self._since = None

    @property
    def paused(self) -> bool:
        return self._since is None

    def at(self, now: datetime) -> float:
        """Seconds of connected time up to `now` (the collector's clock)."""
        if self._since is None:
            return self.connected_s
        return self.connected_s + max(0.0, now.timestamp() - self._since)
