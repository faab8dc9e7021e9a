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


# --- Series the collector's alerting and forecast write (not built from samples) ---

# (school index, device, rule, category, severity, alert id, [(days ago, open)])
ALERTS = (
    (1, "d1", "battery_replace", "battery", "critical", 1, [(30.0, 1)]),  # opened a month ago
    (1, "d2", "wifi_weak", "wifi", "warning", 2, [(5.0, 1), (4.0, 0)]),  # resolved
    (1, "d2", "battery_watch", "battery", "warning", 7, [(6.0, 1)]),
    (1, "d3", "device_silent", "silent", "info", 3, [(3.0, 1)]),
    (1, "d1", "charging_fault", "charging", "warning", 4, [(2.0, 1), (1.0, 0)]),
    (1, "d1", "charging_fault", "charging", "warning", 6, [(0.5, 1)]),  # opened again
    (1, AP_A, "wifi_ap_fault", "network", "warning", 8, [(2.0, 1)]),  # subject: the AP
    (1, AP_B, "wifi_ap_fault", "network", "warning", 9, [(2.0, 1), (1.5, 0)]),
    (2, "d4", "battery_replace", "battery", "critical", 5, [(1.0, 1)]),
    (1, "d3", "battery_hot", "charging", "warning", 10, [(120.0, 1)]),  # beyond the lookback
)


def alert_lines(s1: str, s2: str, now: datetime) -> list[str]:
    """The `alert` points (one per transition) of the agreed line-protocol schema."""
    lines = []
    for which, device, rule, category, severity, alert_id, events in ALERTS:
        school = s1 if which == 1 else s2
        for days_ago, is_open in events:
            ts_ms = int((now - timedelta(days=days_ago)).timestamp() * 1000)
            lines.append(
                f"alert,category={category},device={device},rule={rule},school={school},"
                f"severity={severity} alert_id={alert_id}i,open={is_open}i {ts_ms}"
            )
    return lines


# (school index, term, devices_below_80, devices_below_60) of two forecast runs: the
# first day's run is superseded by the last day's (same school and term).
TERM_1, TERM_2 = "2026-2027 P1 (rentrée-Toussaint)", "2026-2027 P2 (Toussaint-Noël)"
FORECASTS = {
    0: [(1, TERM_1, 9, 9), (1, TERM_2, 9, 9), (2, TERM_1, 9, 9)],
    2: [
        (1, TERM_1, 2, 1),
        (1, TERM_2, 1, 0),
        (2, TERM_1, 3, 2),
        (2, TERM_2, 0, 0),
        (1, "before", 0, 1),
    ],
}


def forecast_lines(s1: str, s2: str, on: list[date]) -> list[str]:
    """The `forecast` points (tags school, term) written at 06:00 on days 0 and 2."""
    lines = []
    for day_index, rows in FORECASTS.items():
        ts_ms = int(at(on[day_index], time(6, 0)).timestamp() * 1000)
        for which, term, below_80, below_60 in rows:
            school = s1 if which == 1 else s2
            term_tag = term.replace(" ", r"\ ").replace(",", r"\,")
            lines.append(
                f"forecast,school={school},term={term_tag} "
                f"devices_below_60={below_60}i,devices_below_80={below_80}i {ts_ms}"
            )
    return lines
