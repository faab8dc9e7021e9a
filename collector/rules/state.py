"""What the rules remember about each device between samples.

Small and constant-size per device (250,000 devices must fit well under 1 GB):
slots dataclasses, no per-sample history (the weekly capacity history is bounded
and packed in bytes, see history.py), strings shared between devices where they repeat
(`sys.intern` on battery models and access-point hashes).

Order per sample, owned by the caller (collector.alerting.evaluation):

    trust = [assess(state.batteries.get(b.name), b, config.trust) ...]  # once
    findings = judge_batteries(rules, state, sample, trust)  # collector.rules.battery
    state.apply(sample, findings, trust)

`apply` runs AFTER the rules, so a rule compares the new sample with the previous
one. The findings tell the state which conditions now hold (their start time is
kept for hysteresis and for the "since" in evidence) and which have cleared.

The device's Wi-Fi readings of its current telemetry window (`window_start`,
`tallies`) wait here until the device moves to a later window or the window is
complete; then they go to the school's window (collector.alerting.school).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from collector.alerts.model import Finding
from collector.rules.forecast import FadeEstimator
from collector.rules.history import add_point
from collector.rules.tally import Tally, chain
from collector.rules.trust import COLLAPSE, Assessment
from collector.samples import Battery, Sample


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
    # The last reading had no trust reason and both capacities (so the two fields
    # above are its figures): trust.assess takes a repeat of it as trusted at once.
    # Not saved: after a restart the first reading is judged in full.
    last_trusted: bool = False

    def update(self, battery: Battery, ts: datetime, trust: Assessment) -> None:
        """Fold in a reading, with the trust verdict computed for it (once)."""
        reasons, health = trust.reasons, trust.health_pct
        design, full = battery.design_capacity_mwh, battery.full_capacity_mwh
        if reasons:
            self.untrusted_samples += 1
            self.last_trusted = False
        else:
            self.last_trusted = design is not None and full is not None
        if COLLAPSE in reasons:
            if self.collapse_from_pct is None:
                self.collapse_from_pct = self.last_health_pct
            self.collapse_seen += 1
        elif health is not None and trust.capacity_trusted:
            self.collapse_from_pct, self.collapse_seen = None, 0
            self.fade.add(ts, health)
            self.last_health_pct = health
            self.last_ts = ts
            self.history = add_point(
                self.history,
                ts,
                full_capacity_mwh=full,
                design_capacity_mwh=design,
                health_pct=health,
                cycle_count=battery.cycle_count if trust.cycles_trusted else None,
            )
        cycles = battery.cycle_count
        if cycles is not None:
            self.cycle_count = cycles
            if cycles != 0:
                self.zero_cycle_streak, self.zero_cycle_start_health_pct = 0, None
            else:
                # The zero-cycle streak starts from a believable health only (an
                # untrusted first reading of 120 % would make every later 0 look "stuck").
                if self.zero_cycle_start_health_pct is None:
                    self.zero_cycle_start_health_pct = trust.trusted_health_pct
                self.zero_cycle_streak += 1
        model = battery.model
        if model is not None and model != self.model:
            self.model = _intern(model)
        if design is not None:
            self.design_capacity_mwh = design
        if full is not None:
            self.full_capacity_mwh = full


@dataclass(slots=True)
class DeviceState:
    device: str
    school: str
    last_seen: datetime | None = None  # the device's clock: its latest sample taken in
    batteries: dict[str, BatteryState] = field(default_factory=dict)
    # Finding key -> when its condition started; only keys whose condition holds.
    # None rather than an empty dict: most devices have no condition at all.
    conditions: dict[str, datetime] | None = None
    # School-network Wi-Fi readings of the current window, one tally per access point
    # (a chain: a laptop rarely uses more than one in a window; a dict costs 184 B).
    window_start: int | None = None  # epoch seconds
    tally: Tally | None = None
    # Its windows are judged one by one even when they look fine, up to this one
    # (epoch seconds): it had a Wi-Fi reading near a threshold, or a condition.
    watch_until: int = 0

    @property
    def tallies(self) -> dict[str, Tally] | None:
        """The current window's tallies by access point (None: no window open)."""
        if self.window_start is None:
            return None
        return {t.bssid: t for t in chain(self.tally)}

    @tallies.setter
    def tallies(self, by_ap: dict[str, Tally] | None) -> None:
        head: Tally | None = None
        for bssid, tally in reversed(list((by_ap or {}).items())):
            tally.bssid, tally.more, head = bssid, head, tally
        self.tally = head

    def since(self, key: str) -> datetime | None:
        return None if self.conditions is None else self.conditions.get(key)

    def is_active(self, key: str) -> bool:
        return self.conditions is not None and key in self.conditions

    def record(self, findings: Iterable[Finding]) -> None:
        """Remember which of this device's conditions hold, from its findings (the
        per-sample rules', and those of its completed windows and days)."""
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
        self,
        sample: Sample,
        findings: Iterable[Finding],
        trust: Sequence[Assessment | None],
    ) -> None:
        """Fold `sample` in, after the rules evaluated it and produced `findings`;
        `trust` holds the verdict of each of its batteries (None: not present)."""
        if findings:
            self.record(findings)
        ts = sample.ts
        if self.last_seen is None or ts > self.last_seen:
            self.last_seen = ts
        batteries: Sequence[Battery] = sample.batteries
        for index, battery in enumerate(batteries):  # (not zip(strict=True): slower)
            verdict = trust[index]
            if verdict is not None:
                self.battery(battery.name).update(battery, ts, verdict)

    def battery(self, name: str) -> BatteryState:
        state = self.batteries.get(name)
        if state is None:
            state = self.batteries[sys.intern(name)] = BatteryState()
        return state
