"""The School dashboard: the raw series of one school (open alerts, laptops, access
points, morning charge). InfluxQL and MetricsQL side by side (dashboards/flavours.py)."""

# ruff: noqa: S608 - InfluxQL text built from constants at generation time, no input

from __future__ import annotations

from dashboards.flavours import Board, Panel, Variable
from dashboards.metricsql import (
    BUCKET,
    INFLUX_TZ,
    RANGE,
    SCHOOL_DAY,
    Query,
    agg,
    first_of_day,
    latest,
    mean,
    over,
    sel,
    table,
)
from dashboards.panels import target
from dashboards.reach import Scope, reach_panels

ONE_SCHOOL = "\"school\" = '$school'"
ONE_DEVICE = "\"school\" = '$school' AND \"device\" = '$device'"
VM_SCHOOL = 'school="$school"'
VM_DEVICE = 'school="$school",device="$device"'
# Buckets of one school day starting 07:30 Paris time (DST handled by tz()).
FIRST_CLASS = SCHOOL_DAY
PARIS = INFLUX_TZ
# Alerts are points written at each transition (measurement `alert`, see
# open_alert_panels): an alert opened weeks ago has no point in a 7-day range, so
# these panels look back further than the dashboard.
ALERT_LOOKBACK_DAYS = 90
ALERT_LOOKBACK = f"{ALERT_LOOKBACK_DAYS}d"
SCHOOL_VARIABLE = Variable(
    "school",
    "School",
    'SHOW TAG VALUES FROM "device" WITH KEY = "school"',
    "label_values(device_report, school)",
)


def open_alert_panels() -> list[Panel]:
    """Open alerts of the school, from the collector's `alert` points
    (collector/alerts/series.py): one per open / resolve / re-open, tags `alert_key`
    (the alert's identity: one unresolved alert per key), school, device (absent for
    access-point and school alerts), rule, category (`hardware` / `network`),
    severity; fields `open` (1 opened, 0 resolved), `alert_id`, `since_ms`. An alert
    is open when the last point of its key says so. Grouping by `alert_key` keeps
    apart what device and rule do not: two access points, a laptop's two batteries
    (`device` and `rule` add columns, and group points written without `alert_key`
    as before).

    MetricsQL: `alert_open`, `alert_alert_id` are one series per alert key and tag
    set (the tags of a key do not change), so the last point of each series is the
    last transition of its alert."""
    per_alert = '"alert_key", "device", "rule"'
    last = (
        'SELECT last("open") AS "open", "alert_id", "category", "severity" FROM "alert" '
        f"WHERE $timeFilter AND {ONE_SCHOOL} GROUP BY {per_alert}"
    )
    by_category = (
        'SELECT last("open") AS "open", "alert_id" FROM "alert" '
        f'WHERE $timeFilter AND {ONE_SCHOOL} GROUP BY {per_alert}, "category"'
    )
    is_open = f"{over('last', sel('alert_open', VM_SCHOOL), RANGE)} == 1"
    columns = "alert_key, device, rule, category, severity"
    alert_id = over("last", sel("alert_alert_id", VM_SCHOOL), RANGE)
    opened_ms = f"1000 * {over('tlast', sel('alert_open', VM_SCHOOL), RANGE)}"
    return [
        Panel(
            "table",
            "Open alerts",
            (0, 0, 16, 8),
            [
                target(
                    "A",
                    'SELECT "alert_id", "category", "severity" '
                    f'FROM ({last}) WHERE "open" = 1 GROUP BY {per_alert}',
                    fmt="table",
                )
            ],
            [
                table("A", agg("max", columns, f"{alert_id} and ({is_open})"), "alert_id"),
                table(
                    "B",
                    agg("max", columns, f"{opened_ms} and ({is_open})"),
                    "opened",
                    unit="dateTimeAsIso",
                ),
            ],
            description=(
                f"Alerts whose last transition in the last {ALERT_LOOKBACK_DAYS} days opened "
                "or re-opened them; time is that transition's. alert_key names the alert's "
                "subject (school/device/battery/rule, school/ap/<bssid_hash>/rule, "
                "school/rule); device is empty for access-point and school-wide alerts. "
                "An alert open for longer without any transition is missing here: "
                "`lordi alerts` is the complete worklist."
            ),
            transformations=[{"id": "organize", "options": {"renameByName": {"Time": "opened"}}}],
            time_from=ALERT_LOOKBACK,
        ),
        Panel(
            "stat",
            "Open alerts per category",
            (16, 0, 8, 8),
            [
                target(
                    "A",
                    'SELECT count("alert_id") AS "open_alerts" '
                    f'FROM ({by_category}) WHERE "open" = 1 GROUP BY "category"',
                    alias="$tag_category",
                )
            ],
            [Query("A", agg("count", "category", is_open), "{{category}}", instant=True)],
            description=(
                "Open alerts by the contractor who acts: hardware (laptops, batteries, "
                "chargers, silent laptops) or network (access points, the school's Wi-Fi "
                "and link). Same alerts as the table."
            ),
            time_from=ALERT_LOOKBACK,
        ),
    ]


def laptop_panels() -> list[Panel]:
    battery = f'FROM "battery" WHERE $timeFilter AND {ONE_SCHOOL}'
    health = sel("battery_health_pct", VM_SCHOOL)
    last_seen = agg("max", "device", over("tlast", sel("device_report", VM_SCHOOL), RANGE))
    two_batteries = (
        "A laptop with two batteries shows the lower health and the higher cycle count "
        "of its newest report (the InfluxDB flavour: the last value of either)."
    )
    return [
        Panel(
            "table",
            "Laptops",
            (0, 8, 12, 12),
            [
                target(
                    "A",
                    f'SELECT last("health_pct") AS "health_pct", '
                    f'last("cycle_count") AS "cycles" {battery} GROUP BY "device"',
                    fmt="table",
                ),
                target(
                    "B",
                    'SELECT last("report") AS "report" FROM "device" '
                    f'WHERE $timeFilter AND {ONE_SCHOOL} GROUP BY "device"',
                    fmt="table",
                ),
            ],
            [
                table("A", latest(health, RANGE, "device", "min"), "health_pct"),
                table(
                    "B",
                    latest(sel("battery_cycle_count", VM_SCHOOL), RANGE, "device", "max"),
                    "cycles",
                ),
                table(
                    "C",
                    f"1000 * {last_seen}",
                    "last seen",
                    unit="dateTimeAsIso",
                ),
            ],
            description="Last health and cycle count, and the time of the last report (last seen).",
            vm_note=two_batteries,
            transformations=[
                {"id": "merge", "options": {}},
                {"id": "organize", "options": {"renameByName": {"Time": "last seen"}}},
            ],
        ),
        Panel(
            "table",
            "Laptops to act on (health < 60 %)",
            (12, 8, 12, 12),
            [
                target(
                    "A",
                    'SELECT "health_pct" FROM (SELECT last("health_pct") AS "health_pct" '
                    f'{battery} GROUP BY "device") WHERE "health_pct" < 60 GROUP BY "device"',
                    fmt="table",
                )
            ],
            [table("A", f"{latest(health, RANGE, 'device', 'min')} < 60", "health_pct")],
            vm_note="A laptop with two batteries shows the lower health of its newest report "
            "(the InfluxDB flavour: the last value of either).",
        ),
    ]


def wifi_panels() -> list[Panel]:
    wifi = f'FROM "wifi" WHERE $timeFilter AND {ONE_SCHOOL} AND "on_school_network" = 1'

    # The access point's hash is sent on the school network only (docs/contract.md):
    # a field condition cannot filter points in MetricsQL, a label can.
    def on_school(field: str) -> str:
        return sel(f"wifi_{field}", f'{VM_SCHOOL},bssid_hash!=""')

    return [
        Panel(
            "table",
            "Wi-Fi per access point",
            (0, 20, 12, 10),
            [
                target(
                    "A",
                    'SELECT mean("rssi_dbm") AS "rssi_dbm", min("rssi_min_dbm") AS "rssi_min_dbm", '
                    'sum("disconnects") AS "disconnects", count("rssi_dbm") AS "reports" '
                    f'{wifi} GROUP BY "bssid_hash"',
                    fmt="table",
                )
            ],
            [
                table("A", mean(on_school("rssi_dbm"), RANGE, "bssid_hash"), "rssi_dbm"),
                table(
                    "B",
                    agg("min", "bssid_hash", over("min", on_school("rssi_min_dbm"), RANGE)),
                    "rssi_min_dbm",
                ),
                table(
                    "C",
                    agg("sum", "bssid_hash", over("sum", on_school("disconnects"), RANGE)),
                    "disconnects",
                ),
                table(
                    "D",
                    agg("sum", "bssid_hash", over("count", on_school("rssi_dbm"), RANGE)),
                    "reports",
                ),
            ],
            description="Reports on the school network only; bssid_hash identifies the AP.",
            vm_note="(Here: the reports that carry an access point, which agents send on "
            "the school network only.)",
        ),
        Panel(
            "timeseries",
            "Wi-Fi signal per access point",
            (12, 20, 12, 10),
            [
                target(
                    "A",
                    f'SELECT mean("rssi_dbm") AS "rssi" {wifi} '
                    'GROUP BY time($__interval), "bssid_hash" fill(none)',
                    alias="$tag_bssid_hash",
                )
            ],
            [Query("A", mean(on_school("rssi_dbm"), BUCKET, "bssid_hash"), "{{bssid_hash}}")],
            unit="dBm",
        ),
    ]


def morning_panel() -> Panel:
    battery = f'FROM "battery" WHERE $timeFilter AND {ONE_SCHOOL}'
    per_laptop = agg("avg", "device", first_of_day(sel("battery_percent", VM_SCHOOL)))
    return Panel(
        "timeseries",
        "Charge level at the first class of the day",
        (0, 30, 24, 9),
        [
            target(
                "A",
                'SELECT mean("first_percent") AS "mean_percent", '
                'min("first_percent") AS "min_percent" FROM (SELECT '
                f'first("percent") AS "first_percent" {battery} '
                f'GROUP BY {FIRST_CLASS}, "device" {PARIS}) '
                f"GROUP BY {FIRST_CLASS} fill(none) {PARIS}",
            )
        ],
        [
            Query("A", f"avg({per_laptop})", "mean_percent", interval="1d"),
            Query("B", f"min({per_laptop})", "min_percent", interval="1d"),
        ],
        unit="percent",
        description=(
            "Per laptop and day, the battery percent of its first report at or after "
            "07:30 Paris time (days run 07:30 to 07:30), averaged over the school."
        ),
        vm_note=(
            "Here each bar stands at the midnight starting its day; a day runs 24 h from "
            "07:30 (23 or 25 h on the nights the clocks change in the InfluxDB flavour); "
            "only days whose 07:30 is in the time range are shown, and the last one may "
            "count reports after the range's end; a laptop with two batteries counts "
            "their mean."
        ),
        custom={"drawStyle": "bars"},
    )


def school_board() -> Board:
    panels = [
        *open_alert_panels(),
        *laptop_panels(),
        *wifi_panels(),
        morning_panel(),
        *reach_panels(Scope(ONE_SCHOOL, VM_SCHOOL, per_school=False), 39),
    ]
    return Board(
        "school",
        "Lordi - School",
        "One school's open alerts, laptops, access points, morning charge levels and "
        "Wi-Fi access (laptops connected in time, time cut off, failure causes).",
        [SCHOOL_VARIABLE],
        panels,
    )
