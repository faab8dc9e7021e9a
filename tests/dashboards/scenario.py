"""A small known fleet for the dashboard tests: two schools, five laptops, three days.

Every laptop reports four times a day (Paris time): 07:00 (20 %, before class),
07:45 (its `first_class` percent), 12:00 (plugged, charging, 60 %) and 16:00 (40 %).
Health, cycles, model and access point are constant per laptop, so every panel's
expected figure can be worked out by hand (see test_queries.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from collector.contract import Sample
from collector.lineproto import to_lines

PARIS = ZoneInfo("Europe/Paris")
AP_A, AP_B, AP_C = "00000000000000a1", "00000000000000b2", "00000000000000c3"
REPORTS = ((time(7, 0), 20.0), (time(7, 45), None), (time(12, 0), 60.0), (time(16, 0), 40.0))


@dataclass(frozen=True)
class Laptop:
    school: str
    device: str
    model: str
    health: float
    cycles: int
    first_class: float  # percent at 07:45
    ap: str
    rssi: float
    disconnects: int  # per report
    off_network_at_16h: bool = False  # the 16:00 report is on another network


def laptops(s1: str, s2: str) -> list[Laptop]:
    return [
        Laptop(s1, "d1", "M-A", 55.0, 400, 80.0, AP_A, -60.0, 0, off_network_at_16h=True),
        Laptop(s1, "d2", "M-A", 70.0, 300, 60.0, AP_A, -60.0, 0),
        Laptop(s1, "d3", "M-B", 90.0, 100, 100.0, AP_B, -75.0, 1),
        Laptop(s2, "d4", "M-B", 50.0, 800, 30.0, AP_C, -50.0, 0),
        Laptop(s2, "d5", "M-B", 85.0, 50, 70.0, AP_C, -50.0, 0),
    ]


def days(today: date | None = None) -> list[date]:
    """Three consecutive days ten days ago (within the contract's 400-day window)."""
    first = (today or datetime.now(UTC).date()) - timedelta(days=10)
    return [first + timedelta(days=i) for i in range(3)]


def at(day: date, clock: time) -> datetime:
    return datetime.combine(day, clock, tzinfo=PARIS).astimezone(UTC)


def sample(laptop: Laptop, ts: datetime, percent: float, plugged: bool, on_school: bool) -> Sample:
    wifi: dict[str, object] = {
        "connected": True,
        "rssi_dbm": laptop.rssi if on_school else -40.0,
        "rssi_min_dbm": (laptop.rssi if on_school else -40.0) - 5,
        "disconnects": laptop.disconnects,
        "on_school_network": on_school,
        "ssid_state": "school" if on_school else "other",
        "ssid": "LORDI-EDU" if on_school else None,
        "bssid_hash": laptop.ap if on_school else None,
    }
    doc = {
        "ts": ts,
        "os": {"platform": "windows", "release": "10.0.22631"},
        "batteries": [
            {
                "name": "BAT0",
                "present": True,
                "status": "charging" if plugged else "discharging",
                "percent": percent,
                "plugged": plugged,
                "design_capacity_mwh": 50000.0,
                "full_capacity_mwh": laptop.health * 500.0,
                "health_pct": laptop.health,
                "cycle_count": laptop.cycles,
                "model": laptop.model,
            }
        ],
        "wifi": wifi,
    }
    return Sample.model_validate(doc)


def samples(fleet: list[Laptop], on: list[date]) -> list[tuple[str, str, Sample]]:
    out = []
    for day in on:
        for clock, percent in REPORTS:
            for lap in fleet:
                noon = clock == time(12, 0)
                on_school = not (lap.off_network_at_16h and clock == time(16, 0))
                value = lap.first_class if percent is None else percent
                out.append(
                    (lap.school, lap.device, sample(lap, at(day, clock), value, noon, on_school))
                )
    return out


def line_protocol(items: list[tuple[str, str, Sample]]) -> list[str]:
    return [line for s, d, smp in items for line in to_lines(s, d, "1.0.0", smp)]
