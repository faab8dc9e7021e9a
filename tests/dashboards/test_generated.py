"""The committed dashboards are what the code generates, and survive grafana-foundation-sdk.

The SDK build targets Grafana 11 (its `Dashboard` model); a dashboard that reads back
into the model and writes out identically has no field the model drops or rewrites.
Both flavours of Fleet, School and Device (InfluxQL in dashboards/, MetricsQL in
dashboards/vm/) are checked, and that they differ only where a flavour must.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from dashboards.flavours import VICTORIAMETRICS
from dashboards.generate import generated, main, render, round_trip
from dashboards.panels import DATASOURCE_UID, queries
from dashboards.reach import Scope, reach_panels

DIR = Path(__file__).resolve().parents[2] / "dashboards"
NAMES = ["fleet.json", "school.json", "device.json"]  # InfluxQL only
VM_NAMES = [f"vm/{name}" for name in NAMES]  # MetricsQL only
# The Operations dashboard mixes PromQL and InfluxQL panels: test_operations.py.
ALL = [*NAMES, *VM_NAMES, "operations.json"]
VM_DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}


def test_generates_the_seven_dashboards() -> None:
    assert sorted(generated()) == sorted(ALL)


@pytest.mark.parametrize("name", ALL)
def test_committed_json_is_generated(name: str) -> None:
    committed = (DIR / name).read_text(encoding="utf-8")
    assert committed == render(generated()[name]), (
        f"dashboards/{name} is stale: run `python -m dashboards.generate`"
    )


@pytest.mark.parametrize("name", ALL)
def test_round_trips_through_sdk_model(name: str) -> None:
    doc = json.loads((DIR / name).read_text(encoding="utf-8"))
    assert round_trip(doc) == doc


@pytest.mark.parametrize("name", NAMES)
def test_influxql_with_datasource_and_school_variables(name: str) -> None:
    doc = json.loads((DIR / name).read_text(encoding="utf-8"))
    variables = {v["name"]: v for v in doc["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "influxdb"
    assert variables["datasource"]["current"]["value"] == DATASOURCE_UID
    assert 'WITH KEY = "school"' in variables["school"]["query"]
    for panel in doc["panels"]:
        assert panel["datasource"] == {"type": "influxdb", "uid": "${datasource}"}
        for target in panel["targets"]:
            assert target["rawQuery"] is True
            assert target["datasource"] == panel["datasource"]
    for _title, _ref, query in queries(doc):
        assert "$timeFilter" in query and "$school" in query


@pytest.mark.parametrize("name", VM_NAMES)
def test_metricsql_with_datasource_and_school_variables(name: str) -> None:
    doc = json.loads((DIR / name).read_text(encoding="utf-8"))
    variables = {v["name"]: v for v in doc["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert variables["datasource"]["current"]["value"] == VICTORIAMETRICS.datasource_uid
    for var in doc["templating"]["list"][1:]:
        assert var["query"].startswith("label_values(") and var["datasource"] == VM_DATASOURCE
    for panel in doc["panels"]:
        assert panel["datasource"] == VM_DATASOURCE
        for target in panel["targets"]:
            assert target["datasource"] == VM_DATASOURCE and target["editorMode"] == "code"
            assert target["instant"] != target["range"]
            assert target.get("format") != "table" or target["instant"]
    for title, _ref, expr in queries(doc):
        assert "$school" in expr and "$timeFilter" not in expr, title
        assert "$__range" in expr or "$__interval" in expr or "[1d]" in expr, title


def _shape(panel: dict[str, Any]) -> dict[str, Any]:
    """A panel without what a flavour sets itself: data source, queries, the table
    transformations and column units, the description (checked apart)."""
    drop = {"datasource", "targets", "transformations", "description"}
    doc = {k: v for k, v in panel.items() if k not in drop}
    doc["fieldConfig"] = {**panel["fieldConfig"], "overrides": []}
    return doc


@pytest.mark.parametrize("name", NAMES)
def test_flavours_differ_only_in_queries(name: str) -> None:
    influx, vm = generated()[name], generated()[f"vm/{name}"]
    assert vm["uid"] == influx["uid"].replace("lordi-", "lordi-vm-")
    assert vm["title"] == f"{influx['title']} (VictoriaMetrics)"
    assert vm["description"] == influx["description"]
    assert [_shape(p) for p in vm["panels"]] == [_shape(p) for p in influx["panels"]]
    for a, b in zip(influx["panels"], vm["panels"], strict=True):
        assert b.get("description", "").startswith(a.get("description", "")), a["title"]
    variables = [
        [{k: v for k, v in var.items() if k not in {"query", "datasource", "current", "definition"}}
         for var in doc["templating"]["list"]]
        for doc in (influx, vm)
    ]  # fmt: skip
    assert variables[0] == variables[1]


@pytest.mark.parametrize("name", NAMES)
def test_table_columns_are_named_as_in_influxql(name: str) -> None:
    """A VictoriaMetrics table panel names its value columns with the InfluxQL
    flavour's column names (a field, its alias, or a renamed Time)."""
    influx = {p["title"]: p for p in generated()[name]["panels"]}
    for panel in generated()[f"vm/{name}"]["panels"]:
        steps = {t["id"]: t["options"] for t in panel.get("transformations", [])}
        if "organize" not in steps:
            assert all(t.get("format") != "table" for t in panel["targets"]), panel["title"]
            continue
        other = influx[panel["title"]]
        selected = r'(?:AS|SELECT|,) "(\w+)"'  # an alias, or a field selected as it is
        names = {n for t in other["targets"] for n in re.findall(selected, t["query"])}
        for step in other.get("transformations", []):
            names |= set(step["options"].get("renameByName", {}).values())
        columns = set(steps["organize"]["renameByName"].values())
        assert columns <= names, panel["title"]
        assert len(columns) == len([t for t in panel["targets"] if t.get("format") == "table"])
        assert steps["organize"]["excludeByName"] == {"Time": True}
        assert ("merge" in steps) == (len(panel["targets"]) > 1), panel["title"]


def test_fleet_reads_only_summaries() -> None:
    """Fleet reads per-school summaries and forecasts, except its Wi-Fi access panels,
    which read the raw `connectivity` series and nothing else (dashboards/reach.py:
    late reports would not reach a summary; docs/grafana.md, "Wi-Fi access")."""
    reach = {p.title for p in reach_panels(Scope("", "", per_school=True), 0)}
    assert reach, "the Wi-Fi access panels"
    for title, _ref, query in queries(generated()["fleet.json"]):
        if title in reach:
            assert re.findall(r'FROM "(\w+)"', query) == ["connectivity"] * query.count('FROM "')
            continue
        assert "summary" in query or 'FROM "forecast"' in query, title
        for raw in ('"battery"', '"wifi"', '"device"', '"connectivity"'):
            assert f"FROM {raw}" not in query, title
    for title, _ref, expr in queries(generated()["vm/fleet.json"]):
        metrics = set(re.findall(r"(\w+)\{", expr))
        allowed = ("connectivity_",) if title in reach else (
            "school_summary_", "school_model_summary_", "forecast_"
        )  # fmt: skip
        assert metrics and all(m.startswith(allowed) for m in metrics), title


def test_output_is_stable() -> None:
    assert render(generated()["fleet.json"]) == render(generated()["fleet.json"])
    assert main(["--check"]) == 0


def test_alert_panels_look_back_beyond_the_dashboard_range() -> None:
    """An alert opened weeks ago has its only point then: a 7-day range would hide it."""
    panels = {p["title"]: p for p in generated()["school.json"]["panels"]}
    vm_panels = {p["title"]: p for p in generated()["vm/school.json"]["panels"]}
    for title in ("Open alerts", "Open alerts per category"):
        assert panels[title]["timeFrom"] == vm_panels[title]["timeFrom"] == "90d"
        assert 'FROM "alert"' in panels[title]["targets"][0]["query"]
        for target in vm_panels[title]["targets"]:  # the panel's range, not a fixed one
            assert "alert_open{" in target["expr"] and "[$__range]" in target["expr"]
    fleet = {p["title"]: p for p in generated()["fleet.json"]["panels"]}
    assert "timeFrom" not in fleet["Forecast battery replacements per term"]
