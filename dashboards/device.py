"""The Device dashboard: the raw series of one laptop over time. InfluxQL and
MetricsQL side by side (dashboards/flavours.py)."""

# ruff: noqa: S608 - InfluxQL text built from constants at generation time, no input

from __future__ import annotations

from dashboards.flavours import Board, Panel, Variable
from dashboards.metricsql import BUCKET, Query, agg, latest, mean, over, sel
from dashboards.panels import target
from dashboards.school import ONE_DEVICE, SCHOOL_VARIABLE, VM_DEVICE


def battery(field: str) -> str:
    return sel(f"battery_{field}", VM_DEVICE)


def wifi(field: str) -> str:
    return sel(f"wifi_{field}", VM_DEVICE)


def device_board() -> Board:
    influx_battery = f'FROM "battery" WHERE $timeFilter AND {ONE_DEVICE}'
    per_interval = "GROUP BY time($__interval) fill(none)"
    panels = [
        Panel(
            "timeseries",
            "Battery health",
            (0, 0, 12, 8),
            [
                target(
                    "A",
                    f'SELECT mean("health_pct") AS "health" {influx_battery} '
                    'GROUP BY time($__interval), "battery" fill(none)',
                    alias="$tag_battery",
                )
            ],
            [Query("A", mean(battery("health_pct"), BUCKET, "battery"), "{{battery}}")],
            unit="percent",
        ),
        Panel(
            "timeseries",
            "Charge cycles",
            (12, 0, 12, 8),
            [target("A", f'SELECT max("cycle_count") AS "cycles" {influx_battery} {per_interval}')],
            [Query("A", agg("max", "", over("max", battery("cycle_count"), BUCKET)), "cycles")],
        ),
        Panel(
            "timeseries",
            "Charging pattern",
            (0, 8, 24, 9),
            [
                target(
                    "A",
                    'SELECT mean("percent") AS "percent", last("status_code") AS "status_code", '
                    f'max("plugged") AS "plugged" {influx_battery} {per_interval}',
                )
            ],
            [
                Query("A", mean(battery("percent"), BUCKET), "percent"),
                Query("B", latest(battery("status_code"), BUCKET, ""), "status_code"),
                Query("C", agg("max", "", over("max", battery("plugged"), BUCKET)), "plugged"),
            ],
            description="status_code: 0 unknown, 1 charging, 2 discharging, 3 full, "
            "4 not charging.",
            vm_note="With two batteries reporting together, the higher status_code.",
        ),
        Panel(
            "timeseries",
            "Wi-Fi timeline",
            (0, 17, 24, 9),
            [
                target(
                    "A",
                    'SELECT mean("rssi_dbm") AS "rssi_dbm", min("rssi_min_dbm") AS "rssi_min_dbm", '
                    'sum("disconnects") AS "disconnects", min("connected") AS "connected" '
                    f'FROM "wifi" WHERE $timeFilter AND {ONE_DEVICE} {per_interval}',
                )
            ],
            [
                Query("A", mean(wifi("rssi_dbm"), BUCKET), "rssi_dbm"),
                Query(
                    "B", agg("min", "", over("min", wifi("rssi_min_dbm"), BUCKET)), "rssi_min_dbm"
                ),
                Query("C", agg("sum", "", over("sum", wifi("disconnects"), BUCKET)), "disconnects"),
                Query("D", agg("min", "", over("min", wifi("connected"), BUCKET)), "connected"),
            ],
        ),
    ]
    variables = [
        SCHOOL_VARIABLE,
        Variable(
            "device",
            "Laptop",
            'SHOW TAG VALUES FROM "device" WITH KEY = "device" WHERE "school" = \'$school\'',
            'label_values(device_report{school="$school"}, device)',
        ),
    ]
    return Board(
        "device",
        "Lordi - Device",
        "One laptop: battery health, cycles, charging and Wi-Fi over time.",
        variables,
        panels,
    )
