"""The Fleet dashboard: reads per-school summaries (collector/summaries.py), so its
cost does not grow with the number of laptops, except its Wi-Fi access panels
(dashboards/reach.py), which read the raw `connectivity` series: late reports never
reach a summary (docs/grafana.md, "Wi-Fi access"). InfluxQL and MetricsQL side
by side (dashboards/flavours.py)."""

# ruff: noqa: S608 - InfluxQL text built from constants at generation time, no input

from __future__ import annotations

from dashboards.flavours import Board, Panel, Variable
from dashboards.metricsql import BUCKET, RANGE, Query, agg, mean, over, sel, table
from dashboards.panels import target
from dashboards.reach import Scope, reach_panels

SCHOOLS = '"school" =~ /^$school$/'
BANDS = (
    'last("health_lt60") AS "lt60", last("health_60_80") AS "b60_80", last("health_ge80") AS "ge80"'
)
# MetricsQL: the selected schools (Grafana writes a multi-value selection as (A|B)).
VM_SCHOOLS = 'school=~"$school"'


def summary(field: str) -> str:
    return sel(f"school_summary_{field}", VM_SCHOOLS)


def last_per(field: str, by: str, measurement: str = "school_summary") -> str:
    """The last point of each series in the range (one series per school, or per
    school and model, or per school and term), summed `by`."""
    return agg("sum", by, over("last", sel(f"{measurement}_{field}", VM_SCHOOLS), RANGE))


def forecast_panel() -> Panel:
    """Batteries predicted to cross 80 % / 60 % health in each term, summed over the
    selected schools. Reads the collector's `forecast` points (tags school, term;
    integer fields devices_below_80, devices_below_60): at every forecast run it
    writes one point per school and term, zeros included, so the last point of
    each (school, term) is the current forecast."""
    latest = (
        'SELECT last("devices_below_80") AS "b80", last("devices_below_60") AS "b60" '
        f'FROM "forecast" WHERE $timeFilter AND {SCHOOLS} GROUP BY "school", "term"'
    )
    return Panel(
        "barchart",
        "Forecast battery replacements per term",
        (0, 28, 24, 9),
        [
            target(
                "A",
                'SELECT sum("b80") AS "devices_below_80", sum("b60") AS "devices_below_60" '
                f'FROM ({latest}) GROUP BY "term"',
                fmt="table",
            )
        ],
        [
            table("A", last_per("devices_below_80", "term", "forecast"), "devices_below_80"),
            table("B", last_per("devices_below_60", "term", "forecast"), "devices_below_60"),
        ],
        options={"xField": "term"},
        description=(
            "Batteries whose fitted health line crosses 80 % (watch) or 60 % (replace) "
            "during each term, or in the holiday before it; 'before' = already crossed. "
            "From the latest forecast of each school in the time range."
        ),
    )


def band_panels() -> list[Panel]:
    per_school = f'FROM "school_summary" WHERE $timeFilter AND {SCHOOLS}'
    return [
        Panel(
            "stat",
            "Devices to act on (health < 60 %)",
            (12, 0, 12, 8),
            [
                target(
                    "A",
                    'SELECT sum("lt60") AS "to_replace", sum("b60_80") AS "to_watch" '
                    f'FROM (SELECT {BANDS} {per_school} GROUP BY "school")',
                    fmt="table",
                )
            ],
            [
                Query("A", last_per("health_lt60", ""), "to_replace", instant=True),
                Query("B", last_per("health_60_80", ""), "to_watch", instant=True),
            ],
            description="Last known health of each school's laptops, summed over schools.",
        ),
        Panel(
            "barchart",
            "Battery health bands per school",
            (0, 8, 12, 10),
            [
                target(
                    "A",
                    f'SELECT {BANDS}, last("health_p50") AS "p50", '
                    f'last("devices_known") AS "known" {per_school} GROUP BY "school"',
                    fmt="table",
                )
            ],
            [
                table("A", last_per("health_lt60", "school"), "lt60"),
                table("B", last_per("health_60_80", "school"), "b60_80"),
                table("C", last_per("health_ge80", "school"), "ge80"),
                table("D", last_per("health_p50", "school"), "p50"),
                table("E", last_per("devices_known", "school"), "known"),
            ],
            options={"stacking": "normal", "xField": "school"},
            description="Laptops per health band (<60 replace, 60-80 watch, >=80 good).",
        ),
        Panel(
            "barchart",
            "Battery health bands per model",
            (12, 8, 12, 10),
            [
                target(
                    "A",
                    'SELECT sum("lt60") AS "lt60", sum("b60_80") AS "b60_80", '
                    'sum("ge80") AS "ge80" FROM (SELECT '
                    f'{BANDS} FROM "school_model_summary" WHERE $timeFilter AND {SCHOOLS} '
                    'GROUP BY "school", "model") GROUP BY "model"',
                    fmt="table",
                )
            ],
            [
                table(ref, last_per(field, "model", "school_model_summary"), column)
                for ref, field, column in (
                    ("A", "health_lt60", "lt60"),
                    ("B", "health_60_80", "b60_80"),
                    ("C", "health_ge80", "ge80"),
                )
            ],
            options={"stacking": "normal", "xField": "model"},
        ),
        Panel(
            "table",
            "Schools with laptops to replace",
            (0, 18, 8, 10),
            [
                target(
                    "A",
                    f'SELECT "lt60" AS "to_replace", "known" FROM (SELECT '
                    f'last("health_lt60") AS "lt60", last("devices_known") AS "known" '
                    f'{per_school} GROUP BY "school") WHERE "lt60" > 0 GROUP BY "school"',
                    fmt="table",
                )
            ],
            [
                table("A", f"{last_per('health_lt60', 'school')} > 0", "to_replace"),
                table(
                    "B",
                    f"{last_per('devices_known', 'school')} "
                    f"and ({last_per('health_lt60', 'school')} > 0)",
                    "known",
                ),
            ],
        ),
    ]


def timeline(
    title: str,
    grid: tuple[int, int, int, int],
    influxql: str,
    metricsql: str,
    *,
    unit: str = "",
    description: str = "",
) -> Panel:
    """A per-school time series over the summary points of each $__interval."""
    per_school = f'FROM "school_summary" WHERE $timeFilter AND {SCHOOLS}'
    return Panel(
        "timeseries",
        title,
        grid,
        [
            target(
                "A",
                f'{influxql} {per_school} GROUP BY time($__interval), "school" fill(none)',
                alias="$tag_school",
            )
        ],
        [Query("A", metricsql, "{{school}}")],
        unit=unit,
        description=description,
    )


def fleet_board() -> Board:
    panels = [
        timeline(
            "Devices reporting per school",
            (0, 0, 12, 8),
            'SELECT max("devices_reporting") AS "devices"',
            agg("max", "school", over("max", summary("devices_reporting"), BUCKET)),
            description="Distinct laptops with a report in each summary interval (1 h).",
        ),
        *band_panels(),
        timeline(
            "Wi-Fi signal on the school network per school",
            (8, 18, 8, 10),
            'SELECT mean("rssi_school_mean_dbm") AS "rssi"',
            mean(summary("rssi_school_mean_dbm"), BUCKET, "school"),
            unit="dBm",
        ),
        timeline(
            "Wi-Fi disconnects per school",
            (16, 18, 8, 10),
            'SELECT sum("disconnects") AS "disconnects"',
            agg("sum", "school", over("sum", summary("disconnects"), BUCKET)),
        ),
        forecast_panel(),
        # Wi-Fi access: the raw `connectivity` series of the selected schools, the only
        # device-level reads of this dashboard (dashboards/reach.py, docs/grafana.md).
        *reach_panels(Scope(SCHOOLS, VM_SCHOOLS, per_school=True), 37),
    ]
    # The school list comes from the summaries too: `SHOW TAG VALUES FROM device`
    # walks every device's series.
    school = Variable(
        "school",
        "School",
        'SHOW TAG VALUES FROM "school_summary" WITH KEY = "school"',
        "label_values(school_summary_devices_reporting, school)",
        multi=True,
    )
    return Board(
        "fleet",
        "Lordi - Fleet",
        "Battery and Wi-Fi health of the whole fleet, from per-school summaries.",
        [school],
        panels,
    )
