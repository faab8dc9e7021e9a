"""What the rules remember about each device between samples.

Small and constant-size per device (250,000 devices must fit well under 1 GB):
slots dataclasses, no per-sample history (the weekly capacity history is bounded
and packed in bytes, see history.py), strings shared between devices where they repeat
(`sys.intern` on battery models and access-point hashes).

Order per sample, owned by the caller (the alert engine):

    findings = [f for rule in rules for f in rule.evaluate(state, sample, now)]
    state.apply(sample, findings, config.trust)

`apply` runs AFTER the rules, so a rule compares the new sample with the previous
one. The findings tell the state which conditions now hold (their start time is
kept for hysteresis and for the "since" in evidence) and which have cleared.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from collector.alerts.model import Finding
from collector.rules.config import Trust
from collector.rules.forecast import FadeEstimator
from collector.rules.history import add_point
from collector.rules.trust import (
    CAPACITY_REASONS,
    COLLAPSE,
    CYCLE_REASONS,
    DEFAULT_TRUST,
    battery_trust,
    health_of,
)
from collector.samples import Battery, Sample, Wifi


def _intern(text: str | None) -> str | None:
    return None if text is None else sys.intern(text)


@dataclass(slots=True)
class BatteryState:
    # Last trusted health, and when: what the next reading is compared with.
    last_health_pct: float | None = None
    last_ts: datetime | None = None
    # An unconfirmed collapse: the health before it, and how many samples showed it.
    collapse_from_pct: float | None = None
    collapse_seen: int = 0
    model: str | None = None
    design_capacity_mwh: float | None = None
    full_capacity_mwh: float | None = None
    cycle_count: int | None = None
    zero_cycle_streak: int = 0  # consecutive readings with cycle_count == 0
    zero_cycle_start_health_pct: float | None = None  # health when that streak began
    untrusted_samples: int = 0
    fade: FadeEstimator = field(default_factory=FadeEstimator)
    history: bytes = b""  # weekly capacity points, packed (collector.rules.history)

    def update(self, battery: Battery, ts: datetime, trust: Trust = DEFAULT_TRUST) -> None:
        reasons = battery_trust(self, battery, trust)
        health = health_of(battery)
        if reasons:
            self.untrusted_samples += 1
        if COLLAPSE in reasons:
            if self.collapse_from_pct is None:
                self.collapse_from_pct = self.last_health_pct
            self.collapse_seen += 1
        elif health is not None and not CAPACITY_REASONS.intersection(reasons):
            self.collapse_from_pct, self.collapse_seen = None, 0
            self.fade.add(ts, health)
            self.last_health_pct = health
            self.last_ts = ts
            self.history = add_point(
                self.history,
                ts,
                full_capacity_mwh=battery.full_capacity_mwh,
                design_capacity_mwh=battery.design_capacity_mwh,
                health_pct=health,
                cycle_count=None if CYCLE_REASONS.intersection(reasons) else battery.cycle_count,
            )
        self._update_cycles(battery.cycle_count, health)
        if battery.model is not None:
            self.model = _intern(battery.model)
        if battery.design_capacity_mwh is not None:
            self.design_capacity_mwh = battery.design_capacity_mwh
        if battery.full_capacity_mwh is not None:
            self.full_capacity_mwh = battery.full_capacity_mwh

    def _update_cycles(self, cycle_count: int | None, health: float | None) -> None:
        if cycle_count is None:
            return
        self.cycle_count = cycle_count
        if cycle_count != 0:
            self.zero_cycle_streak = 0
            self.zero_cycle_start_health_pct = None
            return
        if self.zero_cycle_streak == 0:
            self.zero_cycle_start_health_pct = health
        self.zero_cycle_streak += 1


@dataclass(slots=True)
class WifiState:
    ts: datetime
    connected: bool
    on_school_network: bool | None
    bssid_hash: str | None
    rssi_dbm: float | None
    disconnects: int | None


@dataclass(slots=True)
class DeviceState:
    device: str
    school: str
    last_seen: datetime | None = None
    batteries: dict[str, BatteryState] = field(default_factory=dict)
    wifi: WifiState | None = None
    # Finding key -> when its condition started; only keys whose condition holds.
    # None rather than an empty dict: most devices have no condition at all.
    conditions: dict[str, datetime] | None = None

    def since(self, key: str) -> datetime | None:
        return None if self.conditions is None else self.conditions.get(key)

    def is_active(self, key: str) -> bool:
        return self.conditions is not None and key in self.conditions

    def record(self, findings: Iterable[Finding]) -> None:
        """Remember which of this device's conditions hold, from the rules' findings
        (also used for the silent-device sweep's findings)."""
        for finding in findings:
            if finding.device != self.device:
                continue
            if finding.active:
                if self.conditions is None:
                    self.conditions = {}
                self.conditions.setdefault(finding.key, finding.at)
            elif self.conditions is not None:
                self.conditions.pop(finding.key, None)
                if not self.conditions:
                    self.conditions = None

    def apply(
        self, sample: Sample, findings: Iterable[Finding], trust: Trust = DEFAULT_TRUST
    ) -> None:
        """Fold `sample` in, after the rules evaluated it and produced `findings`."""
        self.record(findings)
        if self.last_seen is None or sample.ts > self.last_seen:
            self.last_seen = sample.ts
        for battery in sample.batteries:
            if battery.present:
                self.battery(battery.name).update(battery, sample.ts, trust)
        if sample.wifi is not None:
            self._update_wifi(sample.wifi, sample.ts)

    def battery(self, name: str) -> BatteryState:
        state = self.batteries.get(name)
        if state is None:
            state = self.batteries[sys.intern(name)] = BatteryState()
        return state

    def _update_wifi(self, wifi: Wifi, ts: datetime) -> None:
        if self.wifi is not None and ts < self.wifi.ts:
            return  # a spooled older sample must not hide the current access point
        self.wifi = WifiState(
            ts=ts,
            connected=wifi.connected,
            on_school_network=wifi.on_school_network,
            bssid_hash=_intern(wifi.bssid_hash),
            rssi_dbm=wifi.rssi_dbm,
            disconnects=wifi.disconnects,
        )
