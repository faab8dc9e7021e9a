"""School networks with good radio and poor reachability, for simulated laptops.

A laptop can be associated with the school's Wi-Fi at a good signal and still not
reach the broker: the school's resolver fails, one access point is put on a guest
VLAN behind a captive portal, the uplink is saturated at 8:00, a laptop's own VPN
or proxy is misconfigured. A `Cut` is one such span (a school, one of its access
points, or one laptop); `Network` holds them.

`SimLink` is one laptop's MQTT link under those cuts, driven by the simulation
clock. It gives the agent what the real link (`agent.mqtt.Publisher`) gives it:
`up()` for the agent's looks (`agent.runtime.link_up`), and the events the real link
reports to the agent's `ReachWatch`: each resolution of the broker's name (`dns`),
each failed attempt with its cause (`failed`), a connection lost (`disconnected`),
each PUBACK with its round trip (`acked`; the first one after an association made
while disconnected gives `connect_delay_s`). Attempts follow the real link's
backoff (`agent.mqtt.Backoff`: 2 s doubling, full jitter, 300 s at most). The gateway
check is the service's (`agent.service`: at a report, on a school network, while
the link is failing).

A laptop that slept (longer than `max_gap_s` since its previous look) has lost its
connection: it reconnects within seconds of waking (paho's first delay), so every
morning's association has a short connection time of its own.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

import paho.mqtt.client as mqtt

from agent.mqtt import Backoff
from agent.reach import FailureKind, ReachWatch
from agent.runtime import Link

BACKOFF_BASE_S, BACKOFF_CAP_S = 2.0, 300.0  # agent.mqtt.Publisher's defaults
RTT_MS = (15.0, 60.0)  # a broker's round trip from a school (uniform)


@dataclass(frozen=True)
class Cut:
    """From `start` to `end`, laptops associated with `school`'s network (at one
    access point `bssid`, or one laptop `device`, when given) cannot reach the broker."""

    school: str
    start: datetime
    end: datetime
    failure: FailureKind  # what a connection attempt fails with
    dns_ok: bool = True  # does the broker's name resolve? (False: failure "dns")
    gateway_ok: bool | None = True  # does the default gateway answer?
    drops: bool = False  # connections open at `start` are lost (else they go on)
    slow: bool = False  # a saturated uplink: the attempt in flight succeeds at `end`
    bssid: str | None = None
    device: str | None = None
    cause: str = ""

    def covers(self, bssid: str, device: str, t: datetime) -> bool:
        return (
            self.start <= t < self.end
            and (self.bssid is None or self.bssid == bssid)
            and (self.device is None or self.device == device)
        )


class Network:
    """Every cut of a run, found by school (and laptop) at a given time."""

    def __init__(self, cuts: list[Cut] | None = None) -> None:
        self.cuts: list[Cut] = []
        self._by_school: dict[str, list[Cut]] = {}
        self._by_device: dict[str, list[Cut]] = {}
        for cut in cuts or []:
            self.add(cut)

    def add(self, cut: Cut) -> None:
        self.cuts.append(cut)
        if cut.device is not None:
            self._by_device.setdefault(cut.device, []).append(cut)
        else:
            self._by_school.setdefault(cut.school, []).append(cut)

    def cut(self, school: str, bssid: str | None, device: str, t: datetime) -> Cut | None:
        """The cut a laptop at access point `bssid` of `school` is under at `t` (None:
        it reaches the broker; `bssid` None: not on the school's network)."""
        if bssid is None:
            return None
        for cut in self._by_device.get(device, ()):
            if cut.covers(bssid, device, t):
                return cut
        for cut in self._by_school.get(school, ()):
            if cut.covers(bssid, device, t):
                return cut
        return None

    def __bool__(self) -> bool:
        return bool(self.cuts)


class SimLink:
    """One laptop's MQTT link under the network's cuts (see the module's docstring).
    `inner` takes what is published while the link is up (a sink's link); without
    one, publishing returns None and the caller takes the samples from the spool."""

    def __init__(
        self,
        network: Network,
        school: str,
        device: str,
        rng: random.Random,
        *,
        max_gap_s: float,
        inner: Link | None = None,
    ) -> None:
        self.network, self.school, self.device = network, school, device
        self.rng, self.max_gap_s, self.inner = rng, max_gap_s, inner
        self.backoff = Backoff(BACKOFF_BASE_S, BACKOFF_CAP_S, rng)
        self._up = False
        self._next: datetime | None = None  # the next connection attempt
        self._last: datetime | None = None  # the previous look
        self._bssid: str | None = None

    def publish(self, payload: bytes) -> mqtt.MQTTMessageInfo | None:
        if not self._up or self.inner is None:
            return None  # the spool keeps it
        return self.inner.publish(payload)

    def up(self) -> bool:
        return self._up

    def failing(self) -> bool:
        """Not connected, and an attempt failed since the last connection."""
        return not self._up and self.backoff.failures > 0

    def reachable(self, bssid: str | None, t: datetime) -> bool:
        """Can the laptop reach the broker from where it is at `t` (now or within its
        next attempt's few seconds)?"""
        return self._up or self.network.cut(self.school, bssid, self.device, t) is None

    def advance(self, t: datetime, bssid: str | None, reach: ReachWatch) -> None:
        """What the link did since the previous look, before the agent looks at `t`;
        `bssid`: the school access point the laptop is associated with (None: not on
        the school's network)."""
        last, self._last = self._last, t
        if last is None or (t - last).total_seconds() > self.max_gap_s or bssid != self._bssid:
            # Woke up, or moved to another network: the connection is gone; the first
            # attempt comes within seconds (paho's first delay is 1-5 s).
            self._bssid = bssid
            self._up = False
            self.backoff.reset()
            self._next = t + timedelta(seconds=self.rng.uniform(1.0, 5.0))
            return
        if self._up:
            cut = self.network.cut(self.school, bssid, self.device, t)
            if cut is None or not cut.drops:
                return
            # The connection was lost when the cut began (a VLAN change, a restart).
            reach.failed("closed")
            reach.disconnected()
            self._up = False
            lost = max(cut.start, last)
            self._next = lost + timedelta(seconds=self.backoff.next_delay())
        self._attempts(t, bssid, reach)

    def _attempts(self, t: datetime, bssid: str | None, reach: ReachWatch) -> None:
        while not self._up and self._next is not None and self._next <= t:
            at = self._next
            cut = self.network.cut(self.school, bssid, self.device, at)
            if cut is None:
                reach.dns(True)
                self._up = True
                self.backoff.reset()
                self._next = None
                # The PUBACK of the retained "online" status: the broker's first answer.
                reach.acked(self._rtt(), at.timestamp())
                return
            reach.dns(cut.dns_ok)
            reach.failed("dns" if not cut.dns_ok else cut.failure)
            self._next = at + timedelta(seconds=self.backoff.next_delay())
            if cut.slow and cut.end < self._next:
                self._next = cut.end  # the handshake in flight completes at last

    def connect_from(self, bssid: str | None, t: datetime, reach: ReachWatch) -> bool:
        """Wake at `t` at `bssid` (None: a home network) and try to connect as the
        link does in its first seconds; True when connected."""
        self.advance(t, bssid, reach)
        if not self._up:
            self.advance(t + timedelta(seconds=10), bssid, reach)
        return self._up

    def gateway_ok(self, bssid: str | None, t: datetime) -> bool | None:
        """What the service's gateway check finds now (it runs only while failing)."""
        cut = self.network.cut(self.school, bssid, self.device, t)
        return True if cut is None else cut.gateway_ok

    def delivered(self, t: datetime, reach: ReachWatch) -> None:
        """The PUBACK of the report sent at `t`, when the link is up."""
        if self._up:
            rtt = self._rtt()
            reach.acked(rtt, t.timestamp() + rtt / 1000)

    def _rtt(self) -> float:
        return round(self.rng.uniform(*RTT_MS), 1)
