"""Every query of the Operations dashboard, run on the real store it targets.

- PromQL panels (the `metrics` data source): a real collector (its own registry,
  `[metrics]` on, `[alerts]` on a real SQLite alert store holding outbox rows) on
  the session's Mosquitto and store, scraped every second by a private
  VictoriaMetrics through the shipped provisioning/metrics/scrape.yml; valid and
  invalid messages through the broker; then each panel's expression, Grafana's
  `$__rate_interval` and `$__range` substituted, through VictoriaMetrics'
  `/api/v1/query`, with the numbers of what was sent.
- InfluxQL panels (the `datasource` data source): the collector's own line protocol
  (`collector.lineproto.to_lines`, string fields on as for InfluxDB) for known agent
  reports (spool backlog, drops, agent versions) in the session's real InfluxDB
  1.6.7, `$timeFilter` substituted as Grafana does, with the exact numbers per
  school and per version (the versions panel's Grafana `groupBy` transformation is
  applied here to the rows InfluxDB returns).

The drift checks (committed JSON = generated JSON, a fixed point of the SDK model)
are tests/dashboards/test_generated.py's, for all four dashboards; here, the two
data source variables tied to the provisioning files.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from collector.alerting import Alerting
from collector.alerts.model import Finding
from collector.alerts.store import AlertStore
from collector.config import MetricsSettings
from collector.contract import Sample
from collector.lineproto import to_lines
from collector.rules import RulesConfig
from collector.service import Collector
from dashboards.generate import generated
from dashboards.operations import METRICS_NAME, METRICS_UID, SILENT_AFTER_S
from dashboards.panels import DATASOURCE_UID
from lordi import vm
from lordi.stack import LocalStack, free_port
from tests.helpers import (
    envelope,
    influx_post,
    minimal_sample,
    publish,
    recent,
    settings_for,
    unique_school,
)
from tests.metrics.helpers import PrivateVM, eventually, forget_session, private_vm, scrape_config

ROOT = Path(__file__).resolve().parents[2]
NAME = "operations.json"
DB = "lordi_operations"
# Grafana's macros, as it would fill them for the last hour at a 1 s scrape.
RATE_INTERVAL = "1m"
RANGE = "1h"


def board() -> dict[str, Any]:
    return generated()[NAME]


def targets(kind: str) -> list[tuple[str, str, str]]:
    """(panel title, refId, query) of every target on a data source type."""
    return [
        (p["title"], t["refId"], t["expr"] if kind == "prometheus" else t["query"])
        for p in board()["panels"]
        for t in p["targets"]
        if t["datasource"]["type"] == kind
    ]


# --- drift: generated, SDK fixed point, data sources ---------------------------------


def test_datasources_are_the_provisioned_ones() -> None:
    doc = board()
    variables = {v["name"]: v for v in doc["templating"]["list"]}
    assert set(variables) == {"datasource", "metrics"}
    assert variables["datasource"]["query"] == "influxdb"
    assert variables["datasource"]["current"]["value"] == DATASOURCE_UID
    metrics = variables["metrics"]
    assert metrics["type"] == "datasource" and metrics["query"] == "prometheus"
    path = ROOT / "provisioning" / "grafana" / "datasources" / "metrics.yaml"
    provisioned = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert provisioned["apiVersion"] == 1
    (ds,) = provisioned["datasources"]
    assert (ds["uid"], ds["name"], ds["type"]) == (METRICS_UID, METRICS_NAME, "prometheus")
    assert metrics["current"] == {"text": METRICS_NAME, "value": METRICS_UID}
    assert ds["url"] == "${LORDI_METRICS_URL}" and ds["isDefault"] is False
    assert ds["access"] == "proxy" and "secureJsonData" not in ds
    for panel in doc["panels"]:
        kinds = {t["datasource"]["type"] for t in panel["targets"]}
        assert kinds == {panel["datasource"]["type"]}, panel["title"]
        uid = {"prometheus": "${metrics}", "influxdb": "${datasource}"}[kinds.pop()]
        assert panel["datasource"]["uid"] == uid, panel["title"]
    for title, _ref, query in targets("influxdb"):
        assert "$timeFilter" in query, title
    assert len(targets("prometheus")) + len(targets("influxdb")) == sum(
        len(p["targets"]) for p in doc["panels"]
    )


# --- PromQL on a VictoriaMetrics scraping a real collector ---------------------------


def promql(expr: str) -> str:
    return expr.replace("$__rate_interval", RATE_INTERVAL).replace("$__range", RANGE)


def _finding(school: str, device: str, rule: str) -> Finding:
    return Finding(
        rule=rule, key=f"{school}/{device}/{rule}", subject="device", school=school,
        device=device, category="hardware", severity="warning", active=True,
        at=datetime.now(UTC) - timedelta(hours=1), summary=rule, action="-",
    )  # fmt: skip


@pytest.fixture(scope="module")
def metrics_world(
    stack: LocalStack, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("operations")
    # The alert store: two notifications pending, one failed (given up).
    store = AlertStore(f"sqlite:///{root / 'alerts.sqlite3'}")
    store.create_tables()
    now = datetime.now(UTC)
    ops_school = unique_school()
    ids = [
        store.open_alert(_finding(ops_school, f"d{i}", rule), now).id
        for i, rule in enumerate(("battery_replace", "battery_watch", "charging_fault"))
    ]
    for alert_id in ids:
        store.enqueue(alert_id, "opened", now)
    (claimed,) = store.outbox.claim(now, limit=1)
    store.outbox.retry(claimed.id, ["mail"], "refused", now, give_up=True)

    client_id = "operations-dashboard"
    port = free_port()
    settings = settings_for(stack, client_id=client_id)
    settings = settings.model_copy(
        update={
            # A share group of its own: it receives every message published here.
            "mqtt": settings.mqtt.model_copy(update={"share_group": client_id}),
            "metrics": MetricsSettings(enabled=True, port=port, refresh_s=1, store_check_s=0.5),
        }
    )
    collector = Collector(settings, alerting=Alerting(RulesConfig(), store))
    collector.start()
    config = scrape_config(root / "scrape.yml", "lordi-collector", f"127.0.0.1:{port}")
    try:
        assert collector.connected.wait(10), "collector did not connect"
        with private_vm(root / "scraper", f"-promscrape.config={config}") as scraper:
            # Counters scraped at 0 before anything is sent: increase() counts from there.
            accepted = "lordi_collector_samples_accepted_total"
            assert eventually(lambda: scraper.value(accepted) == 0), scraper.value(accepted)
            time.sleep(1.5)
            yield _send_and_wait(stack, scraper)
    finally:
        collector.stop()
        forget_session(stack, client_id)


def _send_and_wait(stack: LocalStack, scraper: PrivateVM) -> dict[str, Any]:
    """Six messages stored (six samples), four rejections; the scraper has them."""
    school_a, school_b = unique_school(), unique_school()
    newest_a, newest_b = recent(3), recent(180)  # school b: silent for 3 hours
    topic = "lordi/v1/{}/{}/telemetry"
    good = [
        (school_a, "a1", [minimal_sample(recent(20), 95.0), minimal_sample(recent(10), 95.0)]),
        (school_a, "a2", [minimal_sample(recent(12), 95.0), minimal_sample(newest_a, 95.0)]),
        (school_b, "b1", [minimal_sample(newest_b, 95.0)]),
    ]
    for school, device, samples in good:
        publish(stack, topic.format(school, device), [envelope(school, device, samples)])
    # Rejections: not JSON (malformed), another school than the topic's (topic), and
    # a message with one good sample and two impossible ones (2 x invalid).
    publish(stack, topic.format(school_a, "a3"), [b"{not json"])
    publish(
        stack,
        topic.format(school_a, "a4"),
        [envelope(school_b, "a4", [minimal_sample(recent(9), 95.0)])],
    )
    publish(stack, topic.format(school_a, "a5"), [envelope(school_a, "a5", [
        minimal_sample(recent(40), 95.0), minimal_sample(recent(41), health=512.0),
        minimal_sample(recent(42), health=-3.0),
    ])])  # fmt: skip
    letters = "sum(lordi_collector_dead_letters_total)"
    assert eventually(lambda: scraper.value(letters) == 4), scraper.value(letters)
    accepted = "lordi_collector_samples_accepted_total"
    assert eventually(lambda: scraper.value(accepted) == 6), scraper.value(accepted)
    assert eventually(lambda: scraper.value("sum(lordi_collector_inflight_messages)") == 0)
    assert eventually(lambda: (scraper.value("max(lordi_broker_clients_connected)") or 0) >= 1)
    time.sleep(1.5)  # one more scrape: every figure's final value is stored
    return {"scraper": scraper, "a": school_a, "b": school_b, "newest": {
        school_a: newest_a.timestamp(), school_b: newest_b.timestamp(),
    }}  # fmt: skip


def run_promql(world: dict[str, Any], at: float) -> dict[str, list[dict[str, Any]]]:
    """{"title/refId": [{"metric": labels, "value": v}]} of every PromQL target."""
    scraper: PrivateVM = world["scraper"]
    vm.force_flush(scraper.url)
    return {
        f"{title}/{ref}": vm.query(scraper.url, promql(expr), at)
        for title, ref, expr in targets("prometheus")
    }


def by(rows: list[dict[str, Any]], label: str) -> dict[str, float]:
    return {r["metric"][label]: r["value"] for r in rows}


def one(rows: list[dict[str, Any]]) -> float:
    (row,) = rows
    return float(row["value"])


def test_metrics_panels(metrics_world: dict[str, Any]) -> None:
    # A whole second already past: VictoriaMetrics moves an instant query's time
    # that is (about) now back to its own now, which time() would then return.
    at = float(int(time.time()))
    time.sleep(2)
    rows = run_promql(metrics_world, at)
    for key, result in rows.items():
        if not key.startswith("Schools silent"):
            assert result, f"{key} returned no data"

    assert [one(rows[f"Collectors/{r}"]) for r in "ABC"] == [1, 1, 1]

    accepted, received = (one(rows[f"Ingest throughput/{r}"]) for r in "AB")
    assert accepted > 0 and received > 0
    # Same scrapes, same window: the ratio of two rates is the ratio of the counts.
    assert accepted / received == pytest.approx(6 / 6)

    rejected = by(rows["Rejected samples by reason/A"], "reason")
    assert set(rejected) == {"invalid", "malformed", "topic", "rate_limited", "collector_error"}
    assert rejected["rate_limited"] == rejected["collector_error"] == 0
    assert rejected["malformed"] > 0
    assert rejected["invalid"] / rejected["malformed"] == pytest.approx(2)
    assert rejected["topic"] / rejected["malformed"] == pytest.approx(1)
    assert accepted / rejected["malformed"] == pytest.approx(6)

    letters = by(rows["Dead letters by reason/A"], "reason")
    assert letters == {
        "invalid": 2, "malformed": 1, "topic": 1, "rate_limited": 0, "collector_error": 0,
    }  # fmt: skip

    p50, p95 = (one(rows[f"Store write latency/{r}"]) for r in "AB")
    assert 0 < p50 <= p95 <= 30

    outcomes = by(rows["Store writes by outcome/A"], "outcome")
    assert set(outcomes) == {"ok", "retry", "error"}
    assert outcomes["ok"] > 0 and outcomes["retry"] == outcomes["error"] == 0

    a, b, newest = metrics_world["a"], metrics_world["b"], metrics_world["newest"]
    lag = by(rows["Lag of the newest sample per school/A"], "school")
    assert lag == {a: at - newest[a], b: at - newest[b]}
    assert lag[b] > SILENT_AFTER_S > lag[a]
    silent = by(rows["Schools silent for 2 hours/A"], "school")
    assert silent == {b: at - newest[b]}  # 3 h > 2 h; school a's 3 minutes are not

    assert [one(rows[f"Messages in flight/{r}"]) for r in "AB"] == [0, 0]
    assert by(rows["Alert outbox/A"], "status") == {"pending": 2, "failed": 1, "digest": 0}

    clients, stored, subscriptions = (one(rows[f"Broker (Mosquitto $SYS)/{r}"]) for r in "ABC")
    assert clients >= 1 and subscriptions >= 1 and stored >= 0

    # The collector runs in this process: its threads among the test runner's.
    threads = by(rows["Collector threads (CPU)/A"], "thread")
    assert {"ingest", "writer-0", "mqtt-network", "metrics-http"} <= set(threads), threads
    assert all(0 <= v <= 2 for v in threads.values()), threads


# --- InfluxQL on InfluxDB 1.6.7: the agents' figures ----------------------------------

# (device, agent version, [(spool_pending, spool_dropped) per report] or None: no
# `agent` block, an agent too old to report its spool)
Report = tuple[int, int] | None
AGENTS: dict[str, list[tuple[str, str, list[Report]]]] = {
    "s1": [
        ("d1", "1.2.0", [(5, 0), (3, 4), (0, 1)]),  # backlog drained, 5 dropped
        ("d2", "1.2.0", [(10, 2), (7, 0)]),  # backlog 7, 2 dropped
        ("d3", "1.1.0", [None, None, None]),  # no spool figures
    ],
    "s2": [
        ("d4", "1.2.0", [(1, 0), (2, 0)]),  # backlog 2, nothing dropped
        ("d5", "1.0.3", [(0, 3), (0, 0)]),  # 3 dropped
    ],
}
# d2 ran 1.1.0 before its latest report (the version of the latest report counts).
EARLIER_VERSION = {"d2": "1.1.0"}


def _sample(ts: datetime, report: Report) -> Sample:
    doc: dict[str, Any] = {"ts": ts, "os": {"platform": "windows", "release": "10.0.22631"}}
    if report is not None:
        doc["agent"] = {"spool_pending": report[0], "spool_dropped": report[1]}
    return Sample.model_validate(doc)


def _run(stack: LocalStack, query: str) -> list[dict[str, Any]]:
    params = urllib.parse.urlencode({"db": DB, "q": query, "epoch": "ms"})
    with urllib.request.urlopen(f"{stack.influx_url}/query?{params}", timeout=10) as resp:  # noqa: S310
        result = json.loads(resp.read())["results"][0]
    assert "error" not in result, (query, result)
    return list(result.get("series", []))


@pytest.fixture(scope="module")
def agents_world(stack: LocalStack) -> dict[str, Any]:
    s1, s2, s3 = unique_school(), unique_school(), unique_school()
    schools = {"s1": s1, "s2": s2}
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)
    lines: list[str] = []
    for key, laptops in AGENTS.items():
        for device, version, reports in laptops:
            for i, report in enumerate(reports):
                last = i == len(reports) - 1
                agent = version if last else EARLIER_VERSION.get(device, version)
                ts = start + timedelta(hours=i + 1)
                lines += to_lines(schools[key], device, agent, _sample(ts, report))
    # Before the time range: a big backlog, drops and another version, not counted.
    lines += to_lines(s3, "d6", "0.9.0", _sample(start - timedelta(hours=1), (50, 9)))
    lines += to_lines(s1, "d1", "0.9.0", _sample(start - timedelta(hours=1), (40, 8)))
    influx_post(f"{stack.influx_url}/query?q=CREATE%20DATABASE%20{DB}", b"")
    influx_post(f"{stack.influx_url}/write?db={DB}&precision=ms", "\n".join(lines).encode())
    window = (
        f"time >= {int(start.timestamp() * 1000)}ms and "
        f"time <= {int((start + timedelta(days=1)).timestamp() * 1000)}ms"
    )
    return {"s1": s1, "s2": s2, "s3": s3, "window": window}


def table(series: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out = {}
    for s in series:
        (row,) = s["values"]
        out[s["tags"]["school"]] = dict(zip(s["columns"], row, strict=True))
    return out


def group_by(rows: list[dict[str, Any]], *keys: str) -> dict[Any, int]:
    """Grafana's groupBy transformation as configured on the versions panel: rows
    grouped by `keys`, `device` counted."""
    return dict(Counter(tuple(r[k] for k in keys) for r in rows if r["device"] is not None))


def test_agents_panels(stack: LocalStack, agents_world: dict[str, Any]) -> None:
    s1, s2 = agents_world["s1"], agents_world["s2"]
    rows = {
        f"{title}/{ref}": _run(stack, query.replace("$timeFilter", agents_world["window"]))
        for title, ref, query in targets("influxdb")
    }
    assert len(rows) == 3
    backlog = table(rows["Agents' spool backlog per school/A"])
    assert {k: [v["spool_pending"], v["laptops"]] for k, v in backlog.items()} == {
        s1: [7, 1],  # d2; d1 drained, d3 reports no spool
        s2: [2, 1],  # d4
    }
    dropped = table(rows["Samples dropped by agents per school/A"])
    assert {k: [v["dropped"], v["laptops"]] for k, v in dropped.items()} == {
        s1: [7, 2],  # d1 0+4+1, d2 2+0
        s2: [3, 1],  # d5
    }
    # One row per laptop: its school, its latest version (what Grafana's table gets).
    laptops = [
        {**s["tags"], "agent_version": s["values"][0][1]}
        for s in rows["Agent versions across the fleet/A"]
    ]
    assert len(laptops) == 5
    panel = next(p for p in board()["panels"] if p["title"] == "Agent versions across the fleet")
    fields = panel["transformations"][0]["options"]["fields"]
    grouped = [k for k, v in fields.items() if v["operation"] == "groupby"]
    assert grouped == ["agent_version"] and fields["device"]["aggregations"] == ["count"]
    assert group_by(laptops, *grouped) == {("1.2.0",): 3, ("1.1.0",): 1, ("1.0.3",): 1}
    assert group_by(laptops, "school", "agent_version") == {
        (s1, "1.2.0"): 2, (s1, "1.1.0"): 1, (s2, "1.2.0"): 1, (s2, "1.0.3"): 1,
    }  # fmt: skip


def test_versions_need_string_fields() -> None:
    """What the versions panel's description says: a collector writing to
    VictoriaMetrics (string fields off) does not store agent_version."""
    sample = _sample(datetime.now(UTC), (1, 2))
    (with_strings,) = [x for x in to_lines("0341234A", "d1", "1.2.0", sample) if x[:7] == "device,"]
    (codes_only,) = [
        x for x in to_lines("0341234A", "d1", "1.2.0", sample, strings=False) if x[:7] == "device,"
    ]
    assert 'agent_version="1.2.0"' in with_strings
    assert "agent_version" not in codes_only
    assert "spool_pending=1i,spool_dropped=2i" in codes_only
