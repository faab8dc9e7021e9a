"""Reachability on the school network ("the school's view", issue 15): panels of the
School dashboard (one school) and of the Fleet dashboard (per school), in both
flavours, from the raw `connectivity` series (docs/contract.md: tags school, device,
bssid_hash; `school_online_s`, `school_unreachable_s`, `connect_delay_s`, `broker_ok`
0/1, `failure_code`).

Why raw series and not the collector's per-school summaries (docs/grafana.md, "Wi-Fi
access"): the laptops that cannot reach the broker are exactly those whose reports
arrive late, spooled, hours after the morning they describe. A summary interval is
written once, ten minutes after its end, and a late sample no longer changes it; a
query over the stored points counts every point whatever its arrival order or delay.

Per laptop and school day (07:30 to 07:30 Paris time, `SCHOOL_DAY`, the first class at
08:00):
- on the school network that day: at least one `connectivity` point carrying
  `school_online_s` (sent with every block by agents that measure reachability);
- its wait: `connect_delay_s` of its first point of the day that carries one (the first
  connection of the day: from joining the school Wi-Fi to the broker's first
  acknowledgement, whichever access point);
- within N minutes: unless its wait exceeded N minutes, or it never reached the broker
  that day (its reports that day all say `broker_ok` = 0). A laptop already connected
  when the day began has no wait: within.
"""

# ruff: noqa: S608 - InfluxQL text built from constants at generation time, no input

from __future__ import annotations

from dataclasses import dataclass

from collector.lineproto import FAILURE_CODES
from dashboards.flavours import Panel
from dashboards.metricsql import (
    DAY,
    INFLUX_TZ,
    RANGE,
    SCHOOL_DAY,
    Query,
    agg,
    over,
    per_school_day,
    sel,
    table,
)
from dashboards.panels import target

WITHIN_MINUTES = (5, 15)
CAUSES = tuple(FAILURE_CODES)  # dns, connect, timeout, tls, refused, closed
MEASUREMENT = "connectivity"
DEVICE = '"device"'
REFS = "ABCDEFGH"


@dataclass(frozen=True)
class Scope:
    """Which schools a dashboard reads, and whether its figures are per school."""

    influx: str  # InfluxQL condition: one school or the selected ones
    vm: str  # MetricsQL label matchers for the same
    per_school: bool  # Fleet: one figure per school; School: one for the school

    @property
    def by(self) -> str:
        return "school" if self.per_school else ""

    @property
    def laptop(self) -> str:
        return "school, device" if self.per_school else "device"

    def where(self) -> str:
        return f'FROM "{MEASUREMENT}" WHERE $timeFilter AND {self.influx}'

    def group(self, *keys: str) -> str:
        """InfluxQL GROUP BY `keys` (time first), then the school when per school."""
        tags = ['"school"'] if self.per_school else []
        return ", ".join([*keys, *tags])

    def series(self, field: str, extra: str = "") -> str:
        match = f"{self.vm},{extra}" if extra else self.vm
        return sel(f"{MEASUREMENT}_{field}", match)


# --- Per school day: share of laptops connected within N minutes, median wait --------


def _per_laptop_day(scope: Scope) -> str:
    return f"{scope.where()} GROUP BY {scope.group(SCHOOL_DAY, DEVICE)}"


def within_influxql(scope: Scope, minutes: tuple[int, ...]) -> str:
    """One row per school day (per school): `within_<N>_min` = 100 x (laptops on the
    network - laptops whose first wait exceeded N minutes - laptops that never reached
    the broker) / laptops on the network. The three sets are counted apart: each
    laptop of the day gives a row `n` with zeros, each late one a 1 in `late<N>`, each
    unconnected one a 1 in `never`, and sums count them (0, not nothing, when none).

    Each middle query reads one field of its inner query: InfluxDB 1.6.7 pairs the
    fields of a multi-aggregate subquery wrongly when the outer query does not group
    by laptop (measured: a laptop's `max(broker_ok)` beside another's wait)."""
    per_day = f"{_per_laptop_day(scope)} fill(none) {INFLUX_TZ}"

    def inner(aggregate: str, name: str) -> str:
        return f'(SELECT {aggregate} AS "{name}" {per_day})'

    zeros = ", ".join(f'0 * "n" AS "{name}"' for name in (*(f"late{m}" for m in minutes), "never"))
    laptops = inner('count("school_online_s")', "n")
    sources = [f'(SELECT "n", {zeros} FROM {laptops})']
    wait = inner('first("connect_delay_s")', "wait")
    sources += [
        f'(SELECT "wait" / "wait" AS "late{m}" FROM {wait} WHERE "wait" > {m * 60})'
        for m in minutes
    ]
    ok = inner('max("broker_ok")', "ok")
    sources.append(f'(SELECT "ok" + 1 AS "never" FROM {ok} WHERE "ok" = 0)')
    shares = ", ".join(
        f'100 * (count("n") - sum("late{m}") - sum("never")) / count("n") AS "within_{m}_min"'
        for m in minutes
    )
    return (
        f"SELECT {shares} FROM {', '.join(sources)} WHERE $timeFilter "
        f"GROUP BY {scope.group(SCHOOL_DAY)} fill(none) {INFLUX_TZ}"
    )


def median_wait_influxql(scope: Scope) -> str:
    first = (
        f'(SELECT first("connect_delay_s") AS "wait" {_per_laptop_day(scope)} '
        f"fill(none) {INFLUX_TZ})"
    )
    return (
        f'SELECT median("wait") AS "median_wait_s" FROM {first} WHERE $timeFilter '
        f"GROUP BY {scope.group(SCHOOL_DAY)} fill(none) {INFLUX_TZ}"
    )


def _laptop_wait(scope: Scope) -> str:
    """Per laptop: `connect_delay_s` of its first point in the day, whichever access
    point's series holds it (the series whose first point is the laptop's earliest)."""
    delay = scope.series("connect_delay_s")
    when = over("tfirst", delay, DAY)
    earliest = f"{when} == on ({scope.laptop}) group_left {agg('min', scope.laptop, when)}"
    return agg("min", scope.laptop, f"{over('first', delay, DAY)} and ({earliest})")


def within_metricsql(scope: Scope, m: int) -> str:
    """The InfluxQL flavour's share: the laptops of the day, unless their first wait
    exceeded `m` minutes or none of their reports that day was connected."""
    laptops = agg("max", scope.laptop, over("count", scope.series("school_online_s"), DAY))
    never = f"{agg('max', scope.laptop, over('max', scope.series('broker_ok'), DAY))} == 0"
    late = f"{_laptop_wait(scope)} > {m * 60}"
    within = f"{laptops} unless on ({scope.laptop}) (({late}) or ({never}))"
    count = agg("count", scope.by, laptops)
    return per_school_day(f"100 * ({agg('count', scope.by, within)} or 0 * {count}) / {count}")


def median_wait_metricsql(scope: Scope) -> str:
    return per_school_day(agg("quantile", scope.by, f"0.5, {_laptop_wait(scope)}"))


DAY_NOTE = (
    "Here each bar stands at the midnight starting its day; a day runs 24 h from 07:30 "
    "(23 or 25 h on the nights the clocks change in the InfluxDB flavour)."
)


def _definition(minutes: str) -> str:
    return (
        "Per school day (07:30 to 07:30 Paris time; first class at 08:00): among the "
        "laptops on the school network that day, the share whose first connection of the "
        f"day reached the broker within {minutes} of joining the Wi-Fi (connect_delay_s), "
        "or that were connected already; a laptop on the network that never reached the "
        "broker that day counts as not within. Late (spooled) reports count when they "
        "arrive."
    )


def school_day_panels(scope: Scope, y: int) -> list[Panel]:
    """School: both shares in one panel, and the median wait. Fleet: one panel per
    share and the median, one series per school."""
    median = Panel(
        "timeseries",
        "Median morning connection time per school" if scope.per_school
        else "Median morning connection time",
        (16, y, 8, 8) if scope.per_school else (12, y, 12, 8),
        [target("A", median_wait_influxql(scope), alias="$tag_school" if scope.per_school else "")],
        [Query("A", median_wait_metricsql(scope), "{{school}}" if scope.per_school
               else "median_wait_s", interval="1d")],
        unit="s",
        description=(
            "Per school day (07:30 to 07:30 Paris time): the median, over the laptops that "
            "had to connect that day, of the wait of their first connection (connect_delay_s: "
            "from joining the school Wi-Fi to the broker's first acknowledgement)."
        ),
        vm_note=DAY_NOTE,
        custom={"drawStyle": "bars"},
    )  # fmt: skip
    if not scope.per_school:
        shares = Panel(
            "timeseries",
            "Laptops connected within 5 / 15 min",
            (0, y, 12, 8),
            [target("A", within_influxql(scope, WITHIN_MINUTES))],
            [
                Query(ref, within_metricsql(scope, m), f"within_{m}_min", interval="1d")
                for ref, m in zip(REFS, WITHIN_MINUTES, strict=False)
            ],
            unit="percent",
            description=_definition("5 min (15 min)"),
            vm_note=DAY_NOTE,
            custom={"drawStyle": "bars"},
        )  # fmt: skip
        return [shares, median]
    per_school = [
        Panel(
            "timeseries",
            f"Laptops connected within {m} min per school",
            (8 * i, y, 8, 8),
            [target("A", within_influxql(scope, (m,)), alias="$tag_school")],
            [Query("A", within_metricsql(scope, m), "{{school}}", interval="1d")],
            unit="percent",
            description=_definition(f"{m} min"),
            vm_note=DAY_NOTE,
            custom={"drawStyle": "bars"},
        )
        for i, m in enumerate(WITHIN_MINUTES)
    ]
    return [*per_school, median]


# --- Time online vs cut off; failure causes ---------------------------------------------

TIME_NOTE = (
    "school_online_s and school_unreachable_s: seconds associated with the school "
    "Wi-Fi with / without a connection to the broker, as the laptops count them between "
    "reports (a report's seconds are those before it)."
)


def time_columns(scope: Scope, by: str, extra: str = "") -> list[Query]:
    keys = ", ".join(k for k in (by, scope.by) if k)
    return [
        table(ref, agg("sum", keys, over("sum", scope.series(field, extra), RANGE)), column)
        for ref, field, column in (
            ("A", "school_online_s", "online_s"),
            ("B", "school_unreachable_s", "unreachable_s"),
        )
    ]


TIME_FIELDS = 'sum("school_online_s") AS "online_s", sum("school_unreachable_s") AS "unreachable_s"'


def access_point_time_panel(scope: Scope, grid: tuple[int, int, int, int]) -> Panel:
    return Panel(
        "table",
        "Time online vs cut off per access point",
        grid,
        [
            target(
                "A",
                f"SELECT {TIME_FIELDS} {scope.where()} AND \"bssid_hash\" != '' "
                'GROUP BY "bssid_hash"',
                fmt="table",
            )
        ],
        time_columns(scope, "bssid_hash", 'bssid_hash!=""'),
        unit="s",
        description=f"{TIME_NOTE} Per access point: the one of the report's Wi-Fi reading.",
    )


def school_time_panel(scope: Scope, grid: tuple[int, int, int, int]) -> Panel:
    if scope.per_school:
        return Panel(
            "table",
            "Time online vs cut off per school",
            grid,
            [target("A", f'SELECT {TIME_FIELDS} {scope.where()} GROUP BY "school"', fmt="table")],
            time_columns(scope, ""),
            unit="s",
            description=TIME_NOTE,
        )
    return Panel(
        "stat",
        "Time online vs cut off",
        grid,
        [target("A", f"SELECT {TIME_FIELDS} {scope.where()}")],
        [Query(q.ref, q.expr, q.column, instant=True) for q in time_columns(scope, "")],
        unit="s",
        description=TIME_NOTE,
    )


def failures_influxql(scope: Scope) -> str:
    """Per cause, the reports naming it (`failure_code`: the cause of the last failed
    attempt since the previous report). A row of zeros first, so that a cause nobody
    reported shows 0."""
    group = ' GROUP BY "school"' if scope.per_school else ""
    zeros = ", ".join(f'0 * count("failure_code") AS "{c}"' for c in CAUSES)
    sources = [f"(SELECT {zeros} {scope.where()}{group})"]
    sources += [
        f'(SELECT "failure_code" / {code} AS "{cause}" {scope.where()} AND "failure_code" = {code})'
        for cause, code in FAILURE_CODES.items()
    ]
    counts = ", ".join(f'sum("{c}") AS "{c}"' for c in CAUSES)
    return f"SELECT {counts} FROM {', '.join(sources)} WHERE $timeFilter{group}"


def failures_panel(scope: Scope, grid: tuple[int, int, int, int]) -> Panel:
    def count(code: int) -> str:
        return agg(
            "sum", scope.by, f"count_eq_over_time({scope.series('failure_code')}{RANGE}, {code})"
        )

    description = (
        "Reports naming each cause of the last failed connection attempt since the "
        "previous report: dns (name not resolved), connect (TCP refused or no route), "
        "timeout, tls (handshake failed: captive portal, intercepting proxy), refused "
        "(by the broker), closed (by the network). Evidence for the network contractor."
    )
    if scope.per_school:
        return Panel(
            "table",
            "Connection failures by cause per school",
            grid,
            [target("A", failures_influxql(scope), fmt="table")],
            [
                table(ref, count(code), cause)
                for ref, (cause, code) in zip(REFS, FAILURE_CODES.items(), strict=False)
            ],
            description=description,
        )
    return Panel(
        "stat",
        "Connection failures by cause",
        grid,
        [target("A", failures_influxql(scope))],
        [
            Query(ref, count(code), cause, instant=True)
            for ref, (cause, code) in zip(REFS, FAILURE_CODES.items(), strict=False)
        ],
        description=description,
    )


def reach_panels(scope: Scope, y: int) -> list[Panel]:
    """The Wi-Fi access rows: per school day at `y`, time and failures under it."""
    below = y + 8
    if scope.per_school:
        times = [school_time_panel(scope, (0, below, 12, 9))]
        failures = failures_panel(scope, (12, below, 12, 9))
    else:
        times = [
            access_point_time_panel(scope, (0, below, 12, 9)),
            school_time_panel(scope, (12, below, 6, 9)),
        ]
        failures = failures_panel(scope, (18, below, 6, 9))
    return [*school_day_panels(scope, y), *times, failures]
