"""Small builders for Grafana dashboard JSON (InfluxQL targets, panels, variables).

The grafana-foundation-sdk has no InfluxDB query builder, so panels are plain dicts;
`generate.py` round-trips every dashboard through the SDK's `Dashboard` model and
commits what the model writes back.
"""

from __future__ import annotations

from typing import Any

DATASOURCE = {"type": "influxdb", "uid": "${datasource}"}
# The data source provisioned by provisioning/grafana/datasources/lordi.yaml: the
# `datasource` variable starts on it, and any other InfluxDB source can be picked.
DATASOURCE_UID = "lordi-influxdb"
DATASOURCE_NAME = "Lordi InfluxDB"
SCHEMA_VERSION = 39  # Grafana 11.x

Json = dict[str, Any]


def target(ref: str, query: str, fmt: str = "time_series", alias: str = "") -> Json:
    """A raw InfluxQL target, as Grafana's InfluxDB data source stores it."""
    doc: Json = {
        "datasource": DATASOURCE,
        "query": query,
        "rawQuery": True,
        "refId": ref,
        "resultFormat": fmt,
    }
    if alias:
        doc["alias"] = alias
    return doc


def panel(
    kind: str,
    title: str,
    targets: list[Json],
    grid: tuple[int, int, int, int],
    *,
    unit: str = "",
    description: str = "",
    options: Json | None = None,
    transformations: list[Json] | None = None,
    custom: Json | None = None,
    time_from: str = "",
) -> Json:
    """A panel; `grid` is (x, y, w, h). Ids are assigned by `dashboard`.
    `time_from` (e.g. "90d") replaces the dashboard's time range for this panel."""
    x, y, w, h = grid
    defaults: Json = {}
    if unit:
        defaults["unit"] = unit
    if custom:
        defaults["custom"] = custom
    doc: Json = {
        "datasource": DATASOURCE,
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "gridPos": {"h": h, "w": w, "x": x, "y": y},
        "options": options or {},
        "targets": targets,
        "title": title,
        "type": kind,
    }
    if description:
        doc["description"] = description
    if transformations:
        doc["transformations"] = transformations
    if time_from:
        doc["timeFrom"] = time_from
    return doc


def datasource_variable() -> Json:
    return {
        "current": {"text": DATASOURCE_NAME, "value": DATASOURCE_UID},
        "label": "Data source",
        "name": "datasource",
        "query": "influxdb",
        "type": "datasource",
    }


def query_variable(name: str, label: str, query: str, multi: bool = False) -> Json:
    doc: Json = {
        "datasource": DATASOURCE,
        "definition": query,
        "includeAll": multi,
        "label": label,
        "multi": multi,
        "name": name,
        "query": query,
        "refresh": 2,  # on time range change
        "sort": 1,
        "type": "query",
    }
    if multi:
        doc["allValue"] = ".*"  # "All" as one short regex, not a list of 220 schools
    return doc


def dashboard(
    uid: str, title: str, description: str, variables: list[Json], panels: list[Json]
) -> Json:
    for i, p in enumerate(panels, start=1):
        p["id"] = i
    return {
        "annotations": {"list": []},
        "description": description,
        "editable": True,
        "panels": panels,
        "schemaVersion": SCHEMA_VERSION,
        "tags": ["lordi"],
        "templating": {"list": [datasource_variable(), *variables]},
        "time": {"from": "now-7d", "to": "now"},
        "timezone": "Europe/Paris",
        "title": title,
        "uid": uid,
    }


def queries(doc: Json) -> list[tuple[str, str, str]]:
    """(panel title, refId, query) of every panel target of a dashboard: InfluxQL
    (`query`), or PromQL (`expr`) on the Operations dashboard's metrics panels."""
    return [
        (p["title"], t["refId"], t["query"] if "query" in t else t["expr"])
        for p in doc["panels"]
        for t in p.get("targets", [])
    ]
