"""Reachability on a school network, between two reports: the `connectivity` block.

"Hard Wi-Fi access" is a laptop that is associated with the school's Wi-Fi and still
cannot reach anything. The radio figures (`agent.wifi_watch`) do not see it; this
watch does, from what the agent does anyway, with no probe of its own:

- each look at the Wi-Fi (`look`, every 30 s by default, and at each report) adds
  the time since the previous look to `school_online_s` (on a school network and
  connected to the broker) or `school_unreachable_s` (on a school network, no broker
  connection). A gap longer than `max_gap_s` (the laptop slept) counts for nothing
  and starts afresh;
- an association with a school network made while the broker is not connected
  starts the connection clock; the broker's first acknowledgement after it (the
  PUBACK of the retained "online" status the agent publishes on connecting) stops
  it: `connect_delay_s`, the "morning connection time", sent once;
- the MQTT link reports each failed attempt with its cause (`failed`: dns, connect,
  timeout, tls, refused, closed), each name resolution (`dns`), each gateway check
  (`gateway`) and each acknowledgement with its round trip (`acked`).

Privacy (docs/privacy.md): only time spent on a school network is described. Events
that happen elsewhere (at home, on a phone's hotspot) are not kept, and a report
taken away from school with no school time since the previous one has no block
(`summary` returns None).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

FailureKind = Literal["dns", "connect", "timeout", "tls", "refused", "closed"]
DEFAULT_MAX_GAP_S = 120.0  # four looks at the default 30 s: longer is a sleep


def _median(values: list[float]) -> float:
    # Not `statistics.median`: that module pulls in decimal and fractions, about
    # 0.5 MB of resident memory on every laptop for one median per report.
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


@dataclass
class ReachWatch:
    max_gap_s: float = DEFAULT_MAX_GAP_S
    online_s: float = 0.0
    unreachable_s: float = 0.0
    rtts_ms: list[float] = field(default_factory=list)
    failures: int = 0
    last_failure: FailureKind | None = None
    dns_ok: bool | None = None
    gateway_ok: bool | None = None
    connect_delay_s: float | None = None
    _school_seen: bool = False  # any school time (or event) since the last summary
    _last_t: float | None = None
    _on_school: bool = False
    _connected: bool = False
    _associated_at: float | None = None  # waiting for the broker's first answer
    _dropped_waiting: float | None = None  # that clock, kept over a look off the network

    @property
    def on_school(self) -> bool:
        return self._on_school

    def look(self, on_school: bool, connected: bool, t: float) -> None:
        """One look at the link at time `t` (seconds): on a school network? broker
        connected? The time since the previous look goes to the previous state."""
        last = self._last_t
        slept = last is None or t - last > self.max_gap_s or t < last
        if not slept and last is not None and self._on_school:
            if self._connected:
                self.online_s += t - last
            else:
                self.unreachable_s += t - last
        if on_school and (slept or not self._on_school):
            # A new association (or a wake-up on the school network): the connection
            # clock runs only when there is a connection to make. A Wi-Fi drop of a
            # look or two while still waiting keeps the clock of the first association.
            waiting = self._dropped_waiting if not slept else None
            self._associated_at = None if connected else (t if waiting is None else waiting)
            if waiting is None:
                self.dns_ok = None  # a new network: its resolver is yet to be seen
        self._dropped_waiting = None
        if not on_school:
            if self._on_school and not slept:
                self._dropped_waiting = self._associated_at
            self._associated_at = None
        self._last_t, self._on_school, self._connected = t, on_school, connected
        self._school_seen = self._school_seen or on_school

    def acked(self, rtt_ms: float | None, t: float) -> None:
        """The broker acknowledged a publish at `t` after `rtt_ms` (None: unknown)."""
        self._connected = True
        if not self._on_school:
            return
        if rtt_ms is not None:
            self.rtts_ms.append(rtt_ms)
            if len(self.rtts_ms) > 256:  # a long drain: keep a bounded, recent sample
                del self.rtts_ms[:128]
        if self._associated_at is not None:
            self.connect_delay_s = max(0.0, t - self._associated_at)
            self._associated_at = None

    def failed(self, kind: FailureKind) -> None:
        """A connection attempt failed (`kind`: its cause); the link is down."""
        self._connected = False
        if self._on_school:
            self.failures += 1
            self.last_failure = kind
            if kind == "dns":
                self.dns_ok = False

    def disconnected(self) -> None:
        self._connected = False

    def dns(self, ok: bool) -> None:
        """The broker's name resolved (or not) at a connection attempt."""
        if self._on_school:
            self.dns_ok = ok

    def gateway(self, ok: bool | None) -> None:
        """The default gateway answered (or not; None: could not tell)."""
        if self._on_school:
            self.gateway_ok = ok

    def summary(self) -> dict[str, Any] | None:
        """The block for the report taken now; the next window starts. None when the
        window holds no school time."""
        if not (self._school_seen or self._on_school):
            self._reset()
            return None
        out: dict[str, Any] = {
            "broker_rtt_ms": round(_median(self.rtts_ms), 1) if self.rtts_ms else None,
            "dns_ok": self.dns_ok,
            "gateway_ok": self.gateway_ok,
            "broker_ok": self._connected if self._on_school else None,
            "school_online_s": round(self.online_s, 1),
            "school_unreachable_s": round(self.unreachable_s, 1),
            "connect_delay_s": (
                round(self.connect_delay_s, 1) if self.connect_delay_s is not None else None
            ),
            "failure": self.last_failure,
            "failed_attempts": self.failures,
        }
        self._reset()
        return out

    def _reset(self) -> None:
        self.online_s = self.unreachable_s = 0.0
        self.rtts_ms = []
        self.failures, self.last_failure = 0, None
        self.gateway_ok = None
        self.connect_delay_s = None
        self._school_seen = self._on_school
