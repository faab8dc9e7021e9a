"""The Fleet dashboard: reads only per-school summaries (collector/summaries.py),
so its cost does not grow with the number of laptops."""

# ruff: noqa: S608 - InfluxQL text built from constants at generation time, no input

from __future__ import annotations

from dashboards.panels import Json, dashboard, panel, query_variable, target

SCHOOLS = '"school" =~ /^$school$/'
BANDS = (
    'last("health_lt60") AS "lt60", last("health_60_80") AS "b60_80", last("health_ge80") AS "ge80"'
)


def forecast_panel() -> Json:
    """Batteries predicted to cross 80 % / 60 % health in each term, summed over the
    selected schools. Reads the collector's `forecast` points (tags school, term;
    integer fields devices_below_80, devices_below_60): at every forecast run it
    writes one point per school and term, zeros included, so the last point of
    each (school, term) is the current forecast."""
    latest = (
        'SELECT last("devices_below_80") AS "b80", last("devices_below_60") AS "b60" '
        f'FROM "forecast" WHERE $timeFilter AND {SCHOOLS} GROUP BY "school", "term"'
    )
    return panel(
        "barchart",
        "Forecast battery replacements per term",
        [
            target(
                "A",
                'SELECT sum("b80") AS "devices_below_80", sum("b60") AS "devices_below_60" '
                f'FROM ({latest}) GROUP BY "term"',
                fmt="table",
            )
        ],
        (0, 28, 24, 9),
        options={"xField": "term"},
        description=(
            "Batteries whose fitted health line crosses 80 % (watch) or 60 % (replace) "
            "during each term, or in the holiday before it; 'before' = already crossed. "
            "From the latest forecast of each school in the time range."
        ),
    )


def fleet() -> Json:
    per_school = f'FROM "school_summary" WHERE $timeFilter AND {SCHOOLS}'
    panels = [
        panel(
            "timeseries",
            "Devices reporting per school",
            [
                target(
                    "A",
                    f'SELECT max("devices_reporting") AS "devices" {per_school} '
                    'GROUP BY time($__interval), "school" fill(none)',
                    alias="$tag_school",
                )
            ],
            (0, 0, 12, 8),
            description="Distinct laptops with a report in each summary interval (1 h).",
        ),
        panel(
            "stat",
            "Devices to act on (health < 60 %)",
            [
                target(
                    "A",
                    'SELECT sum("lt60") AS "to_replace", sum("b60_80") AS "to_watch" '
                    f'FROM (SELECT {BANDS} {per_school} GROUP BY "school")',
                    fmt="table",
                )
            ],
            (12, 0, 12, 8),
            description="Last known health of each school's laptops, summed over schools.",
        ),
        panel(
            "barchart",
            "Battery health bands per school",
            [
                target(
                    "A",
                    f'SELECT {BANDS}, last("health_p50") AS "p50", '
                    f'last("devices_known") AS "known" {per_school} GROUP BY "school"',
                    fmt="table",
                )
            ],
            (0, 8, 12, 10),
            options={"stacking": "normal", "xField": "school"},
            description="Laptops per health band (<60 replace, 60-80 watch, >=80 good).",
        ),
        panel(
            "barchart",
            "Battery health bands per model",
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
            (12, 8, 12, 10),
            options={"stacking": "normal", "xField": "model"},
        ),
        panel(
            "table",
            "Schools with laptops to replace",
            [
                target(
                    "A",
                    f'SELECT "lt60" AS "to_replace", "known" FROM (SELECT '
                    f'last("health_lt60") AS "lt60", last("devices_known") AS "known" '
                    f'{per_school} GROUP BY "school") WHERE "lt60" > 0 GROUP BY "school"',
                    fmt="table",
                )
            ],
            (0, 18, 8, 10),
        ),
        panel(
            "timeseries",
            "Wi-Fi signal on the school network per school",
            [
                target(
                    "A",
                    f'SELECT mean("rssi_school_mean_dbm") AS "rssi" {per_school} '
                    'GROUP BY time($__interval), "school" fill(none)',
                    alias="$tag_school",
                )
            ],
            (8, 18, 8, 10),
            unit="dBm",
        ),
        panel(
            "timeseries",
            "Wi-Fi disconnects per school",
            [
                target(
                    "A",
                    f'SELECT sum("disconnects") AS "disconnects" {per_school} '
                    'GROUP BY time($__interval), "school" fill(none)',
                    alias="$tag_school",
                )
            ],
            (16, 18, 8, 10),
        ),
        forecast_panel(),
    ]
    # The school list comes from the summaries too: `SHOW TAG VALUES FROM device`
    # walks every device's series.
    school = query_variable(
        "school", "School", 'SHOW TAG VALUES FROM "school_summary" WITH KEY = "school"', True
    )
    return dashboard(
        "lordi-fleet",
        "Lordi - Fleet",
        "Battery and Wi-Fi health of the whole fleet, from per-school summaries.",
        [school],
        panels,
    )
