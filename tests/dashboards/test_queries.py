"""Every InfluxQL panel query of the generated dashboards, run on the session's real
InfluxDB 1.6.7 (the VictoriaMetrics flavour's MetricsQL: test_queries_vm.py).

The store is loaded with the collector's own line protocol (`collector.lineproto`)
for the known scenario of `scenario.py`, plus the per-school summaries built from
the same samples by `collector.summaries`. Grafana's macros are substituted as
Grafana does for InfluxQL: `$timeFilter` -> `time >= <from>ms and time <= <to>ms`,
`$__interval` -> `1h`, `$school` / `$device` -> the selected value (a multi-value
selection inside `/^$school$/` becomes `(A|B)`). A panel with a relative time of
its own (`timeFrom`, e.g. "90d") gets `time >= now() - 90d and time <= now()`, as
Grafana writes it for a relative range.

The `alert` series is the collector's own output: `scenario.alert_history` opens,
resolves and re-opens the scenario's alerts in the collector's AlertStore and writes
them with `collector.alerts.series.alert_lines`, so the panels read what the writer
writes. The `forecast` series (not derived from samples) is loaded from
`scenario.forecast_lines` in the agreed line-protocol schema.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest

from collector.summaries import summary_lines
from dashboards.generate import generated
from dashboards.panels import queries
from dashboards.reach import CAUSES
from dashboards.school import ALERT_LOOKBACK_DAYS
from lordi.stack import LocalStack
from tests.dashboards import reach_scenario, scenario
from tests.helpers import influx_post, unique_school

DB = "lordi_dashboards"
Rows = dict[str, list[dict[str, Any]]]  # "(panel, refId)" -> series


@pytest.fixture(scope="module")
def world(stack: LocalStack) -> dict[str, Any]:
    s1, s2 = unique_school(), unique_school()
    days = scenario.days()
    items = scenario.samples(scenario.laptops(s1, s2), days)
    lines = scenario.line_protocol(items) + summary_lines(items)
    now = datetime.now(UTC)
    alert_lines, unresolved = scenario.alert_history(s1, s2, now)
    lines += alert_lines
    lines += scenario.forecast_lines(s1, s2, days)
    influx_post(f"{stack.influx_url}/query?q=CREATE%20DATABASE%20{DB}", b"")
    on_time, late = reach_scenario.items(s1, s2, days)
    lines += reach_scenario.connectivity_lines(on_time)
    influx_post(f"{stack.influx_url}/write?db={DB}&precision=ms", "\n".join(lines).encode())
    # The reports spooled while cut off arrive after everything else, newest first.
    spooled = reach_scenario.connectivity_lines(late[::-1])
    influx_post(f"{stack.influx_url}/write?db={DB}&precision=ms", "\n".join(spooled).encode())
    start = scenario.at(days[0], time(0, 0))
    end = scenario.at(days[-1], time(23, 59))
    return {
        "s1": s1,
        "s2": s2,
        "days": days,
        "from": _ms(start),
        "to": _ms(end),
        "now": now,
        "unresolved": unresolved,
    }


def _ms(ts: Any) -> int:
    return int(ts.timestamp() * 1000)


def substitute(
    query: str, world: dict[str, Any], school: str, device: str = "", time_from: str = ""
) -> str:
    window = (
        f"time >= now() - {time_from} and time <= now()"
        if time_from
        else f"time >= {world['from']}ms and time <= {world['to']}ms"
    )
    return (
        query.replace("$timeFilter", window)
        .replace("$__interval", "1h")
        .replace("$school", school)
        .replace("$device", device)
    )


def run(stack: LocalStack, query: str) -> list[dict[str, Any]]:
    params = urllib.parse.urlencode({"db": DB, "q": query, "epoch": "ms"})
    with urllib.request.urlopen(f"{stack.influx_url}/query?{params}", timeout=10) as resp:  # noqa: S310
        result = json.loads(resp.read())["results"][0]
    assert "error" not in result, (query, result)
    return list(result.get("series", []))


def run_dashboard(
    stack: LocalStack, name: str, world: dict[str, Any], school: str, device: str = ""
) -> Rows:
    out: Rows = {}
    for panel in generated()[name]["panels"]:
        title = panel["title"]
        for t in panel["targets"]:
            query = substitute(t["query"], world, school, device, panel.get("timeFrom", ""))
            series = run(stack, query)
            assert series, f"{name}: {title} ({t['refId']}) returned no data"
            out[f"{title}/{t['refId']}"] = series
    return out


def table(series: list[dict[str, Any]], tag: str) -> dict[str, dict[str, Any]]:
    """{tag value: {column: value}} of a single-row-per-series result."""
    out = {}
    for s in series:
        assert len(s["values"]) == 1, s
        out[s["tags"][tag]] = dict(zip(s["columns"], s["values"][0], strict=True))
    return out


def column(series: dict[str, Any], name: str) -> list[Any]:
    i = series["columns"].index(name)
    return [row[i] for row in series["values"]]


def test_every_dashboard_has_queries() -> None:
    for name, doc in generated().items():
        assert queries(doc), name


def test_fleet(stack: LocalStack, world: dict[str, Any]) -> None:
    s1, s2 = world["s1"], world["s2"]
    rows = run_dashboard(stack, "fleet.json", world, f"({s1}|{s2})")
    assert len(rows) == 13
    reporting = {
        s["tags"]["school"]: set(column(s, "devices"))
        for s in rows["Devices reporting per school/A"]
    }
    assert reporting == {s1: {3}, s2: {2}}
    (act,) = rows["Devices to act on (health < 60 %)/A"]
    assert act["values"][0][1:] == [2, 1]  # d1 and d4 to replace, d2 to watch
    bands = table(rows["Battery health bands per school/A"], "school")
    assert {
        k: [v["lt60"], v["b60_80"], v["ge80"], v["p50"], v["known"]] for k, v in bands.items()
    } == {s1: [1, 1, 1, 70.0, 3], s2: [1, 0, 1, 50.0, 2]}
    models = table(rows["Battery health bands per model/A"], "model")
    assert {k: [v["lt60"], v["b60_80"], v["ge80"]] for k, v in models.items()} == {
        "M-A": [1, 1, 0],
        "M-B": [1, 0, 2],
    }
    replace = table(rows["Schools with laptops to replace/A"], "school")
    assert {k: [v["to_replace"], v["known"]] for k, v in replace.items()} == {
        s1: [1, 3],
        s2: [1, 2],
    }
    rssi = {
        s["tags"]["school"]: set(column(s, "rssi"))
        for s in rows["Wi-Fi signal on the school network per school/A"]
    }
    # s1: 07h hour (d1, d2 at -60, d3 at -75, twice each), noon, 16h (d1 off network)
    assert rssi == {s1: {-65.0, -67.5}, s2: {-50.0}}
    disc = {
        s["tags"]["school"]: sorted(column(s, "disconnects"))
        for s in rows["Wi-Fi disconnects per school/A"]
    }
    assert disc == {s1: [1] * 6 + [2] * 3, s2: [0] * 9}
    forecast = table(rows["Forecast battery replacements per term/A"], "term")
    # The last run (day 2) of each school and term, summed over the two schools; the
    # day-0 run's 9s are superseded.
    assert {k: [v["devices_below_80"], v["devices_below_60"]] for k, v in forecast.items()} == {
        scenario.TERM_1: [5, 3],
        scenario.TERM_2: [1, 0],
        "before": [0, 1],
    }
    day0, day1 = (_ms(scenario.at(d, time(7, 30))) for d in world["days"][:2])
    for minutes, s1_days, s2_days in ((5, [80.0, 50.0], [50.0]), (15, [90.0, 60.0], [50.0])):
        share = {
            s["tags"]["school"]: dict(s["values"])
            for s in rows[f"Laptops connected within {minutes} min per school/A"]
        }
        assert share == {s1: dict(zip([day0, day1], s1_days, strict=True)), s2: {day0: s2_days[0]}}
    median = {
        s["tags"]["school"]: dict(s["values"])
        for s in rows["Median morning connection time per school/A"]
    }
    assert median == {s1: {day0: 60.0, day1: 315.0}, s2: {day0: 60.0}}
    times = table(rows["Time online vs cut off per school/A"], "school")
    assert {k: [v["online_s"], v["unreachable_s"]] for k, v in times.items()} == {
        s1: [250005.0, 39195.0],
        s2: [14340.0, 14460.0],
    }
    failures = table(rows["Connection failures by cause per school/A"], "school")
    assert {k: [v[c] for c in CAUSES] for k, v in failures.items()} == {
        s1: [70, 1, 2, 49, 0, 0],  # dns, connect, timeout, tls, refused, closed
        s2: [0, 0, 0, 0, 48, 0],
    }


def test_fleet_single_school(stack: LocalStack, world: dict[str, Any]) -> None:
    rows = run_dashboard(stack, "fleet.json", world, world["s2"])
    (act,) = rows["Devices to act on (health < 60 %)/A"]
    assert act["values"][0][1:] == [1, 0]
    forecast = table(rows["Forecast battery replacements per term/A"], "term")
    assert {k: [v["devices_below_80"], v["devices_below_60"]] for k, v in forecast.items()} == {
        scenario.TERM_1: [3, 2],
        scenario.TERM_2: [0, 0],
    }


def test_school(stack: LocalStack, world: dict[str, Any]) -> None:
    rows = run_dashboard(stack, "school.json", world, world["s1"])
    assert len(rows) == 13
    s1 = world["s1"]
    # Resolved alerts (the school-wide Wi-Fi fault, d2's weak Wi-Fi, access point D's),
    # the other school's, and one whose only transition is older than the 90-day
    # lookback are not open here. The two access points' alerts (opened by the same
    # window) and d1's two batteries' (the same sample) are two rows each.
    assert len(rows["Open alerts/A"]) == 8
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
    opened = {s["tags"]["alert_key"]: s["values"][0][0] for s in rows["Open alerts/A"]}
    now_ms = world["now"].timestamp() * 1000
    # The row's time is when the alert opened, or re-opened (d1's charging fault).
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
    per_category = {
        s["tags"]["category"]: column(s, "open_alerts") for s in rows["Open alerts per category/A"]
    }
    assert per_category == {"hardware": [5], "network": [3]}  # the collector's categories
    laptops = table(rows["Laptops/A"], "device")
    assert {k: [v["health_pct"], v["cycles"]] for k, v in laptops.items()} == {
        "d1": [55.0, 400],
        "d2": [70.0, 300],
        "d3": [90.0, 100],
    }
    last_seen = {k: v["time"] for k, v in table(rows["Laptops/B"], "device").items()}
    expected = _ms(scenario.at(world["days"][-1], time(16, 0)))
    assert last_seen == {"d1": expected, "d2": expected, "d3": expected}
    act = table(rows["Laptops to act on (health < 60 %)/A"], "device")
    assert {k: v["health_pct"] for k, v in act.items()} == {"d1": 55.0}
    aps = table(rows["Wi-Fi per access point/A"], "bssid_hash")
    assert {
        k: [v["rssi_dbm"], v["rssi_min_dbm"], v["disconnects"], v["reports"]]
        for k, v in aps.items()
    } == {
        scenario.AP_A: [-60.0, -65.0, 0, 21],  # d1 3 and d2 4 school reports a day
        scenario.AP_B: [-75.0, -80.0, 12, 12],
    }
    per_ap = {
        s["tags"]["bssid_hash"]: set(column(s, "rssi"))
        for s in rows["Wi-Fi signal per access point/A"]
    }
    assert per_ap == {scenario.AP_A: {-60.0}, scenario.AP_B: {-75.0}}
    (morning,) = rows["Charge level at the first class of the day/A"]
    by_bucket = {row[0]: row[1:] for row in morning["values"]}
    for day in world["days"]:
        start = _ms(scenario.at(day, time(7, 30)))
        assert by_bucket[start] == [80.0, 60.0], day  # d1 80, d2 60, d3 100
    # The bucket before the first day holds the 07:00 reports (20 %): approximation.
    before = _ms(scenario.at(world["days"][0] - timedelta(days=1), time(7, 30)))
    assert by_bucket[before] == [20.0, 20.0]
    assert len(by_bucket) == 4
    _check_reach(rows, world)


def _check_reach(rows: Rows, world: dict[str, Any]) -> None:
    """School 1's Wi-Fi access (reach_scenario.py). Day 0: 10 laptops on the network,
    8 within 5 min, 9 within 15, r10 never; first waits 10 20 30 45 60 90 120 300 600 s.
    Day 1 (its cut-off reports written last): r01-r04, r11 within 5 min, r05 within 15,
    r06-r09 not, of 10; first waits 30 x4, 600, 2400 x3. Without the late reports day 1
    would read 5 of 9 (r09 has no other report)."""
    day0, day1 = (_ms(scenario.at(d, time(7, 30))) for d in world["days"][:2])
    (shares,) = rows["Laptops connected within 5 / 15 min/A"]
    assert shares["columns"] == ["time", "within_5_min", "within_15_min"]
    assert {row[0]: row[1:] for row in shares["values"]} == {
        day0: [80.0, 90.0],
        day1: [50.0, 60.0],
    }
    (median,) = rows["Median morning connection time/A"]
    assert dict(median["values"]) == {day0: 60.0, day1: 315.0}  # day 1: (30 + 600) / 2
    aps = table(rows["Time online vs cut off per access point/A"], "bssid_hash")
    assert {k: [v["online_s"], v["unreachable_s"]] for k, v in aps.items()} == {
        scenario.AP_A: [152715.0, 885.0],
        scenario.AP_B: [97290.0, 38310.0],
    }
    (total,) = rows["Time online vs cut off/A"]
    assert total["values"][0][1:] == [250005.0, 39195.0]
    (failures,) = rows["Connection failures by cause/A"]
    assert failures["columns"][1:] == list(CAUSES)
    assert failures["values"][0][1:] == [70, 1, 2, 49, 0, 0]


def test_school_alerts_of_the_other_school(stack: LocalStack, world: dict[str, Any]) -> None:
    s2 = world["s2"]
    rows = run_dashboard(stack, "school.json", world, s2)
    assert _open_alerts(rows) == {
        f"{s2}/d4/BAT0/battery_replace": ["d4", "battery_replace", 12, "hardware", "warning"],
        f"{s2}/school_silent": ["", "school_silent", 13, "network", "critical"],
    }
    assert _open_alerts(rows) == _worklist(world, s2)
    per_category = {
        s["tags"]["category"]: column(s, "open_alerts") for s in rows["Open alerts per category/A"]
    }
    assert per_category == {"hardware": [1], "network": [1]}


def _open_alerts(rows: Rows) -> dict[str, list[Any]]:
    """{alert_key: [device, rule, alert_id, category, severity]} of the Open alerts table."""
    out = {}
    for s in rows["Open alerts/A"]:
        tags = s["tags"]
        assert tags["alert_key"], f"an `alert` point without alert_key: {tags}"
        (row,) = s["values"]
        out[tags["alert_key"]] = [tags["device"], tags["rule"], *row[1:]]
    return out


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
    rows = run_dashboard(stack, "device.json", world, world["s1"], "d1")
    assert len(rows) == 4
    (health,) = rows["Battery health/A"]
    assert health["tags"] == {"battery": "BAT0"}
    assert set(column(health, "health")) == {55.0}
    assert len(health["values"]) == 9  # 3 reporting hours a day (07h, 12h, 16h) x 3 days
    (cycles,) = rows["Charge cycles/A"]
    assert set(column(cycles, "cycles")) == {400}
    (charging,) = rows["Charging pattern/A"]
    by_hour = _by_paris_hour(charging, world["days"][0])
    assert by_hour[7] == [50.0, 2, 0]  # mean(20, 80), discharging, unplugged
    assert by_hour[12] == [60.0, 1, 1]
    assert by_hour[16] == [40.0, 2, 0]
    (wifi,) = rows["Wi-Fi timeline/A"]
    by_hour = _by_paris_hour(wifi, world["days"][0])
    assert by_hour[7] == [-60.0, -65.0, 0, 1]
    assert by_hour[16] == [-40.0, -45.0, 0, 1]  # d1 off the school network at 16:00


def _by_paris_hour(series: dict[str, Any], day: date) -> dict[int, list[Any]]:
    return {
        h: r[1:]
        for h in range(24)
        for r in series["values"]
        if r[0] == _ms(scenario.at(day, time(h, 0)).replace(minute=0))
    }


def test_template_variables(stack: LocalStack, world: dict[str, Any]) -> None:
    s1, s2 = world["s1"], world["s2"]
    for name, doc in generated().items():
        if name.startswith("vm/"):  # label_values(): test_queries_vm.py
            continue
        for var in doc["templating"]["list"]:
            if var["type"] != "query":
                continue
            (series,) = run(stack, substitute(var["query"], world, s1))
            found = {row[1] for row in series["values"]}
            expected = {"d1", "d2", "d3"} if var["name"] == "device" else {s1, s2}
            assert expected <= found, (name, var["name"])
            if var["name"] == "device":
                assert "d4" not in found
