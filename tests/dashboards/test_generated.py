"""The committed dashboards are what the code generates, and survive grafana-foundation-sdk.

The SDK build targets Grafana 11 (its `Dashboard` model); a dashboard that reads back
into the model and writes out identically has no field the model drops or rewrites.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dashboards.generate import generated, main, render, round_trip
from dashboards.panels import DATASOURCE_UID, queries

DIR = Path(__file__).resolve().parents[2] / "dashboards"
NAMES = ["fleet.json", "school.json", "device.json"]  # InfluxQL only
# The Operations dashboard mixes PromQL and InfluxQL panels: test_operations.py.
ALL = [*NAMES, "operations.json"]


def test_generates_the_four_dashboards() -> None:
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


def test_fleet_reads_only_summaries() -> None:
    for title, _ref, query in queries(generated()["fleet.json"]):
        assert "summary" in query or 'FROM "forecast"' in query, title
        for raw in ('"battery"', '"wifi"', '"device"'):
            assert f"FROM {raw}" not in query, title


def test_output_is_stable() -> None:
    assert render(generated()["fleet.json"]) == render(generated()["fleet.json"])
    assert main(["--check"]) == 0


def test_alert_panels_look_back_beyond_the_dashboard_range() -> None:
    """An alert opened weeks ago has its only point then: a 7-day range would hide it."""
    panels = {p["title"]: p for p in generated()["school.json"]["panels"]}
    for title in ("Open alerts", "Open alerts per category"):
        assert panels[title]["timeFrom"] == "90d"
        assert 'FROM "alert"' in panels[title]["targets"][0]["query"]
    fleet = {p["title"]: p for p in generated()["fleet.json"]["panels"]}
    assert "timeFrom" not in fleet["Forecast battery replacements per term"]
