"""A small known fleet for the dashboard tests: two schools, five laptops, three days.

Every laptop reports four times a day (Paris time): 07:00 (20 %, before class),
07:45 (its `first_class` percent), 12:00 (plugged, charging, 60 %) and 16:00 (40 %).
Health, cycles, model and access point are constant per laptop, so every panel's
expected figure can be worked out by hand (see test_queries.py).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from collector.alerts import series
from collector.alerts.model import Alert, Finding
from collector.alerts.store import AlertStore
from collector.contract import Sample
from collector.lineproto import to_lines
from collector.rules import DeviceState, RulesConfig, silent
from collector.rules.base import RuleBase, Verdict, battery_key, device_key
from collector.rules.battery import BatteryHot, BatteryReplace, BatteryWatch, ChargingFault
from collector.rules.network import AccessPointWindow, NetworkState, judge_window
from collector.rules.wifi import WifiWeak

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
    """Three consecutive days ten days ago (within the contract's 400-day window), a
    week earlier when Paris changes clocks on one of them or the day before: InfluxDB
    1.6.7 starts the first-class bucket of that Sunday an hour off (measured; see
    dashboards/README.md). test_queries_vm.py tests the clock changes on their own."""
    first = (today or datetime.now(UTC).date()) - timedelta(days=10)
    while any(clock_change(first + timedelta(days=i)) for i in range(-1, 3)):
        first -= timedelta(days=7)
    return [first + timedelta(days=i) for i in range(3)]


def clock_change(day: date) -> bool:
    """Paris changes clocks during `day` (summer time starts or ends)."""
    offsets = {
        at(day + timedelta(days=i), time(0, 0)).astimezone(PARIS).utcoffset() for i in (0, 1)
    }
    return len(offsets) > 1


def last_clock_change(before: date) -> date:
    """The last day before `before` on which Paris changed clocks."""
    day = before - timedelta(days=1)
    while not clock_change(day):
        day -= timedelta(days=1)
    return day


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


def line_protocol(items: list[tuple[str, str, Sample]], strings: bool = True) -> list[str]:
    """The collector's lines; `strings=False` as it writes them with `[store]
    string_fields = false` (VictoriaMetrics)."""
    return [line for s, d, smp in items for line in to_lines(s, d, "1.0.0", smp, strings=strings)]


# --- Series the collector's alerting and forecast write (not built from samples) ---

# The `alert` points are the collector's own: findings built by its rules' own
# builders, kept in its AlertStore (real `Alert`s and `Transition`s), read back by its
# TransitionFeed and turned into line protocol by `collector.alerts.series.alert_lines`
# - the path of `collector.alerting.feed.AlertLines.take`. They are not derived from
# the samples above (a laptop's alerts need not match its telemetry here).
BAT0, BAT1 = "BAT0", "BAT1"
AP_D = "00000000000000d4"  # another access point of school 1, with an alert only
AP_OK = ("00000000000000e5", "00000000000000f6", "0000000000000107")  # healthy ones


def _battery_finding(
    rule: RuleBase, school: str, device: str, battery: str, ts: datetime
) -> Finding:
    state = DeviceState(device=device, school=school)
    key = battery_key(school, device, battery, rule.name)
    return rule.finding(state, ts, key, Verdict(True, f"scenario {rule.name} {battery}"))


def _window(
    school: str, start: datetime, bad: list[str], good: list[str], state: NetworkState
) -> list[Finding]:
    """The network correlator's findings for one window: 6 laptops seen on every
    access point, 5 of them degraded on the `bad` ones."""
    aps = {b: AccessPointWindow(seen=6, degraded=[f"{b}-{i}" for i in range(5)]) for b in bad}
    aps |= {b: AccessPointWindow(seen=6) for b in good}
    return judge_window(school, start, aps, state, RulesConfig()).findings


def alert_store_history(store: AlertStore, s1: str, s2: str, now: datetime) -> None:
    """The scenario's alerts, opened, resolved and re-opened in time order (ids 1-14).

    School 1, open at `now`: d1's two batteries to replace (ids 2, 3, opened by the
    same sample), d2's battery to watch (5), d3 silent (7), access points A and B at
    fault (8, 9, opened by the same window), d1's charging fault (11, resolved then
    re-opened: the same alert), the school silent (14). Not open: d3's overheating
    (1, open but its only point is older than the panels' 90 days), the school-wide
    Wi-Fi fault (4), d2's weak Wi-Fi (6, resolved from the worklist), access point D
    (10). School 2: d4's battery to replace (12), the school silent (13).
    """
    config = RulesConfig()

    def ago(days: float) -> datetime:
        return now - timedelta(days=days)

    def open_(finding: Finding) -> int:
        alert, created = store.try_open_alert(finding, finding.at, since=finding.since)
        assert created, finding.key
        return alert.id

    def resolve(alert_id: int, days: float, by: str = "engine") -> None:
        store.resolve(alert_id, by, at=ago(days))

    net = NetworkState()
    open_(_battery_finding(BatteryHot(config), s1, "d3", BAT0, ago(120)))
    for battery in (BAT0, BAT1):  # a two-battery laptop: one sample, two alerts
        open_(_battery_finding(BatteryReplace(config), s1, "d1", battery, ago(30)))
    # Three access points of four degraded: the school-wide fault (no AP alert).
    (school_wifi,) = _window(s1, ago(8), [AP_A, AP_B, AP_D], [AP_OK[0]], net)
    school_wifi_id = open_(school_wifi)
    (cleared,) = _window(s1, ago(7), [], [AP_A, AP_B, AP_D, AP_OK[0]], net)
    assert not cleared.active
    resolve(school_wifi_id, 7)
    open_(_battery_finding(BatteryWatch(config), s1, "d2", BAT0, ago(6)))
    weak = WifiWeak(config)
    weak_key = device_key(s1, "d2", weak.name)
    state = DeviceState(device="d2", school=s1)
    weak_id = open_(weak.finding(state, ago(5), weak_key, Verdict(True, "scenario wifi_weak")))
    resolve(weak_id, 4, by="Mme Martin")  # from the worklist
    open_(silent.device_finding(s1, "d3", ago(3), True, ago(5), 2, 2))
    # Three access points of six degraded: one alert each, all at the window's start.
    faults = _window(s1, ago(2), [AP_A, AP_B, AP_D], list(AP_OK), net)
    assert [f.subject for f in faults] == ["access_point"] * 3 and faults[0].at == faults[2].at
    ap_ids = [open_(f) for f in faults]
    charging_id = open_(_battery_finding(ChargingFault(config), s1, "d1", BAT0, ago(2)))
    still = _window(s1, ago(1.5), [AP_A, AP_B], [AP_D, *AP_OK], net)
    assert [(f.key.split("/")[2], f.active) for f in still] == [
        (AP_A, True), (AP_B, True), (AP_D, False)
    ]  # fmt: skip
    resolve(ap_ids[2], 1.5)
    resolve(charging_id, 1)
    open_(_battery_finding(BatteryReplace(config), s2, "d4", BAT0, ago(1)))
    open_(silent.school_finding(s2, ago(1), True, None, 3, 2))
    store.transition(charging_id, "open", "engine", at=ago(0.5))  # flapping: re-opened
    open_(silent.school_finding(s1, ago(0.25), True, None, 2, 2, since=ago(3)))


def alert_history(s1: str, s2: str, now: datetime) -> tuple[list[str], list[Alert]]:
    """The `alert` points the collector writes for the scenario's alerts (one per
    open / resolve / re-open, in the store's transition order), from a store of its
    own, and the alerts unresolved at the end (what the worklist lists)."""
    with tempfile.TemporaryDirectory() as tmp:
        store = AlertStore(f"sqlite:///{tmp}/alerts.sqlite3")
        try:
            store.create_tables()
            alert_store_history(store, s1, s2, now)
            changes, _ = store.feed.after(0)
            unresolved = store.list_alerts(unresolved=True)
        finally:
            store.close()
    return series.alert_lines(changes), unresolved


def alert_lines(s1: str, s2: str, now: datetime) -> list[str]:
    return alert_history(s1, s2, now)[0]


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
