"""provisioning/grafana/: the data source and dashboard provider files Grafana loads.

No Grafana runs here: these checks read the YAML as Grafana would (same keys) and
tie it to the committed dashboards: the data source uids are the ones the dashboards'
`datasource` variable starts on (InfluxDB for dashboards/*.json, VictoriaMetrics for
dashboards/vm/*.json), the provider's folder is the one `lordi grafana push`
restricts to the regional team, docker-compose.yml mounts the committed dashboards
where the provider looks, and the files the provider finds there (every .json under
its path, subfolders included, as Grafana's file reader walks it) have distinct uids
and titles. No secret is written in them.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from dashboards.flavours import VICTORIAMETRICS
from dashboards.panels import DATASOURCE_NAME, DATASOURCE_UID
from lordi.grafana import REGION_FOLDER

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "provisioning" / "grafana"
DASHBOARDS = ["fleet.json", "school.json", "device.json"]
VM_DASHBOARDS = [f"vm/{name}" for name in DASHBOARDS]


def load(path: Path) -> dict[str, Any]:
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(doc, dict) and doc["apiVersion"] == 1, path
    return doc


def test_datasource_is_the_one_the_dashboards_use() -> None:
    (ds,) = load(GRAFANA / "datasources" / "lordi.yaml")["datasources"]
    assert ds["uid"] == DATASOURCE_UID and ds["name"] == DATASOURCE_NAME
    assert ds["type"] == "influxdb" and ds["jsonData"]["version"] == "InfluxQL"
    assert ds["access"] == "proxy" and ds["isDefault"] is True
    for name in DASHBOARDS:
        doc = json.loads((ROOT / "dashboards" / name).read_text(encoding="utf-8"))
        variable = next(v for v in doc["templating"]["list"] if v["name"] == "datasource")
        assert variable["current"]["value"] == ds["uid"], name
        assert variable["query"] == ds["type"], name  # the picker lists InfluxDB sources


def test_datasource_secrets_come_from_the_environment() -> None:
    (ds,) = load(GRAFANA / "datasources" / "lordi.yaml")["datasources"]
    assert ds["url"] == "${LORDI_INFLUX_URL}"
    assert ds["user"] == "${LORDI_INFLUX_USER}"
    assert ds["jsonData"]["dbName"] == "${LORDI_INFLUX_DB}"
    assert ds["secureJsonData"] == {"password": "${LORDI_INFLUX_PASSWORD}"}
    for path in GRAFANA.rglob("*.yaml"):
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"(password|token|secret)\s*:\s*[^$\s#]", text, re.I), path


def test_dashboard_provider_loads_the_committed_dashboards() -> None:
    (provider,) = load(GRAFANA / "dashboards" / "lordi.yaml")["providers"]
    assert provider["type"] == "file" and provider["folderUid"] == REGION_FOLDER
    assert provider["allowUiUpdates"] is False and provider["disableDeletion"] is True
    path = provider["options"]["path"]
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    mounts = compose["services"]["grafana"]["volumes"]
    assert f"./dashboards:{path}:ro" in mounts  # the committed JSON, read-only
    assert "./provisioning/grafana:/etc/grafana/provisioning:ro" in mounts
    uids = {json.loads((ROOT / "dashboards" / n).read_text())["uid"] for n in DASHBOARDS}
    assert uids == {"lordi-fleet", "lordi-school", "lordi-device"}


def test_victoriametrics_datasource_is_the_one_the_vm_dashboards_use() -> None:
    (ds,) = load(GRAFANA / "datasources" / "victoriametrics.yaml")["datasources"]
    assert ds["uid"] == VICTORIAMETRICS.datasource_uid == "lordi-victoriametrics"
    assert ds["name"] == VICTORIAMETRICS.datasource_name
    assert ds["type"] == VICTORIAMETRICS.datasource_type == "prometheus"
    assert ds["access"] == "proxy" and ds["isDefault"] is False  # lordi-influxdb stays
    assert ds["url"] == "${LORDI_VM_URL}" and "secureJsonData" not in ds
    assert ds["jsonData"]["httpMethod"] == "POST"
    uids = [
        d["uid"]
        for path in (GRAFANA / "datasources").glob("*.yaml")
        for d in load(path)["datasources"]
    ]
    assert len(uids) == len(set(uids)), uids
    for name in VM_DASHBOARDS:
        doc = json.loads((ROOT / "dashboards" / name).read_text(encoding="utf-8"))
        variable = next(v for v in doc["templating"]["list"] if v["name"] == "datasource")
        assert variable["current"]["value"] == ds["uid"], name
        assert variable["query"] == ds["type"], name  # the picker lists Prometheus sources


def test_the_provider_finds_both_flavours_once_each() -> None:
    """Grafana's file reader takes every .json file under the provider's path,
    subfolders included (not those starting with a dot), and refuses a uid or a
    title used twice: the two flavours must differ in both."""
    found = [
        path
        for path in (ROOT / "dashboards").rglob("*.json")
        if not any(part.startswith(".") for part in path.relative_to(ROOT).parts)
    ]
    docs = [json.loads(path.read_text(encoding="utf-8")) for path in found]
    names = {str(path.relative_to(ROOT / "dashboards")) for path in found}
    assert {*DASHBOARDS, *VM_DASHBOARDS, "operations.json"} <= names
    uids = [d["uid"] for d in docs]
    titles = [d["title"] for d in docs]
    assert len(set(uids)) == len(uids) and len(set(titles)) == len(titles), (uids, titles)
    vm_uids = {json.loads((ROOT / "dashboards" / n).read_text())["uid"] for n in VM_DASHBOARDS}
    assert vm_uids == {"lordi-vm-fleet", "lordi-vm-school", "lordi-vm-device"}
