"""Builders for rule tests: readings, samples and states with sensible defaults."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from collector.alerts.model import Finding
from collector.contract import Battery, OsInfo, Sample, Wifi
from collector.rules import DeviceState, RulesConfig, build_rules

SCHOOL = "0341234A"
DEVICE = "dev-1"
AP = "a1b2c3d4e5f60718"
T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)  # a Monday, in term


def battery(health: float | None = 90.0, **kw: Any) -> Battery:
    design = kw.pop("design_capacity_mwh", 50_000.0)
    fields: dict[str, Any] = {
        "name": "BAT0",
        "present": True,
        "status": "discharging",
        "percent": 70.0,
        "plugged": False,
        "design_capacity_mwh": design,
        "full_capacity_mwh": None if health is None else design * health / 100,
        "health_pct": health,
        "cycle_count": 300,
        "model": "01AV431",
    }
    fields.update(kw)
    return Battery(**fields)


def wifi(rssi_dbm: float | None = -60.0, **kw: Any) -> Wifi:
    fields: dict[str, Any] = {
        "connected": True,
        "ssid": "LORDI",
        "ssid_state": "school",
        "on_school_network": True,
        "bssid_hash": AP,
        "rssi_dbm": rssi_dbm,
        "disconnects": 0,
    }
    fields.update(kw)
    return Wifi(**fields)


def sample(
    ts: datetime = T0, batteries: Iterable[Battery] = (), wifi: Wifi | None = None
) -> Sample:
    # model_construct skips only the top-level "ts is recent" check, which reads the
    # clock; the nested readings above are fully validated.
    return Sample.model_construct(
        ts=ts, os=OsInfo(platform="linux"), batteries=list(batteries), wifi=wifi
    )


def state(device: str = DEVICE, school: str = SCHOOL) -> DeviceState:
    return DeviceState(device=device, school=school)


def step(
    st: DeviceState,
    smp: Sample,
    config: RulesConfig | None = None,
    now: datetime | None = None,
    only: str | None = None,
) -> list[Finding]:
    """Evaluate the rules on one sample, then fold it into the state (engine order)."""
    config = config or RulesConfig()
    rules = build_rules(config)
    found = [f for r in rules for f in r.evaluate(st, smp, now or smp.ts)]
    st.apply(smp, found, config.trust)
    return [f for f in found if only is None or f.rule == only]
