"""The School and Device dashboards: raw series of one school or one laptop."""

# ruff: noqa: S608 - InfluxQL text built from constants at generation time, no input

from __future__ import annotations

from dashboards.panels import Json, dashboard, panel, query_variable, target

ONE_SCHOOL = "\"school\" = '$school'"
ONE_DEVICE = "\"school\" = '$school' AND \"device\" = '$device'"
# Buckets of one day starting 07:30 Paris time (DST handled by tz()).
FIRST_CLASS = "time(1d, 450m)"
PARIS = "tz('Europe/Paris')"
# Alerts are points written at each transition (measurement `alert`, see
# open_alert_panels): an alert opened weeks ago has no point in a 7-day range, so
# these panels look back further than the dashboard.
ALERT_LOOKBACK_DAYS = 90
ALERT_LOOKBACK = f"{ALERT_LOOKBACK_DAYS}d"


def open_alert_panels() -> list[Json]:
    """Open alerts of the school, from the collector's `alert` points
    (collector/alerts/series.py): one per open / resolve / re-open, tags `alert_key`
    (the alert's identity: one unresolved alert per key), school, device (absent for
    access-point and school alerts), rule, category (`hardware` / `network`),
    severity; fields `open` (1 opened, 0 resolved), `alert_id`, `since_ms`. An alert
    is open when the last point of its key says so. Grouping by `alert_key` keeps
    apart what device and rule do not: two access points, a laptop's two batteries
    (`device` and `rule` add columns, and group points written without `alert_key`
    as before)."""
    per_alert = '"alert_key", "device", "rule"'
    last = (
        'SELECT last("open") AS "open", "alert_id", "category", "severity" FROM "alert" '
        f"WHERE $timeFilter AND {ONE_SCHOOL} GROUP BY {per_alert}"
    )
    by_category = (
        'SELECT last("open") AS "open", "alert_id" FROM "alert" '
        f'WHERE $timeFilter AND {ONE_SCHOOL} GROUP BY {per_alert}, "category"'
    )
    return [
        panel(
            "table",
            "Open alerts",
            [
                target(
                    "A",
                    'SELECT "alert_id", "category", "severity" '
                    f'FROM ({last}) WHERE "open" = 1 GROUP BY {per_alert}',
                    fmt="table",
                )
            ],
            (0, 0, 16, 8),
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
        panel(
            "stat",
            "Open alerts per category",
            [
                target(
                    "A",
                    'SELECT count("alert_id") AS "open_alerts" '
                    f'FROM ({by_category}) WHERE "open" = 1 GROUP BY "category"',
                    alias="$tag_category",
                )
            ],
            (16, 0, 8, 8),
            description=(
                "Open alerts by the contractor who acts: hardware (laptops, batteries, "
                "chargers, silent laptops) or network (access points, the school's Wi-Fi "
                "and link). Same alerts as the table."
            ),
            time_from=ALERT_LOOKBACK,
        ),
    ]


def school() -> Json:
    battery = f'FROM "battery" WHERE $timeFilter AND {ONE_SCHOOL}'
    wifi = f'FROM "wifi" WHERE $timeFilter AND {ONE_SCHOOL} AND "on_school_network" = 1'
    panels = [
        *open_alert_panels(),
        panel(
            "table",
            "Laptops",
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
            (0, 8, 12, 12),
            description="Last health and cycle count; B's time is the last report (last seen).",
            transformations=[
                {"id": "merge", "options": {}},
                {"id": "organize", "options": {"renameByName": {"Time": "last seen"}}},
            ],
        ),
        panel(
            "table",
            "Laptops to act on (health < 60 %)",
            [
                target(
                    "A",
                    'SELECT "health_pct" FROM (SELECT last("health_pct") AS "health_pct" '
                    f'{battery} GROUP BY "device") WHERE "health_pct" < 60 GROUP BY "device"',
                    fmt="table",
                )
            ],
            (12, 8, 12, 12),
        ),
        panel(
            "table",
            "Wi-Fi per access point",
            [
                target(
                    "A",
                    'SELECT mean("rssi_dbm") AS "rssi_dbm", min("rssi_min_dbm") AS "rssi_min_dbm", '
                    'sum("disconnects") AS "disconnects", count("rssi_dbm") AS "reports" '
                    f'{wifi} GROUP BY "bssid_hash"',
                    fmt="table",
                )
            ],
            (0, 20, 12, 10),
            description="Reports on the school network only; bssid_hash identifies the AP.",
        ),
        panel(
            "timeseries",
            "Wi-Fi signal per access point",
            [
                target(
                    "A",
                    f'SELECT mean("rssi_dbm") AS "rssi" {wifi} '
                    'GROUP BY time($__interval), "bssid_hash" fill(none)',
                    alias="$tag_bssid_hash",
                )
            ],
            (12, 20, 12, 10),
            unit="dBm",
        ),
        panel(
            "timeseries",
            "Charge level at the first class of the day",
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
            (0, 30, 24, 9),
            unit="percent",
            description=(
                "Per laptop and day, the battery percent of its first report at or after "
                "07:30 Paris time (days run 07:30 to 07:30), averaged over the school."
            ),
            custom={"drawStyle": "bars"},
        ),
    ]
    school_var = query_variable(
        "school", "School", 'SHOW TAG VALUES FROM "device" WITH KEY = "school"'
    )
    return dashboard(
        "lordi-school",
        "Lordi - School",
        "One school's open alerts, laptops, access points and morning charge levels.",
        [school_var],
        panels,
    )


def device() -> Json:
    battery = f'FROM "battery" WHERE $timeFilter AND {ONE_DEVICE}'
    per_interval = "GROUP BY time($__interval) fill(none)"
    panels = [
        panel(
            "timeseries",
            "Battery health",
            [
                target(
                    "A",
                    f'SELECT mean("health_pct") AS "health" {battery} '
                    'GROUP BY time($__interval), "battery" fill(none)',
                    alias="$tag_battery",
                )
            ],
            (0, 0, 12, 8),
            unit="percent",
        ),
        panel(
            "timeseries",
            "Charge cycles",
            [target("A", f'SELECT max("cycle_count") AS "cycles" {battery} {per_interval}')],
            (12, 0, 12, 8),
        ),
        panel(
            "timeseries",
            "Charging pattern",
            [
                target(
                    "A",
                    'SELECT mean("percent") AS "percent", last("status_code") AS "status_code", '
                    f'max("plugged") AS "plugged" {battery} {per_interval}',
                )
            ],
            (0, 8, 24, 9),
            description="status_code: 0 unknown, 1 charging, 2 discharging, 3 full, "
            "4 not charging.",
        ),
        panel(
            "timeseries",
            "Wi-Fi timeline",
            [
                target(
                    "A",
                    'SELECT mean("rssi_dbm") AS "rssi_dbm", min("rssi_min_dbm") AS "rssi_min_dbm", '
                    'sum("disconnects") AS "disconnects", min("connected") AS "connected" '
                    f'FROM "wifi" WHERE $timeFilter AND {ONE_DEVICE} {per_interval}',
                )
            ],
            (0, 17, 24, 9),
        ),
    ]
    variables = [
        query_variable("school", "School", 'SHOW TAG VALUES FROM "device" WITH KEY = "school"'),
        query_variable(
            "device",
            "Laptop",
            'SHOW TAG VALUES FROM "device" WITH KEY = "device" WHERE "school" = \'$school\'',
        ),
    ]
    return dashboard(
        "lordi-device",
        "Lordi - Device",
        "One laptop: battery health, cycles, charging and Wi-Fi over time.",
        variables,
        panels,
    )
