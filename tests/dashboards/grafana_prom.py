"""What Grafana 11's Prometheus data source does with a panel's MetricsQL targets,
done here by hand against a real VictoriaMetrics (no Grafana runs here).

- Template variables are replaced first: `$school` by the value, a multi-value
  selection by `(A|B)` (Grafana's interpolateQueryExpr; the values here need no
  regex escaping).
- Macros: `$__interval` is the panel's interval, at least the target's "Min step"
  (`interval`); `$__range` the time range in whole seconds (`<n>s`); a panel with a
  relative time of its own (`timeFrom`, e.g. "90d") has the range now-90d..now.
- Range queries run with step = that interval, start and end rounded down to a
  multiple of the step in the dashboard's time zone (Grafana's alignRange with
  utcOffsetSec, the zone's offset at the range's end).
- Instant queries run at the range's end. A table-format instant query gives one
  frame per query, with a `Time` column, one column per label and the value in
  "Value #<refId>" ("Value" when the panel has one table query: Grafana's
  transformDFToTable); the panel's `merge` transformation joins rows with the same
  labels, `organize` renames and drops columns as its options say.
"""

from __future__ import annotations

import re
import urllib.error
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from lordi import vm

UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
LEGEND = re.compile(r"\{\{\s*(\w+)\s*\}\}")
LABEL_VALUES = re.compile(r"^label_values\((?P<match>.+),\s*(?P<label>\w+)\)$")


def seconds(duration: str) -> float:
    """ "1h" -> 3600; "90d" -> 7776000 (Grafana's interval strings, one unit)."""
    found = re.fullmatch(r"(\d+)(ms|s|m|h|d)", duration)
    assert found, f"not a Grafana interval: {duration!r}"
    return int(found[1]) * UNITS[found[2]]


@dataclass(frozen=True)
class View:
    """What the dashboard shows: its time range (epoch seconds), the selected
    variables, the panels' interval and the dashboard's time zone."""

    start_s: float
    end_s: float
    variables: dict[str, str]
    interval: str = "1h"
    timezone: str = "Europe/Paris"

    def for_panel(self, panel: dict[str, Any], now_s: float) -> View:
        if "timeFrom" not in panel:
            return self
        return View(now_s - seconds(panel["timeFrom"]), now_s, self.variables, self.interval)

    def expand(self, text: str, interval_s: float) -> str:
        for name, value in self.variables.items():
            text = text.replace(f"${name}", value)
        return text.replace("$__interval", _duration(interval_s)).replace(
            "$__range", f"{round(self.end_s - self.start_s)}s"
        )

    def aligned(self, step_s: float) -> tuple[float, float]:
        end = datetime.fromtimestamp(self.end_s, UTC).astimezone(ZoneInfo(self.timezone))
        offset = end.utcoffset()
        assert offset is not None
        start, stop = (
            (t + offset.total_seconds()) // step_s * step_s - offset.total_seconds()
            for t in (self.start_s, self.end_s)
        )
        return start, stop


def _duration(s: float) -> str:
    for unit in ("d", "h", "m", "s"):
        if s % UNITS[unit] == 0:
            return f"{int(s // UNITS[unit])}{unit}"
    raise ValueError(s)


def legend(fmt: str, metric: dict[str, str]) -> str:
    return LEGEND.sub(lambda m: metric.get(m.group(1), ""), fmt)


def _vm(call: Callable[[], Any], expr: str) -> Any:
    """VictoriaMetrics' own message when it refuses a query (HTTP 422 names the error)."""
    try:
        return call()
    except urllib.error.HTTPError as exc:
        raise AssertionError(f"{expr}: HTTP {exc.code}: {exc.read().decode()}") from None


def run_target(base: str, view: View, target: dict[str, Any]) -> Any:
    """A target's result: {legend: [(time_s, value)]} for a range query, {legend:
    value} for an instant one, [row] for an instant table (before transformations)."""
    interval_s = max(seconds(view.interval), seconds(target.get("interval", view.interval)))
    expr = view.expand(target["expr"], interval_s)
    if not target["instant"]:
        start, end = view.aligned(interval_s)
        result = _vm(lambda: vm.query_range(base, expr, start, end, interval_s), expr)
        return {legend(target["legendFormat"], r["metric"]): r["values"] for r in result}
    result = _vm(lambda: vm.query(base, expr, view.end_s), expr)
    if target.get("format") != "table":
        return {legend(target["legendFormat"], r["metric"]): r["value"] for r in result}
    labels = sorted({k for r in result for k in r["metric"]})  # a column per label, "" if absent
    return [
        {"Time": view.end_s, **{k: r["metric"].get(k, "") for k in labels}, "Value": r["value"]}
        for r in result
    ]


def table(panel: dict[str, Any], frames: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """The rows a table-format panel shows: its frames with their value columns named
    as Grafana names them, then the panel's transformations."""
    named = [
        [
            {
                **{k: v for k, v in row.items() if k != "Value"},
                _value(ref, len(frames)): row["Value"],
            }
            for row in rows
        ]
        for ref, rows in frames.items()
    ]
    rows = [row for frame in named for row in frame]
    for step in panel.get("transformations", []):
        if step["id"] == "merge":
            rows = _merge(named)
        elif step["id"] == "organize":
            rows = [_organize(row, step["options"]) for row in rows]
        else:
            raise AssertionError(f"transformation not emulated here: {step['id']}")
    return rows


def _value(ref: str, queries: int) -> str:
    return "Value" if queries == 1 else f"Value #{ref}"


def _merge(frames: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Rows of the frames with equal values in every column they share are one row."""
    merged: dict[tuple[tuple[str, Any], ...], dict[str, Any]] = {}
    for frame in frames:
        for row in frame:
            value = next(k for k in row if k.startswith("Value"))
            key = tuple(sorted((k, v) for k, v in row.items() if k != value))
            merged.setdefault(key, dict(key))[value] = row[value]
    return list(merged.values())


def _organize(row: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
    names, drop = options.get("renameByName", {}), options.get("excludeByName", {})
    return {names.get(k, k): v for k, v in row.items() if not drop.get(k)}


def variable_values(base: str, view: View, query: str) -> set[str]:
    """A `label_values(selector, label)` variable: Grafana asks for the label's
    values on the matching series in the dashboard's time range."""
    found = LABEL_VALUES.match(view.expand(query, seconds(view.interval)))
    assert found, f"not a label_values() query: {query}"
    return set(vm.label_values(base, found["label"], found["match"], view.start_s, view.end_s))
