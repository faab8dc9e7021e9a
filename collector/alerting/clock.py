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

from collections.abc import Iterable, Sequence
from datetime import datetime

DEFAULT_LATENESS_S = 12 * 3600.0


MAX_OUTAGES = 64  # the broker outages remembered (wall-clock spans, latest kept)
Outage = tuple[float, float | None]  # (start, end) epoch s; end None while it lasts


class ConnectedClock:
    """Also remembers when the collector lost the broker (`outages`): laptops cut off
    during such a span were cut off from the broker, not by their school's network
    (collector.rules.reach)."""

    def __init__(self) -> None:
        self.connected_s = 0.0  # connected time before the current stretch
        self._since: float | None = None  # epoch s the current stretch began; None: paused
        self.outages: list[Outage] = []

    def restore(self, clock_s: float, outages: Iterable[Sequence[float | None]] = ()) -> None:
        """Go on from a saved clock (and its outages)."""
        self.connected_s = max(self.connected_s, clock_s)
        known = set(self.outages)
        for start, end in outages:
            if start is not None and (start, end) not in known:
                self.outages.append((float(start), None if end is None else float(end)))
        self.outages.sort(key=lambda o: o[0])
        del self.outages[:-MAX_OUTAGES]

    def resume(self, now: datetime) -> None:
        """Telemetry can arrive (start, reconnection): the clock runs."""
        if self._since is None:
            self._since = now.timestamp()
            if self.outages and self.outages[-1][1] is None:
                self.outages[-1] = (self.outages[-1][0], self._since)

    def pause(self, now: datetime) -> None:
        """Telemetry cannot arrive (disconnected from the broker): the clock stops."""
        if self._since is not None:
            self.connected_s = self.at(now)
            self._since = None
            self.outages.append((now.timestamp(), None))
            del self.outages[:-MAX_OUTAGES]

    def down_during(self, start_s: float, end_s: float, margin_s: float) -> bool:
        """Was the broker lost during [start_s, end_s), or less than `margin_s` before
        (the laptops reconnect with a backoff after an outage)?"""
        return any(s < end_s and (e is None or e + margin_s > start_s) for s, e in self.outages)

    @property
    def paused(self) -> bool:
        return self._since is None

    def at(self, now: datetime) -> float:
        """Seconds of connected time up to `now` (the collector's clock)."""
        if self._since is None:
            return self.connected_s
        return self.connected_s + max(0.0, now.timestamp() - self._since)
