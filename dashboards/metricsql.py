"""MetricsQL for the VictoriaMetrics flavour of the Fleet, School and Device dashboards.

How the collector's line protocol lands in VictoriaMetrics: one series per measurement
and field, named `<measurement>_<field>`, the tags as labels:
`battery_health_pct{school, device, battery, model}`, `wifi_rssi_dbm{school, device,
bssid_hash}`, `device_report{school, device}`, `school_summary_health_lt60{school}`,
`school_model_summary_health_lt60{school, model}`, `forecast_devices_below_80{school,
term}`, `alert_open{alert_key, category, device, rule, school, severity}`... A
collector writing to VictoriaMetrics has `[store] string_fields = false`: no string
field is stored, and the dashboards read numbers only.

Windows. InfluxQL's `GROUP BY time($__interval)` puts the points of [t, t + interval)
in the bucket labelled t. A MetricsQL rollup `f(m[i])` evaluated at t reads (t - i, t];
`f(m[i] offset 1ms-i)` reads [t, t + i) (timestamps are in milliseconds), so the time
series panels bucket points as the InfluxQL flavour does (`BUCKET`). Tables and stats
are instant queries at the end of the range over `[$__range]`, i.e. (from, to].

Several series per group (a laptop's two batteries, a battery whose model tag changed,
a laptop's access points): `mean` averages every point of the group as InfluxQL's
`mean()` does, `latest` takes the value of the series whose last point is the newest,
as InfluxQL's `last()` does across series.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

Json = dict[str, Any]

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
BUCKET = "[$__interval] offset 1ms-$__interval"  # [t, t + $__interval), labelled t
RANGE = "[$__range]"  # the dashboard's (or the panel's) time range, at its end
TIMEZONE = "Europe/Paris"
# The first class of the day is at 08:00 Paris time. A school day, for the panels that
# show one figure per day, runs from half an hour before it (07:30, so that the
# reports taken on arrival belong to the day) to 07:30 the next day. One definition
# for both flavours: InfluxQL groups by `SCHOOL_DAY` in `TIMEZONE`.
FIRST_CLASS_S = 8 * 3600  # 08:00 local time, in seconds after midnight
DAY_START_S = FIRST_CLASS_S - 30 * 60  # 07:30
SCHOOL_DAY = f"time(1d, {DAY_START_S // 60}m)"  # InfluxQL: days from 07:30 (450m)
INFLUX_TZ = f"tz('{TIMEZONE}')"
DAY = "[1d] offset 1ms-1d"  # inside `per_school_day`: the day [s, s + 1d) from 07:30


@dataclass(frozen=True)
class Query:
    """A MetricsQL target. `column` names its value in a table panel (Grafana calls it
    "Value #<ref>"; the panel's organize transformation renames it); `unit` is that
    column's unit. `interval` is the target's minimum step ("Min step")."""

    ref: str
    expr: str
    legend: str = ""
    instant: bool = False
    table: bool = False  # format "table" (instant queries only)
    column: str = ""
    unit: str = ""
    interval: str = ""

    def target(self) -> Json:
        doc: Json = {
            "datasource": DATASOURCE,
            "editorMode": "code",
            "expr": self.expr,
            "instant": self.instant or self.table,
            "range": not (self.instant or self.table),
            "refId": self.ref,
        }
        if self.table:
            doc["format"] = "table"
        if self.legend:
            doc["legendFormat"] = self.legend
        if self.interval:
            doc["interval"] = self.interval
        return doc


def table(ref: str, expr: str, column: str, unit: str = "") -> Query:
    """An instant query whose value is the column `column` of a table panel."""
    return Query(ref, expr, table=True, column=column, unit=unit)


def sel(metric: str, match: str) -> str:
    return f"{metric}{{{match}}}"


def over(fn: str, series: str, window: str) -> str:
    """`<fn>_over_time(series<window>)`: fn in last, tlast, first, min, max, sum, count."""
    return f"{fn}_over_time({series}{window})"


def agg(fn: str, by: str, expr: str) -> str:
    return f"{fn} by ({by}) ({expr})" if by else f"{fn}({expr})"


def mean(series: str, window: str, by: str = "") -> str:
    """The mean of every point in the window, whichever series of the group holds it
    (InfluxQL's mean(); an average of per-series averages would weigh them equally)."""
    total = agg("sum", by, over("sum", series, window))
    return f"{total} / {agg('sum', by, over('count', series, window))}"


def latest(series: str, window: str, by: str, pick: str = "max") -> str:
    """Per `by` group, the last value of the series whose last point is the group's
    newest (InfluxQL's last() across series); several series with that same newest
    time (a laptop's two batteries report together) are combined by `pick`."""
    when = over("tlast", series, window)
    newest = f"{when} == on ({by}) group_left {agg('max', by, when)}"
    return agg(pick, by, f"{over('last', series, window)} and ({newest})")


def per_school_day(expr: str) -> str:
    """`expr`, whose rollups read the window `DAY`, evaluated over the school day whose
    07:30 falls in (t, t + 1d] of each step t: with a 1-day step aligned on midnight
    (Grafana aligns steps on the dashboard's time zone), the day of t.

    Inside: at every half hour s (a subquery), `expr` over [s, s + 1d), kept only where
    s is 07:30 local time (timezone_offset follows summer time). `expr` must bind
    tighter than `and` (parenthesise an `or` or `unless`)."""
    local = f'(time() + timezone_offset("{TIMEZONE}")) % 86400 == {DAY_START_S}'
    return f"last_over_time(({expr} and on () ({local}))[1d:30m] offset -1d)"


def first_of_day(series: str) -> str:
    """Per series, the first point at or after 07:30 Paris time in the 24 h from then
    (`per_school_day`)."""
    return per_school_day(f"first_over_time({series}{DAY})")
