"""A few read calls to VictoriaMetrics' HTTP API (PromQL query and raw export)."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from typing import Any


def _get(url: str, timeout_s: float = 30.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout_s) as resp:  # noqa: S310 - our own URL
        return bytes(resp.read())


def force_flush(base: str) -> None:
    """Make just-written points visible to queries (VictoriaMetrics buffers ~1 s)."""
    _get(f"{base}/internal/force_flush")


def query(base: str, promql: str, time_s: float | None = None) -> list[dict[str, Any]]:
    """Instant PromQL query: [{"metric": {labels}, "value": float}]."""
    params = {"query": promql}
    if time_s is not None:
        params["time"] = str(time_s)
    doc = json.loads(_get(f"{base}/api/v1/query?{urllib.parse.urlencode(params)}"))
    if doc.get("status") != "success":
        raise RuntimeError(f"query failed: {doc}")
    return [{"metric": r["metric"], "value": float(r["value"][1])} for r in doc["data"]["result"]]


def export(base: str, match: str) -> list[dict[str, Any]]:
    """Raw series: [{"metric": {...}, "values": [...], "timestamps": [ms, ...]}]."""
    url = f"{base}/api/v1/export?{urllib.parse.urlencode({'match[]': match})}"
    return [json.loads(line) for line in _get(url).splitlines() if line.strip()]


def query_range(
    base: str, promql: str, start_s: float, end_s: float, step_s: float
) -> list[dict[str, Any]]:
    """Range PromQL query: [{"metric": {labels}, "values": [(time_s, float), ...]}]."""
    params = {"query": promql, "start": str(start_s), "end": str(end_s), "step": str(step_s)}
    doc = json.loads(_get(f"{base}/api/v1/query_range?{urllib.parse.urlencode(params)}"))
    if doc.get("status") != "success":
        raise RuntimeError(f"query failed: {doc}")
    return [
        {"metric": r["metric"], "values": [(float(t), float(v)) for t, v in r["values"]]}
        for r in doc["data"]["result"]
    ]


def label_values(
    base: str, label: str, match: str, start_s: float | None = None, end_s: float | None = None
) -> list[str]:
    """The values of `label` on the series matching `match` (in [start, end] if given)."""
    params = {"match[]": match}
    if start_s is not None and end_s is not None:
        params |= {"start": str(start_s), "end": str(end_s)}
    url = f"{base}/api/v1/label/{urllib.parse.quote(label)}/values?{urllib.parse.urlencode(params)}"
    doc = json.loads(_get(url))
    if doc.get("status") != "success":
        raise RuntimeError(f"label values failed: {doc}")
    return [str(v) for v in doc["data"]]
