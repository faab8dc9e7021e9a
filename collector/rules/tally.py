"""A device's school-network Wi-Fi readings in one telemetry window, on one access
point: counts against the Wi-Fi thresholds, constant size whatever the report rate.

Only readings taken connected to the school network count (`school_wifi`): a home
or phone network says nothing the school can act on, and the agent reports no
detail about it anyway. The tallies of a window feed the access point's verdict
(network.py: is this laptop degraded there?) and the laptop's own Wi-Fi rules
(wifi.py), once the window is complete.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from collector.rules.config import RulesConfig
from collector.samples import Connectivity, Sample, Wifi


@dataclass(slots=True)
class Near:
    """What only a window with a reading past a clear level needs (most have none)."""

    weak: int = 0  # RSSI below wifi_weak.rssi_below_dbm
    weak_hold: int = 0  # RSSI below wifi_weak.clear_at_dbm (a weak condition goes on)
    unstable: int = 0  # disconnects >= wifi_unstable.disconnects_at_or_above
    unstable_hold: int = 0  # disconnects >= wifi_unstable.clear_below
    rssi_min: float | None = None  # the lowest RSSI past the clear level
    # The latest reading past a clear level, for the evidence (a contract `Wifi`; after
    # a restart, a namespace with its fields: collector.rules.persist).
    last: Any = None
    last_ts: datetime | None = None


_NONE = Near()  # read-only: the counts of a window without such a reading


@dataclass(slots=True)
class Tally:
    """One laptop's readings in one window on one access point. Every laptop at
    school holds one (~100 B): the counts past a clear level are apart (`near`)."""

    bssid: str = ""  # the access point (its hash)
    more: Tally | None = None  # the next access point of the same window (roaming)
    readings: int = 0
    degraded: int = 0  # weak or unstable at the raise thresholds
    rssi_readings: int = 0  # readings with an RSSI
    disconnect_readings: int = 0  # readings with a disconnect count
    disconnects: int = 0
    rssi_sum: float = 0.0
    # Reachability (the agent's `connectivity` block): readings that had one, and
    # the seconds associated there with / without the broker.
    reach_readings: int = 0
    online_s: float = 0.0
    cut_s: float = 0.0
    dns_failed: int = 0  # readings whose broker name did not resolve
    gateway_down: int = 0  # readings whose default gateway did not answer
    failure: str = ""  # the latest reading's failure cause, when it had one
    near: Near | None = None

    @property
    def weak(self) -> int:
        return (self.near or _NONE).weak

    @property
    def weak_hold(self) -> int:
        return (self.near or _NONE).weak_hold

    @property
    def unstable(self) -> int:
        return (self.near or _NONE).unstable

    @property
    def unstable_hold(self) -> int:
        return (self.near or _NONE).unstable_hold

    @property
    def rssi_min(self) -> float | None:
        return (self.near or _NONE).rssi_min

    @property
    def last(self) -> Any:
        return (self.near or _NONE).last

    @property
    def last_ts(self) -> datetime | None:
        return (self.near or _NONE).last_ts

    @property
    def is_degraded(self) -> bool:
        """Most of the readings weak or unstable: the access point's view of a laptop."""
        return 2 * self.degraded > self.readings

    def cut_off(self, min_s: float) -> bool:
        """Associated there without reaching the broker for at least `min_s`, and
        longer than it reached it: the access point's view of a cut-off laptop."""
        return self.cut_s >= min_s and self.cut_s > self.online_s

    @property
    def near_threshold(self) -> bool:
        """A reading past a clear level: this window can start or prolong a condition."""
        return self.near is not None

    @property
    def mean_rssi_dbm(self) -> float | None:
        return self.rssi_sum / self.rssi_readings if self.rssi_readings else None


def school_wifi(sample: Sample) -> Wifi | None:
    """The sample's Wi-Fi reading if it was taken connected to the school network
    at a known access point."""
    wifi = sample.wifi
    if (
        wifi is None
        or not wifi.connected
        or wifi.on_school_network is not True
        or wifi.bssid_hash is None
    ):
        return None
    return wifi


def observe_reach(tally: Tally, reach: Connectivity) -> None:
    """A reading's reachability figures (a block without them counts for nothing)."""
    online, cut = reach.school_online_s, reach.school_unreachable_s
    if online is None and cut is None:
        return
    tally.reach_readings += 1
    tally.online_s += online or 0.0
    tally.cut_s += cut or 0.0
    tally.dns_failed += reach.dns_ok is False
    tally.gateway_down += reach.gateway_ok is False
    if reach.failure is not None:
        tally.failure = reach.failure


def observe(
    tally: Tally,
    wifi: Wifi,
    ts: datetime,
    config: RulesConfig,
    reach: Connectivity | None = None,
) -> None:
    weak_cfg, unstable_cfg = config.wifi_weak, config.wifi_unstable
    tally.readings += 1
    if reach is not None:
        observe_reach(tally, reach)
    rssi, count = wifi.rssi_dbm, wifi.disconnects
    weak_hold = rssi is not None and rssi < weak_cfg.clear_at_dbm
    unstable_hold = count is not None and count >= unstable_cfg.clear_below
    if rssi is not None:
        tally.rssi_readings += 1
        tally.rssi_sum += rssi
    if count is not None:
        tally.disconnect_readings += 1
        tally.disconnects += count
    if not (weak_hold or unstable_hold):
        return
    near = tally.near
    if near is None:
        near = tally.near = Near()
    degraded = False
    if weak_hold:
        assert rssi is not None
        near.weak_hold += 1
        if near.rssi_min is None or rssi < near.rssi_min:
            near.rssi_min = rssi
        if rssi < weak_cfg.rssi_below_dbm:
            near.weak += 1
            degraded = True
    if unstable_hold:
        near.unstable_hold += 1
        if count is not None and count >= unstable_cfg.disconnects_at_or_above:
            near.unstable += 1
            degraded = True
    if degraded:
        tally.degraded += 1
    near.last, near.last_ts = wifi, ts


def chain(head: Tally | None) -> list[Tally]:
    """The tallies of one device's window, one per access point."""
    out: list[Tally] = []
    while head is not None:
        out.append(head)
        head = head.more
    return out


def tally_for(head: Tally | None, bssid: str) -> tuple[Tally, Tally]:
    """(the head, the tally of `bssid`), appending one when the device roamed there."""
    if head is None:
        head = Tally(bssid=bssid)
        return head, head
    node = head
    while True:
        if node.bssid == bssid:
            return head, node
        if node.more is None:
            node.more = Tally(bssid=bssid)
            return head, node.more
        node = node.more


def merged(tallies: Iterable[Tally]) -> Tally:
    """One device's readings of a window on all the access points it used."""
    out = Tally()
    for t in tallies:
        out.bssid = out.bssid or t.bssid
        out.readings += t.readings
        out.degraded += t.degraded
        out.rssi_readings += t.rssi_readings
        out.disconnect_readings += t.disconnect_readings
        out.disconnects += t.disconnects
        out.rssi_sum += t.rssi_sum
        out.reach_readings += t.reach_readings
        out.online_s += t.online_s
        out.cut_s += t.cut_s
        out.dns_failed += t.dns_failed
        out.gateway_down += t.gateway_down
        out.failure = t.failure or out.failure
        if t.near is None:
            continue
        near = out.near = out.near or Near()
        near.weak += t.near.weak
        near.weak_hold += t.near.weak_hold
        near.unstable += t.near.unstable
        near.unstable_hold += t.near.unstable_hold
        low = t.near.rssi_min
        if low is not None and (near.rssi_min is None or low < near.rssi_min):
            near.rssi_min = low
        latest = t.near.last_ts
        if latest is not None and (near.last_ts is None or latest > near.last_ts):
            near.last, near.last_ts = t.near.last, latest
    return out
