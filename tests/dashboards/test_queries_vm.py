"""Every panel query of the VictoriaMetrics flavour (dashboards/vm/*.json), run on the
session's real VictoriaMetrics, with the numbers of test_queries.py's scenario.

The store is loaded as a collector configured for VictoriaMetrics loads it: its own
line protocol without string fields (`collector.lineproto`, `[store] string_fields =
false`) through `/api/v2/write`, the per-school summaries of `collector.summaries`,
the `alert` points its alert store and `collector.alerts.series.alert_lines` write for
the scenario's alerts, and the `forecast` points of `scenario.forecast_lines`. Each
target runs as Grafana's Prometheus data source would run it (`grafana_prom.py`:
variables and macros substituted, steps aligned, tables merged and renamed by the
panel's own transformations), over the same time range as the InfluxQL test:
`$__interval` 1h, the scenario's three days, `$__range` their length, a panel with
`timeFrom` over now-90d..now.

The expected figures are the InfluxQL test's wherever both flavours mean the same;
where they do not (the VictoriaMetrics flavour's panel descriptions say so), what
this flavour computes. Every target must return data, and each test reads every
result it ran (`Results.unread`), so a panel whose query is not checked fails.
"""

from __future__ import annotations

import time as time_module
import urllib.request
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest

from collector.summaries import summary_lines
from dashboards.generate import generated
from dashboards.reach import CAUSES
from dashboards.school import ALERT_LOOKBACK_DAYS
from lordi import vm
from lordi.stack import LocalStack
from tests.dashboards import reach_scenario, scenario
from tests.dashboards.grafana_prom import View, run_target, table, variable_values
from tests.helpers import unique_school

NAMES = ["vm/fleet.json", "vm/school.json", "vm/device.json"]


class Results(dict[str, Any]):
    """Panel results ("<title>" for a table, "<title>/<refId>" otherwise) that
    remember which were read."""

    def __init__(self) -> None:
        super().__init__()
        self.read: set[str] = set()

    def __getitem__(self, key: str) -> Any:
        self.read.add(key)
        return super().__getitem__(key)

    def unread(self) -> set[str]:
        return set(self) - self.read


@pytest.fixture(scope="module")
def world(stack: LocalStack) -> dict[str, Any]:
    s1, s2 = unique_school(), unique_school()
    days = scenario.days()
    items = scenario.samples(scenario.laptops(s1, s2), days)
    lines = scenario.line_protocol(items, strings=False) + summary_lines(items)
    now = datetime.now(UTC)
    alert_lines, unresolved = scenario.alert_history(s1, s2, now)
    lines += alert_lines + scenario.forecast_lines(s1, s2, days)
    on_time, late = reach_scenario.items(s1, s2, days)
    lines += reach_scenario.connectivity_lines(on_time, strings=False)
    # The reports spooled while cut off arrive after everything else, newest first.
    spooled = reach_scenario.connectivity_lines(late[::-1], strings=False)
    assert not any('="' in line for line in lines + spooled)  # no string field left
    _write(stack, lines)
    _write(stack, spooled)
    return {
        "s1": s1,
        "s2": s2,
        "days": days,
        "from": scenario.at(days[0], time(0, 0)).timestamp(),
        "to": scenario.at(days[-1], time(23, 59)).timestamp(),
        "now": now,
        "unresolved": unresolved,
    }


def _write(stack: LocalStack, lines: list[str]) -> None:
    """As the collector writes (influxdb-client's /api/v2/write, millisecond times)."""
    url = f"{stack.vm_url}/api/v2/write?org=lordi&bucket=lordi&precision=ms"
    req = urllib.request.Request(url, data="\n".join(lines).encode(), method="POST")  # noqa: S310
    with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 - loopback
        assert resp.status == 204
    vm.force_flush(stack.vm_url)


def run_dashboard(
    stack: LocalStack, name: str, world: dict[str, Any], school: str, device: str = ""
) -> Results:
    """Every target of every panel, each required to return data."""
    view = View(world["from"], world["to"], {"school": school, "device": device})
    out = Results()
    for panel in generated()[name]["panels"]:
        title, panel_view = panel["title"], view.for_panel(panel, time_module.time())
        frames = {t["refId"]: run_target(stack.vm_url, panel_view, t) for t in panel["targets"]}
        for ref, frame in frames.items():
            assert frame, f"{name}: {title} ({ref}) returned no data"
        if all(t.get("format") == "table" for t in panel["targets"]):
            out[title] = table(panel, frames)
        else:
            out |= {f"{title}/{ref}": frame for ref, frame in frames.items()}
    return out


def by(rows: list[dict[str, Any]], key: str, *columns: str) -> dict[str, list[Any]]:
    """{row[key]: [row[column], ...]} of a table, one row per key."""
    out = {row[key]: [row[c] for c in columns] for row in rows}
    assert len(out) == len(rows), rows
    return out


def values(series: dict[str, list[tuple[float, float]]]) -> dict[str, list[float]]:
    return {name: sorted(v for _t, v in points) for name, points in series.items()}


def test_the_vm_dashboards_are_the_ones_tested() -> None:
    assert sorted(n for n in generated() if n.startswith("vm/")) == sorted(NAMES)


def test_fleet(stack: LocalStack, world: dict[str, Any]) -> None:
    s1, s2 = world["s1"], world["s2"]
    rows = run_dashboard(stack, "vm/fleet.json", world, f"({s1}|{s2})")
    reporting = values(rows["Devices reporting per school/A"])
    assert {k: set(v) for k, v in reporting.items()} == {s1: {3}, s2: {2}}
    assert rows["Devices to act on (health < 60 %)/A"] == {"to_replace": 2}  # d1 and d4
    assert rows["Devices to act on (health < 60 %)/B"] == {"to_watch": 1}  # d2
    bands = by(
        rows["Battery health bands per school"], "school", "lt60", "b60_80", "ge80", "p50", "known"
    )
    assert bands == {s1: [1, 1, 1, 70.0, 3], s2: [1, 0, 1, 50.0, 2]}
    models = by(rows["Battery health bands per model"], "model", "lt60", "b60_80", "ge80")
    assert models == {"M-A": [1, 1, 0], "M-B": [1, 0, 2]}
    replace = by(rows["Schools with laptops to replace"], "school", "to_replace", "known")
    assert replace == {s1: [1, 3], s2: [1, 2]}
    rssi = values(rows["Wi-Fi signal on the school network per school/A"])
    # s1: 07h hour (d1, d2 at -60, d3 at -75, twice each), noon, 16h (d1 off network)
    assert {k: set(v) for k, v in rssi.items()} == {s1: {-65.0, -67.5}, s2: {-50.0}}
    disc = values(rows["Wi-Fi disconnects per school/A"])
    assert disc == {s1: [1] * 6 + [2] * 3, s2: [0] * 9}
    forecast = by(
        rows["Forecast battery replacements per term"],
        "term",
        "devices_below_80",
        "devices_below_60",
    )
    # The last run (day 2) of each school and term, summed over the two schools; the
    # day-0 run's 9s are superseded.
    assert forecast == {scenario.TERM_1: [5, 3], scenario.TERM_2: [1, 0], "before": [0, 1]}
    day0, day1 = _midnights(world)
    for minutes, s1_days, s2_days in ((5, [80.0, 50.0], [50.0]), (15, [90.0, 60.0], [50.0])):
        share = _by_time(rows[f"Laptops connected within {minutes} min per school/A"])
        assert share == {s1: dict(zip([day0, day1], s1_days, strict=True)), s2: {day0: s2_days[0]}}
    median = _by_time(rows["Median morning connection time per school/A"])
    assert median == {s1: {day0: 60.0, day1: 315.0}, s2: {day0: 60.0}}
    times = by(rows["Time online vs cut off per school"], "school", "online_s", "unreachable_s")
    assert times == {s1: [250005.0, 39195.0], s2: [14340.0, 14460.0]}
    failures = by(rows["Connection failures by cause per school"], "school", *CAUSES)
    assert failures == {s1: [70, 1, 2, 49, 0, 0], s2: [0, 0, 0, 0, 48, 0]}
    assert not rows.unread()


def _midnights(world: dict[str, Any]) -> list[float]:
    """The (Paris) midnights starting the scenario's first two days: where this
    flavour puts a school day's figure."""
    return [scenario.at(d, time(0, 0)).timestamp() for d in world["days"][:2]]


def _by_time(series: dict[str, list[tuple[float, Any]]]) -> dict[str, dict[float, float]]:
    return {name: {t: float(v) for t, v in points} for name, points in series.items()}


def test_fleet_single_school(stack: LocalStack, world: dict[str, Any]) -> None:
    rows = run_dashboard(stack, "vm/fleet.json", world, world["s2"])
    assert rows["Devices to act on (health < 60 %)/A"] == {"to_replace": 1}
    assert rows["Devices to act on (health < 60 %)/B"] == {"to_watch": 0}
    forecast = by(
        rows["Forecast battery replacements per term"],
        "term",
        "devices_below_80",
        "devices_below_60",
    )
    assert forecast == {scenario.TERM_1: [3, 2], scenario.TERM_2: [0, 0]}
    bands = by(rows["Battery health bands per school"], "school", "lt60", "known")
    assert bands == {world["s2"]: [1, 2]}  # the other school's summaries are not read


def test_school(stack: LocalStack, world: dict[str, Any]) -> None:
    s1 = world["s1"]
    rows = run_dashboard(stack, "vm/school.json", world, s1)
    # As in the InfluxQL test: resolved alerts, the other school's, and the one whose
    # only transition is older than the 90-day lookback are not open here; two access
    # points opened by one window and d1's two batteries are two rows each.
    open_alerts = _open_alerts(rows)
    assert open_alerts == {
        f"{s1}/d1/BAT0/battery_replace": ["d1", "battery_replace", 2, "hardware", "warning"],
        f"{s1}/d1/BAT1/battery_replace": ["d1", "battery_replace", 3, "hardware", "warning"],
        f"{s1}/d2/BAT0/battery_watch": ["d2", "battery_watch", 5, "hardware", "info"],
        f"{s1}/d3/device_silent": ["d3", "device_silent", 7, "hardware", "warning"],
        f"{s1}/ap/{scenario.AP_A}/wifi_ap_fault": ["", "wifi_ap_fault", 8, "network", "critical"],
        f"{s1}/ap/{scenario.AP_B}/wifi_ap_fault": ["", "wifi_ap_fault", 9, "network", "critical"],
        f"{s1}/d1/BAT0/charging_fault": ["d1", "charging_fault", 11, "hardware", "warning"],
        f"{s1}/school_silent": ["", "school_silent", 14, "network", "critical"],
    }
    assert open_alerts == _worklist(world, s1)  # what the collector's store says
    opened = {row["alert_key"]: row["opened"] for row in rows["Open alerts"]}
    now_ms = world["now"].timestamp() * 1000
    # "opened" is when the alert opened, or re-opened (d1's charging fault).
    assert {k: round((now_ms - v) / 86.4e6, 2) for k, v in opened.items()} == {
        f"{s1}/d1/BAT0/battery_replace": 30.0,
        f"{s1}/d1/BAT1/battery_replace": 30.0,
        f"{s1}/d2/BAT0/battery_watch": 6.0,
        f"{s1}/d3/device_silent": 3.0,
        f"{s1}/ap/{scenario.AP_A}/wifi_ap_fault": 2.0,
        f"{s1}/ap/{scenario.AP_B}/wifi_ap_fault": 2.0,
        f"{s1}/d1/BAT0/charging_fault": 0.5,
        f"{s1}/school_silent": 0.25,
    }
    assert rows["Open alerts per category/A"] == {"hardware": 5, "network": 3}
    laptops = by(rows["Laptops"], "device", "health_pct", "cycles", "last seen")
    last_seen = scenario.at(world["days"][-1], time(16, 0)).timestamp() * 1000
    assert laptops == {
        "d1": [55.0, 400, last_seen],
        "d2": [70.0, 300, last_seen],
        "d3": [90.0, 100, last_seen],
    }
    act = by(rows["Laptops to act on (health < 60 %)"], "device", "health_pct")
    assert act == {"d1": [55.0]}
    aps = by(
        rows["Wi-Fi per access point"],
        "bssid_hash",
        "rssi_dbm",
        "rssi_min_dbm",
        "disconnects",
        "reports",
    )
    assert aps == {
        scenario.AP_A: [-60.0, -65.0, 0, 21],  # d1 3 and d2 4 school reports a day
        scenario.AP_B: [-75.0, -80.0, 12, 12],
    }
    per_ap = values(rows["Wi-Fi signal per access point/A"])
    assert {k: set(v) for k, v in per_ap.items()} == {
        scenario.AP_A: {-60.0},
        scenario.AP_B: {-75.0},
    }
    _check_mornings(
        rows[f"{MORNING}/A"],
        rows[f"{MORNING}/B"],
        View(world["from"], world["to"], {}),
        world["days"],
    )
    _check_reach(rows, world)
    assert not rows.unread()


def _check_reach(rows: Results, world: dict[str, Any]) -> None:
    """School 1's Wi-Fi access, as in test_queries.py (reach_scenario.py); each day's
    figures at the midnight starting it."""
    day0, day1 = _midnights(world)
    shares = {
        "within_5_min": _by_time(rows["Laptops connected within 5 / 15 min/A"]),
        "within_15_min": _by_time(rows["Laptops connected within 5 / 15 min/B"]),
    }
    assert shares == {
        "within_5_min": {"within_5_min": {day0: 80.0, day1: 50.0}},
        "within_15_min": {"within_15_min": {day0: 90.0, day1: 60.0}},
    }
    median = _by_time(rows["Median morning connection time/A"])
    assert median == {"median_wait_s": {day0: 60.0, day1: 315.0}}  # day 1: (30 + 600) / 2
    aps = by(
        rows["Time online vs cut off per access point"], "bssid_hash", "online_s", "unreachable_s"
    )
    assert aps == {
        scenario.AP_A: [152715.0, 885.0],
        scenario.AP_B: [97290.0, 38310.0],
    }
    assert rows["Time online vs cut off/A"] == {"online_s": 250005.0}
    assert rows["Time online vs cut off/B"] == {"unreachable_s": 39195.0}
    failures = {
        c: rows[f"Connection failures by cause/{ref}"]
        for ref, c in zip("ABCDEF", CAUSES, strict=True)
    }
    assert failures == {
        "dns": {"dns": 70},
        "connect": {"connect": 1},
        "timeout": {"timeout": 2},
        "tls": {"tls": 49},
        "refused": {"refused": 0},
        "closed": {"closed": 0},
    }


MORNING = "Charge level at the first class of the day"


def _check_mornings(a: Any, b: Any, view: View, days: list[date]) -> None:
    """One bar per day of the range, at the (aligned) midnight starting it: the first
    report in the 24 h from 07:30, d1 80, d2 60, d3 100. When the range spans a clock
    change, Grafana's alignment adds the day before, whose first report is the first
    day's 07:00 (20 %) if it is within 24 h of that 07:30. (The InfluxQL flavour
    always shows the day before, its day running to the first day's 07:30.)"""
    mean, low = dict(a["mean_percent"]), dict(b["min_percent"])
    start, end = view.aligned(86400)
    steps = [start + 86400 * i for i in range(int((end - start) // 86400) + 1)]
    expected = {}
    for t in steps:
        (day,) = [d for d in _days_around(days) if t < _first_class(d) <= t + 86400]
        if day in days:
            expected[t] = [80.0, 60.0]
        elif scenario.at(days[0], time(7, 0)).timestamp() < _first_class(day) + 86400:
            expected[t] = [20.0, 20.0]
    assert sorted(mean) == sorted(low) == sorted(expected)
    assert {t: [mean[t], low[t]] for t in mean} == expected
    assert list(expected.values()).count([80.0, 60.0]) == len(days)


@pytest.mark.parametrize("season", ["latest", "the one before"])
def test_first_class_across_a_clock_change(stack: LocalStack, season: str) -> None:
    """The Saturday, Sunday and Monday of the last two clock changes in Paris (one
    in spring, one in autumn): every day's 07:30 is the local one."""
    change = scenario.last_clock_change(datetime.now(UTC).date() - timedelta(days=2))
    if season != "latest":
        change = scenario.last_clock_change(change)
    days = [change + timedelta(days=i) for i in (-1, 0, 1)]
    school = unique_school()
    items = scenario.samples(scenario.laptops(school, unique_school()), days)
    _write(stack, scenario.line_protocol(items, strings=False))
    start, end = scenario.at(days[0], time(0, 0)), scenario.at(days[-1], time(23, 59))
    view = View(start.timestamp(), end.timestamp(), {"school": school})
    panel = next(p for p in generated()["vm/school.json"]["panels"] if p["title"] == MORNING)
    a, b = (run_target(stack.vm_url, view, t) for t in panel["targets"])
    _check_mornings(a, b, view, days)


def _days_around(days: list[date]) -> list[date]:
    return [days[0] - timedelta(days=1), *days, days[-1] + timedelta(days=1)]


def _first_class(day: date) -> float:
    return scenario.at(day, time(7, 30)).timestamp()


def test_school_alerts_of_the_other_school(stack: LocalStack, world: dict[str, Any]) -> None:
    s2 = world["s2"]
    rows = run_dashboard(stack, "vm/school.json", world, s2)
    assert _open_alerts(rows) == {
        f"{s2}/d4/BAT0/battery_replace": ["d4", "battery_replace", 12, "hardware", "warning"],
        f"{s2}/school_silent": ["", "school_silent", 13, "network", "critical"],
    }
    assert _open_alerts(rows) == _worklist(world, s2)
    assert rows["Open alerts per category/A"] == {"hardware": 1, "network": 1}
    assert by(rows["Laptops to act on (health < 60 %)"], "device", "health_pct") == {"d4": [50.0]}


def _open_alerts(rows: Results) -> dict[str, list[Any]]:
    """{alert_key: [device, rule, alert_id, category, severity]} of the Open alerts table."""
    table_rows = rows["Open alerts"]
    for row in table_rows:
        assert row["alert_key"], f"an `alert` point without alert_key: {row}"
    return by(table_rows, "alert_key", "device", "rule", "alert_id", "category", "severity")


def _worklist(world: dict[str, Any], school: str) -> dict[str, list[Any]]:
    """The same rows from the collector's store: the school's unresolved alerts whose
    last change is within the panels' 90 days."""
    since = world["now"] - timedelta(days=ALERT_LOOKBACK_DAYS)
    return {
        a.key: [a.device or "", a.rule, a.id, a.category, a.severity]
        for a in world["unresolved"]
        if a.school == school and a.updated_at > since
    }


def test_device(stack: LocalStack, world: dict[str, Any]) -> None:
    rows = run_dashboard(stack, "vm/device.json", world, world["s1"], "d1")
    health = rows["Battery health/A"]
    assert list(health) == ["BAT0"]
    assert values(health) == {"BAT0": [55.0] * 9}  # 3 reporting hours a day x 3 days
    assert values(rows["Charge cycles/A"]) == {"cycles": [400] * 9}
    day = world["days"][0]
    charging = _by_paris_hour(rows, "Charging pattern", "ABC", day)
    assert charging[7] == [50.0, 2, 0]  # mean(20, 80), discharging, unplugged
    assert charging[12] == [60.0, 1, 1]
    assert charging[16] == [40.0, 2, 0]
    wifi = _by_paris_hour(rows, "Wi-Fi timeline", "ABCD", day)
    assert wifi[7] == [-60.0, -65.0, 0, 1]
    assert wifi[16] == [-40.0, -45.0, 0, 1]  # d1 off the school network at 16:00
    assert sorted(wifi) == sorted(charging) == [7, 12, 16]
    assert not rows.unread()


def _by_paris_hour(rows: Results, title: str, refs: str, day: date) -> dict[int, list[float]]:
    """{Paris hour: [value of each target]} of the day's points of a multi-target panel."""
    series = [dict(next(iter(rows[f"{title}/{ref}"].values()))) for ref in refs]
    hours = {scenario.at(day, time(h, 0)).timestamp(): h for h in range(24)}
    return {hours[t]: [s[t] for s in series] for t in sorted(series[0]) if t in hours}


def test_template_variables(stack: LocalStack, world: dict[str, Any]) -> None:
    s1, s2 = world["s1"], world["s2"]
    view = View(world["from"], world["to"], {"school": s1})
    checked = 0
    for name in NAMES:
        for var in generated()[name]["templating"]["list"]:
            if var["type"] != "query":
                continue
            found = variable_values(stack.vm_url, view, var["query"])
            expected = {"d1", "d2", "d3"} if var["name"] == "device" else {s1, s2}
            assert expected <= found, (name, var["name"])
            if var["name"] == "device":
                assert "d4" not in found
            checked += 1
    assert checked == 4  # school on each dashboard, device on Device
