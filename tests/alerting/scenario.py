"""A small school week with hand-placed faults, as wire messages, and the arrival
schedules the same telemetry can reach the collector in.

Two schools of 12 laptops, two access points each, a report every 20 minutes from
8:00 to 16:00 (Paris) on three school days, and the first hour of a fourth (a day is
judged once a later day has begun). Faults, with the alert each must give:

- 0340001A/a00: a worn pack (health 55 %)             -> battery_replace, opens Monday
- 0340001A/a01: a dead charger Monday 10:00-11:00    -> charging_fault, opens and resolves
- 0340001A access point A1 fails Tuesday 9:00-12:00  -> one wifi_ap_fault, no laptop Wi-Fi alert
  (laptops a00-a05 read -86 dBm there)
- 0340001A/a06: a bad Wi-Fi card (-81 dBm) on an access point where the others are fine
                                                      -> wifi_weak for a06 only
- 0340001A/a07: left at home from Monday noon        -> device_silent (2 school days)
- 0340002B: the whole school reports nothing on Tuesday -> one school_silent, no laptop silence
- 0340002B/b00: a hot pack Wednesday 10:00-10:40 (55 °C) -> battery_hot, opens and resolves
- 0340001A access point A2 on a captive portal Wednesday 13:00-15:00: its laptops
  (a06, a08-a11) associated but cut off from the broker (failure "tls"), the radio
  fine                                               -> one ap_unreachable, opens and resolves
- 0340002B/b03 cut off on its own Wednesday morning (its proxy)  -> no alert

Every report from Wednesday on carries the agent's `connectivity` block (the
earlier ones none, as from an older agent).

Every sample is built as the agent would send it (JSON) and goes through the
collector's `check_message`, as in production.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from collector.rules import RulesConfig
from collector.samples import Sample
from collector.validate import check_message
from tests.calendars import ZONE_C

PARIS = ZoneInfo("Europe/Paris")
SCHOOLS = ("0340001A", "0340002B")
STEP = timedelta(minutes=20)
AP = {
    ("0340001A", 1): "a1a1a1a1a1a1a1a1",
    ("0340001A", 2): "a2a2a2a2a2a2a2a2",
    ("0340002B", 1): "b1b1b1b1b1b1b1b1",
    ("0340002B", 2): "b2b2b2b2b2b2b2b2",
}


def config() -> RulesConfig:
    """The production rules, with silence after 2 school days (the week is short)."""
    return RulesConfig.model_validate({"device_silent": {"school_days": 2}})


def school_week(now: datetime) -> list[date]:
    """The four first days of the latest Monday-to-Friday week, before `now`, whose
    five days are all school days (the calendar's holidays move with the date)."""
    monday = (now - timedelta(days=7)).astimezone(PARIS).date()
    monday -= timedelta(days=monday.weekday())
    while not all(ZONE_C.is_school_day(monday + timedelta(days=i)) for i in range(5)):
        monday -= timedelta(days=7)
    return [monday + timedelta(days=i) for i in range(4)]


@dataclass(frozen=True)
class Report:
    ts: datetime
    school: str
    device: str
    sample: dict[str, Any]  # the wire sample


def _battery(health: float, **kw: Any) -> dict[str, Any]:
    design = 50_000.0
    doc: dict[str, Any] = {
        "name": "BAT0",
        "present": True,
        "status": "discharging",
        "percent": 70.0,
        "plugged": False,
        "design_capacity_mwh": design,
        "full_capacity_mwh": round(design * health / 100, 1),
        "health_pct": health,
        "cycle_count": 300,
        "temperature_c": 31.0,
        "model": "01AV431",
    }
    doc.update(kw)
    return doc


def _wifi(bssid_hash: str, rssi: float) -> dict[str, Any]:
    return {
        "connected": True,
        "ssid": "LORDI-EDU",
        "ssid_state": "school",
        "on_school_network": True,
        "bssid_hash": bssid_hash,
        "rssi_dbm": rssi,
        "disconnects": 0,
    }


def _at(day: date, hour: float) -> datetime:
    return datetime.combine(day, time(0), PARIS).astimezone(UTC) + timedelta(hours=hour)


def telemetry(now: datetime) -> list[Report]:
    """Every report of the week, in sample-time order."""
    days = school_week(now)
    rng = random.Random(42)  # gauge and radio noise, the same at every call
    reports: list[Report] = []
    for index, day in enumerate(days):
        t = _at(day, 8)
        while t <= _at(day, 16 if index < 3 else 9):
            for school in SCHOOLS:
                if school == "0340002B" and index == 1:
                    continue  # the whole school is silent on Tuesday
                for n in range(12):
                    device = f"{school[-1].lower()}{n:02d}"
                    if device == "a07" and (index > 0 or t >= _at(day, 12)):
                        continue  # left at home from Monday noon
                    reports.append(
                        Report(t, school, device, _reading(school, n, index, t, day, rng))
                    )
            t += STEP
    return reports


def _reading(  # noqa: PLR0917 - one laptop at one time
    school: str, n: int, day_index: int, t: datetime, day: date, rng: random.Random
) -> dict[str, Any]:
    health = 55.0 if (school, n) == ("0340001A", 0) else 90.0 + n / 2
    battery = _battery(round(health + rng.uniform(-0.3, 0.3), 1))
    if (school, n) == ("0340001A", 1) and day_index == 0 and _at(day, 10) <= t < _at(day, 11):
        battery.update(plugged=True, status="not_charging", percent=50.0)
    if (school, n) == ("0340002B", 0) and day_index == 2 and _at(day, 10) <= t < _at(day, 10.7):
        battery["temperature_c"] = 55.0
    ap = 1 if n < 6 else 2
    rssi = -58.0 + rng.uniform(-3, 3)
    if school == "0340001A" and ap == 1 and day_index == 1 and _at(day, 9) <= t < _at(day, 12):
        rssi = -86.0 + rng.uniform(-2, 2)  # the access point fails
    if (school, n) == ("0340001A", 6):
        rssi = -81.0 + rng.uniform(-2, 2)  # this laptop's card
    sample: dict[str, Any] = {
        "ts": t.isoformat(),
        "os": {"platform": "windows", "release": "10.0.22631"},
        "batteries": [battery],
        "wifi": _wifi(AP[(school, ap)], round(rssi, 1)),
    }
    if day_index >= 2:
        portal = school == "0340001A" and ap == 2 and day_index == 2 and 13 <= _hour(t) < 15
        proxy = (school, n) == ("0340002B", 3) and day_index == 2 and _hour(t) < 12
        sample["connectivity"] = _reach(cut=portal or proxy, rng=rng)
    return sample


def _hour(t: datetime) -> float:
    local = t.astimezone(PARIS)
    return local.hour + local.minute / 60


def _reach(cut: bool, rng: random.Random) -> dict[str, Any]:
    """The agent's block for the 20 minutes since its previous report."""
    if cut:
        return {
            "dns_ok": True, "gateway_ok": True, "broker_ok": False, "school_online_s": 0.0,
            "school_unreachable_s": 1200.0, "failure": "tls", "failed_attempts": 4,
        }  # fmt: skip
    return {
        "broker_rtt_ms": round(rng.uniform(20, 80), 1), "dns_ok": True, "broker_ok": True,
        "school_online_s": 1200.0, "school_unreachable_s": 0.0, "failed_attempts": 0,
    }  # fmt: skip


def to_samples(reports: list[Report]) -> list[tuple[str, str, Sample]]:
    """Through the collector's validation, one message per report."""
    out: list[tuple[str, str, Sample]] = []
    for r in reports:
        payload = json.dumps(
            {"schema": 1, "device": r.device, "school": r.school, "agent_version": "1.0.0",
             "samples": [r.sample]}
        ).encode()  # fmt: skip
        checked = check_message(f"lordi/v1/{r.school}/{r.device}/telemetry", payload)
        assert not checked.rejected, checked.rejected
        out += [(r.school, r.device, s) for s in checked.samples]
    return out
