"""A simulated laptop's hardware, behind the same `Provider` interface as a real one.

The state advances with the simulation clock: the battery discharges in class,
charges when plugged (at school or overnight at home, by the student's habit), counts
cycles and fades with them; the Wi-Fi signal follows the laptop's access point with
noise, and drops now and then. Faults are injected by the fleet builder.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from agent.model import BatteryReading, OsInfo, Reading, WifiReading, health_pct

DISCHARGE_PCT_PER_H = 11.0  # a fresh pack in class: ~9 h of use
CHARGE_PCT_PER_H = 35.0
FADE_PCT_PER_CYCLE = 0.02  # ~20 % over 1000 cycles, the usual rating
NIGHT_GAP_H = 4.0  # longer gaps than this are "at home"


@dataclass
class AccessPoint:
    bssid: str
    ssid: str
    base_rssi_dbm: float
    drop_prob: float = 0.01  # chance per look that the link is down


@dataclass
class SimLaptop:
    device: str
    model: str
    manufacturer: str
    design_mwh: float
    health_pct: float
    ap: AccessPoint
    clock: Callable[[], datetime]
    rng: random.Random
    cycles: float = 0.0
    percent: float = 90.0
    charges_at_home: bool = True
    charger_broken: bool = False
    plugged: bool = False
    # Wear and habits (defaults: the original week-long model, no calendar ageing).
    cycle_fade_pct: float = FADE_PCT_PER_CYCLE  # health lost per full cycle
    calendar_fade_pct_per_day: float = 0.0  # ageing whether used or not
    home_charge_prob: float | None = None  # None: `charges_at_home` decides every night
    plug_below_pct: float = 25.0  # in class, plugs in below this charge...
    plug_prob: float = 0.3  # ...when the socket is free (chance per look)
    # Injected lies (ground truth: "untrusted", must never raise a battery alert):
    # "full_gt_design" reports a full charge 130 % of design for ever;
    # "collapse" reports one absurd reading (30 % health) at `lie_at`, then normal.
    lie: str | None = None
    lie_at: datetime | None = None
    _last: datetime | None = field(default=None, repr=False)

    def _advance(self, now: datetime) -> None:
        if self._last is None:
            self._last = now
            return
        hours = max(0.0, (now - self._last).total_seconds() / 3600)
        self._last = now
        if self.calendar_fade_pct_per_day:
            self.health_pct = max(
                5.0, self.health_pct - self.calendar_fade_pct_per_day * hours / 24
            )
        if hours > NIGHT_GAP_H:  # overnight: charged at home, or not
            self.plugged = False
            if self._charges_tonight() and not self.charger_broken:
                self.percent = 100.0
            return
        # In class: plugged now and then when the socket is free and charge is low.
        self.plugged = (
            self.percent < self.plug_below_pct and self.rng.random() < self.plug_prob
        ) or (self.plugged and self.percent < 95)
        if self.plugged and not self.charger_broken:
            self.percent = min(100.0, self.percent + CHARGE_PCT_PER_H * hours)
        else:
            drop = DISCHARGE_PCT_PER_H * hours * 100 / max(self.health_pct, 20)
            self.percent = max(0.0, self.percent - drop)
            self.cycles += drop / 100
            self.health_pct = max(5.0, self.health_pct - self.cycle_fade_pct * drop / 100)

    def _charges_tonight(self) -> bool:
        if self.home_charge_prob is None:
            return self.charges_at_home
        return self.rng.random() < self.home_charge_prob

    def _status(self) -> str:
        if self.plugged and self.charger_broken:
            return "not_charging"
        if self.plugged:
            return "full" if self.percent >= 100 else "charging"
        return "discharging"

    def read(self) -> Reading:
        now = self.clock()
        self._advance(now)
        full = self.design_mwh * self.health_pct / 100
        if self.lie == "full_gt_design":
            full = self.design_mwh * 1.3
        elif self.lie == "collapse" and self.lie_at is not None and now == self.lie_at:
            full = self.design_mwh * 0.3
        battery = BatteryReading(
            name="BAT0",
            status=self._status(),
            percent=round(self.percent, 1),
            plugged=self.plugged,
            design_capacity_mwh=round(self.design_mwh, 0),
            full_capacity_mwh=round(full, 0),
            health_pct=health_pct(full, self.design_mwh),
            cycle_count=int(self.cycles),
            voltage_mv=round(11_100 + self.percent * 15, 0),
            temperature_c=round(30 + self.rng.gauss(0, 2), 1),
            manufacturer=self.manufacturer,
            model=self.model,
            technology="Li-ion",
        )
        return Reading(os=OsInfo("windows", "10.0.22631"), batteries=[battery], wifi=self._wifi())

    def _wifi(self) -> WifiReading:
        if self.rng.random() < self.ap.drop_prob:
            return WifiReading(interface="Wi-Fi", connected=False)
        rssi = round(min(-30.0, self.ap.base_rssi_dbm + self.rng.gauss(0, 3)), 0)
        return WifiReading(
            interface="Wi-Fi",
            connected=True,
            ssid=self.ap.ssid,
            bssid=self.ap.bssid,
            rssi_dbm=rssi,
            signal_pct=float(max(0, min(100, 2 * (rssi + 100)))),
            channel=36,
            band_ghz=5.0,
            rx_rate_mbps=433.3,
            tx_rate_mbps=433.3,
            radio="802.11ac",
        )
