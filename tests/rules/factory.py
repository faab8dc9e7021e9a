"""Builders for rule tests: readings, samples and states with sensible defaults, and
the callers' order of operations (collector.alerting.evaluation and .school) in a
few lines, so each test reads as the rules see their input."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from collector.alerts.model import Finding
from collector.contract import Battery, OsInfo, Sample, Wifi
from collector.rules import Assessment, DeviceState, RulesConfig, assess, build_rules
from collector.rules.state import BatteryState
from collector.rules.tally import Tally, observe, school_wifi
from collector.rules.wifi import WindowRule

SCHOOL = "0341234A"
DEVICE = "dev-1"
AP = "a1b2c3d4e5f60718"
T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)  # a Monday, in term; a window start
DEFAULT = RulesConfig()


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


def home_wifi(rssi_dbm: float | None = -90.0, **kw: Any) -> Wifi:
    """Connected, but not to the school network (a home box, a phone)."""
    fields: dict[str, Any] = {
        "ssid": None,
        "ssid_state": "other",
        "on_school_network": False,
        "disconnects": 9,
    }
    return wifi(rssi_dbm, **(fields | kw))


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


def trust_of(
    st: DeviceState, smp: Sample, config: RulesConfig = DEFAULT
) -> list[Assessment | None]:
    """Each battery's assessment, once, as collector.alerting.evaluation computes it."""
    return [
        assess(st.batteries.get(b.name), b, config.trust) if b.present else None
        for b in smp.batteries
    ]


def step(
    st: DeviceState,
    smp: Sample,
    config: RulesConfig | None = None,
    only: str | None = None,
) -> list[Finding]:
    """Evaluate the per-sample rules on one sample, then fold it into the state
    (the evaluator's order: trust once, rules, apply)."""
    config = config or DEFAULT
    trust = trust_of(st, smp, config)
    found = [f for r in build_rules(config) for f in r.evaluate(st, smp, trust)]
    st.apply(smp, found, trust)
    return [f for f in found if only is None or f.rule == only]


def feed(bat: BatteryState, reading: Battery, ts: datetime, config: RulesConfig = DEFAULT) -> None:
    """One reading into a battery's state, assessed first (what `apply` does)."""
    bat.update(reading, ts, assess(bat, reading, config.trust))


def tally(*readings: Wifi | None, ts: datetime = T0, config: RulesConfig = DEFAULT) -> Tally:
    """One device's window of readings on one access point. Like the school's intake,
    only school-network readings are counted (`school_wifi`); None: no Wi-Fi at all."""
    out = Tally()
    for reading in readings:
        smp = sample(ts, wifi=reading)
        school = school_wifi(smp)
        if school is not None:
            observe(out, school, ts, config)
    return out


def judge(
    rule: WindowRule, st: DeviceState, t: Tally, start: datetime = T0, covered: bool = False
) -> Finding | None:
    """One completed window through a window rule; the state records the finding
    as collector.alerting.school does."""
    found = rule.judge_window(st, t, start, covered)
    if found is not None:
        st.record([found])
    return found
