"""`lordi retention`: InfluxDB 1.x policies and continuous queries on the real InfluxDB
1.6.7 of the test stack; the InfluxDB 2 requests against a local stand-in only.

InfluxDB 1.x: after the command, SHOW RETENTION POLICIES / SHOW CONTINUOUS QUERIES
list them; writes without a policy land in `raw`; each stored continuous query's
SELECT, run by hand over the dashboard scenario (collector line protocol) with a time
range, writes the daily aggregates worked out by hand. The server's own hourly CQ
run is not awaited (it fires on the hour).

InfluxDB 2: no InfluxDB 2 server here. The stand-in checks paths, methods, bodies,
the token header and idempotency; whether a real InfluxDB 2 accepts the Flux task
is NOT tested.
"""

# ruff: noqa: S608, PLR0911 - InfluxQL from test constants; the stand-in routes by match

from __future__ import annotations

import json
import re
import socket
import threading
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from collector.summaries import summary_lines
from lordi import cli
from lordi.retention import DOWNSAMPLES, cq_name, flux_task
from lordi.stack import LocalStack
from tests.dashboards import scenario
from tests.helpers import unique_school


def influx(stack: LocalStack, q: str, db: str = "") -> list[dict[str, Any]]:
    params = urllib.parse.urlencode({"q": q, "epoch": "ms", **({"db": db} if db else {})})
    req = urllib.request.Request(f"{stack.influx_url}/query", data=params.encode())  # noqa: S310
    with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310 - loopback
        result = json.loads(resp.read())["results"][0]
    assert "error" not in result, (q, result)
    return list(result.get("series", []))


def write(stack: LocalStack, db: str, lines: list[str]) -> None:
    req = urllib.request.Request(  # noqa: S310 - loopback
        f"{stack.influx_url}/write?db={db}&precision=ms", data="\n".join(lines).encode()
    )
    with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310
        assert resp.status == 204


@pytest.fixture(scope="module")
def db(stack: LocalStack) -> str:
    name = f"lordi_retention_{unique_school().lower()}"
    args = ["retention", "influxdb1", "--url", stack.influx_url, "--db", name]
    assert cli.main(args) == 0
    assert cli.main(args) == 0  # idempotent: the second run changes nothing
    return name


def test_policies_and_continuous_queries_exist(stack: LocalStack, db: str) -> None:
    (rps,) = influx(stack, f'SHOW RETENTION POLICIES ON "{db}"')
    by_name = {row[0]: dict(zip(rps["columns"], row, strict=True)) for row in rps["values"]}
    assert by_name["raw"]["duration"] == "2160h0m0s" and by_name["raw"]["default"] is True
    assert by_name["daily"]["duration"] == f"{1825 * 24}h0m0s"
    assert by_name["daily"]["default"] is False
    cqs = {row[0]: row[1] for s in influx(stack, "SHOW CONTINUOUS QUERIES") if s["name"] == db
           for row in s.get("values", [])}  # fmt: skip
    assert sorted(cqs) == sorted(cq_name(d) for d in DOWNSAMPLES)  # once each, after two runs
    battery = cqs["lordi_daily_battery"]
    assert "RESAMPLE EVERY 1h FOR 2d" in battery
    assert f"INTO {db}.daily.battery FROM {db}.raw.battery GROUP BY time(1d), *" in battery


def test_changing_the_raw_period_alters_the_policy(stack: LocalStack) -> None:
    name = f"lordi_retention_{unique_school().lower()}"
    base = ["retention", "influxdb1", "--url", stack.influx_url, "--db", name]
    assert cli.main(base) == 0
    assert cli.main([*base, "--raw-days", "30", "--aggregate-days", "400"]) == 0
    (rps,) = influx(stack, f'SHOW RETENTION POLICIES ON "{name}"')
    durations = {row[0]: row[1] for row in rps["values"]}
    assert durations["raw"] == "720h0m0s" and durations["daily"] == "9600h0m0s"
    assert cli.main([*base, "--raw-days", "90", "--aggregate-days", "60"]) == 2


def _run_stored_select(stack: LocalStack, db: str, cq: str, start_ms: int, end_ms: int) -> None:
    """The CQ's SELECT as the server stores it, with a time range added (a backfill)."""
    select = cq.split(" BEGIN ", 1)[1].rsplit(" END", 1)[0]
    head, group = select.split(" GROUP BY ", 1)
    influx(stack, f"{head} WHERE time >= {start_ms}ms AND time < {end_ms}ms GROUP BY {group}", db)


def test_stored_cq_select_gives_the_daily_aggregates(stack: LocalStack, db: str) -> None:
    s1, s2 = unique_school(), unique_school()
    days = scenario.days()
    items = scenario.samples(scenario.laptops(s1, s2), days)
    write(stack, db, scenario.line_protocol(items) + summary_lines(items))  # default policy
    (raw,) = influx(stack, f'SELECT count(report) FROM "{db}"."raw"."device" WHERE school=\'{s1}\'')
    assert raw["values"][0][1] == 3 * 4 * 3  # 3 laptops, 4 reports, 3 days: all in `raw`
    cqs = {row[0]: row[1] for s in influx(stack, "SHOW CONTINUOUS QUERIES") if s["name"] == db
           for row in s["values"]}  # fmt: skip
    start = int(scenario.at(days[0], time(0, 0)).timestamp() // 86400 * 86400 * 1000)
    end = start + 4 * 86_400_000
    for cq in cqs.values():
        _run_stored_select(stack, db, cq, start, end)
    daily = f'"{db}"."daily"'
    # d1: health 55, 400 cycles, reports at 20, 80, 60 and 40 % (all within one UTC day),
    # plugged once of four.
    (bat,) = influx(stack, f"SELECT * FROM {daily}.\"battery\" WHERE device='d1' AND school='{s1}'")
    rows = [dict(zip(bat["columns"], r, strict=True)) for r in bat["values"]]
    assert len(rows) == 3
    first_day_ms = int(scenario.at(days[0], time(12, 0)).timestamp() // 86400 * 86400 * 1000)
    assert [r["time"] for r in rows] == [first_day_ms + i * 86_400_000 for i in range(3)]
    for r in rows:
        assert [r["health_pct"], r["health_min_pct"], r["cycle_count"], r["percent"]] == [
            55.0, 55.0, 400, 50.0]  # fmt: skip
        assert r["plugged_ratio"] == 0.25 and r["model"] == "M-A" and r["battery"] == "BAT0"
    (wifi,) = influx(stack, f"SELECT * FROM {daily}.\"wifi\" WHERE device='d3' AND school='{s1}'")
    row = dict(zip(wifi["columns"], wifi["values"][0], strict=True))
    assert [row["rssi_dbm"], row["rssi_min_dbm"], row["disconnects"], row["reports"]] == [
        -75.0, -80.0, 4, 4]  # fmt: skip
    assert row["bssid_hash"] == scenario.AP_B
    (dev,) = influx(stack, f"SELECT sum(reports) FROM {daily}.\"device\" WHERE school='{s1}'")
    assert dev["values"][0][1] == 36
    (summ,) = influx(stack, f"SELECT * FROM {daily}.\"school_summary\" WHERE school='{s1}'")
    row = dict(zip(summ["columns"], summ["values"][0], strict=True))
    assert [row["devices_reporting_max"], row["health_lt60"], row["health_60_80"],
            row["health_ge80"], row["devices_known"]] == [3, 1, 1, 1, 3]  # fmt: skip
    assert row["disconnects"] == 4  # d3's one disconnect per report


# --- InfluxDB 2: stand-in only ------------------------------------------------------------


ORG_ID = "0a1b2c3d4e5f6071"  # InfluxDB 2 IDs are 16 hex digits; the client checks the form


class FakeInflux2:
    """Keeps orgs, buckets, DBRP mappings and tasks the way InfluxDB 2.7 answers them
    (the models influxdb-client deserialises: every object has its `id`)."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, dict[str, list[str]], str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.buckets: dict[str, dict[str, Any]] = {}
        self.tasks: dict[str, dict[str, Any]] = {}
        self.dbrps: list[dict[str, Any]] = []
        self.fail: dict[tuple[str, str], int] = {}  # (method, path) -> status
        self.ids = 0

    def new_id(self) -> str:
        self.ids += 1
        return f"{0xB000000000000000 + self.ids:016x}"

    def answer(
        self, method: str, path: str, query: dict[str, list[str]], body: Any
    ) -> tuple[int, Any]:
        one = {k: v[0] for k, v in query.items()}
        if (method, path) in self.fail:
            return self.fail[(method, path)], {"code": "forbidden", "message": "stand-in failure"}
        parts = path.strip("/").split("/")
        match method, parts:
            case "GET", ["api", "v2", "orgs"]:
                found = [{"id": ORG_ID, "name": "lordi"}] if one.get("org") == "lordi" else []
                return 200, {"orgs": found}
            case "GET", ["api", "v2", "buckets"]:
                return 200, {
                    "buckets": [
                        b
                        for b in self.buckets.values()
                        if b["name"] == one.get("name") and b["orgID"] == one.get("orgID")
                    ]
                }
            case "POST", ["api", "v2", "buckets"]:
                bucket = {**body, "id": self.new_id(), "type": "user"}
                self.buckets[bucket["id"]] = bucket
                return 201, bucket
            case "PATCH", ["api", "v2", "buckets", bucket_id]:
                self.buckets[bucket_id].update(body)
                return 200, self.buckets[bucket_id]
            case "GET", ["api", "v2", "dbrps"]:
                if "orgID" not in one and "org" not in one:
                    return 400, {"code": "invalid", "message": "either org or orgID must be provided"}
                found = [
                    d
                    for d in self.dbrps
                    if d["database"] == one.get("db") and d["retention_policy"] == one.get("rp")
                ]
                return 200, {"content": found}
            case "POST", ["api", "v2", "dbrps"]:
                dbrp = {**body, "id": self.new_id(), "virtual": False}
                self.dbrps.append(dbrp)
                return 201, dbrp
            case "GET", ["api", "v2", "tasks"]:
                found = [t for t in self.tasks.values() if t["name"] == one.get("name")]
                return 200, {"tasks": found}
            case "POST", ["api", "v2", "tasks"]:
                name = re.search(r'option task = \{name: "([^"]+)"', body["flux"])
                assert name, "InfluxDB takes the task's name from the Flux option"
                task = {**body, "id": self.new_id(), "name": name.group(1), "every": "1h"}
                self.tasks[task["id"]] = task
                return 201, task
            case "PATCH", ["api", "v2", "tasks", task_id]:
                self.tasks[task_id].update(body)
                return 200, self.tasks[task_id]
        return 404, {"code": "not found", "message": "path not found"}


@pytest.fixture
def influx2() -> Iterator[tuple[FakeInflux2, str]]:
    fake = FakeInflux2()

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            url = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            query = parse_qs(url.query)
            fake.requests.append(
                (self.command, url.path, query, self.headers.get("Authorization", ""), body)
            )
            fake.headers.append(dict(self.headers))
            status, doc = fake.answer(self.command, url.path, query, body)
            out = json.dumps(doc).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        do_GET = do_POST = do_PATCH = _serve

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_influxdb2_buckets_dbrps_and_task(
    influx2: tuple[FakeInflux2, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fake, url = influx2
    monkeypatch.setenv("LORDI_INFLUX_TOKEN", "tok-not-a-secret")
    args = ["retention", "influxdb2", "--url", url, "--org", "lordi", "--bucket", "lordi"]
    assert cli.main(args) == 0
    assert all(r[3] == "Token tok-not-a-secret" for r in fake.requests)
    assert all(h["User-Agent"].startswith("influxdb-client-python/") for h in fake.headers)
    lookups = [(p, {k: v[0] for k, v in q.items()}) for m, p, q, _a, _b in fake.requests
               if m == "GET"]  # fmt: skip
    assert lookups[0] == ("/api/v2/orgs", {"org": "lordi"})
    assert ("/api/v2/buckets", {"orgID": ORG_ID, "name": "lordi_daily"}) in lookups
    assert ("/api/v2/dbrps", {"orgID": ORG_ID, "db": "lordi", "rp": "daily"}) in lookups
    assert ("/api/v2/tasks", {"orgID": ORG_ID, "name": "lordi-daily-lordi"}) in lookups
    posted = [(m, p, b) for m, p, _q, _a, b in fake.requests if m == "POST"]
    assert [p for _m, p, _b in posted] == [
        "/api/v2/buckets", "/api/v2/buckets", "/api/v2/dbrps", "/api/v2/dbrps", "/api/v2/tasks"]  # fmt: skip
    # influxdb-client's PostBucketRequest also sends its default `rp` ("0").
    assert posted[0][2] == {"orgID": ORG_ID, "name": "lordi", "rp": "0",
                            "retentionRules": [{"type": "expire", "everySeconds": 90 * 86400}]}  # fmt: skip
    assert posted[1][2]["name"] == "lordi_daily"
    assert posted[1][2]["retentionRules"] == [{"type": "expire", "everySeconds": 1825 * 86400}]
    raw_id, agg_id = list(fake.buckets)
    assert posted[2][2] == {"orgID": ORG_ID, "bucketID": raw_id, "database": "lordi",
                            "retention_policy": "raw", "default": True}  # fmt: skip
    assert posted[3][2] == {"orgID": ORG_ID, "bucketID": agg_id, "database": "lordi",
                            "retention_policy": "daily", "default": False}  # fmt: skip
    flux = posted[4][2]["flux"]
    assert posted[4][2] == {"orgID": ORG_ID, "status": "active", "flux": flux}
    assert flux == flux_task("lordi-daily-lordi", "lordi", "lordi", "lordi_daily")
    assert 'option task = {name: "lordi-daily-lordi", every: 1h}' in flux
    n_aggregates = sum(len(d.aggregates) for d in DOWNSAMPLES)
    assert flux.count("aggregateWindow(every: 1d") == n_aggregates
    yields = re.findall(r'yield\(name: "([a-z0-9_]+)"\)', flux)
    assert len(set(yields)) == len(yields) == n_aggregates  # Flux wants distinct names
    assert "tok-not-a-secret" not in capsys.readouterr().out
    # Second run with another raw period: buckets patched, task updated, nothing duplicated.
    fake.requests.clear()
    assert cli.main([*args, "--raw-days", "30"]) == 0
    (task_id,) = fake.tasks
    changes = [(m, p, b) for m, p, _q, _a, b in fake.requests if m != "GET"]
    assert [(m, p) for m, p, _b in changes] == [
        ("PATCH", f"/api/v2/buckets/{raw_id}"), ("PATCH", f"/api/v2/buckets/{agg_id}"),
        ("PATCH", f"/api/v2/tasks/{task_id}")]  # fmt: skip
    assert changes[0][2] == {"name": "lordi",
                             "retentionRules": [{"type": "expire", "everySeconds": 30 * 86400}]}  # fmt: skip
    assert changes[2][2] == {"flux": flux}
    assert fake.buckets[raw_id]["retentionRules"][0]["everySeconds"] == 30 * 86400
    assert len(fake.buckets) == 2 and len(fake.tasks) == 1 and len(fake.dbrps) == 2
    assert "task lordi-daily-lordi: updated" in capsys.readouterr().out


def test_influxdb2_errors_name_the_endpoint(
    influx2: tuple[FakeInflux2, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fake, url = influx2
    monkeypatch.delenv("LORDI_INFLUX_TOKEN", raising=False)
    args = ["retention", "influxdb2", "--url", url, "--org", "nobody"]
    assert cli.main(args) == 2
    assert "no token" in capsys.readouterr().err
    monkeypatch.setenv("LORDI_INFLUX_TOKEN", "tok")
    assert cli.main(args) == 2
    assert "no organisation named 'nobody'" in capsys.readouterr().err
    assert cli.main(["retention", "influxdb2", "--url", url + "/nope"]) == 2
    assert "InfluxDB GET /api/v2/orgs: HTTP 404" in capsys.readouterr().err
    fake.fail[("POST", "/api/v2/tasks")] = 403
    assert cli.main(["retention", "influxdb2", "--url", url]) == 2
    err = capsys.readouterr().err
    assert "InfluxDB POST /api/v2/tasks: HTTP 403: stand-in failure" in err and "tok" not in err
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    assert cli.main(["retention", "influxdb2", "--url", f"http://127.0.0.1:{port}"]) == 2
    assert capsys.readouterr().err.startswith("error: InfluxDB GET /api/v2/orgs: ")
