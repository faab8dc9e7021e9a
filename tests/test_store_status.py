"""`lordi store status` against the session's real VictoriaMetrics and InfluxDB 1.6.7:
the collector's own line protocol goes in, the per-school table comes out."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from collector.contract import Sample
from collector.lineproto import to_lines
from collector.store import LineWriter
from lordi import vm
from lordi.cli import main
from lordi.stack import LocalStack, free_port
from tests.helpers import (
    envelope,
    full_sample,
    influx_post,
    minimal_sample,
    publish,
    recent,
    running_collector,
    unique_school,
)

KINDS = ["victoriametrics", "influxdb1"]


def _sample(doc: dict[str, Any]) -> Sample:
    return Sample.model_validate_json(json.dumps(doc))


def _new_db(stack: LocalStack) -> str:
    db = f"status_{uuid.uuid4().hex[:12]}"
    influx_post(f"{stack.influx_url}/query?q=" + urllib.parse.quote(f'CREATE DATABASE "{db}"'))
    return db


def _write(stack: LocalStack, kind: str, db: str, lines: list[str]) -> None:
    """As the collector writes: VictoriaMetrics through its own LineWriter (string
    fields left out, `[store] string_fields = false`); InfluxDB 1.6 through `/write`
    (it has no `/api/v2/write`), strings kept."""
    if kind == "victoriametrics":
        writer = LineWriter(stack.vm_url, "", "lordi", "lordi")
        try:
            writer.write(lines)
        finally:
            writer.close()
        vm.force_flush(stack.vm_url)
    else:
        influx_post(f"{stack.influx_url}/write?db={db}&precision=ms", "\n".join(lines).encode())


def _status(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    rc = main(["store", "status", *args])
    out, err = capsys.readouterr()
    return rc, out, err


def _store_args(stack: LocalStack, kind: str, db: str) -> list[str]:
    if kind == "victoriametrics":
        return ["--url", stack.vm_url]
    return ["--url", stack.influx_url, "--kind", "influxdb1", "--db", db]


def _cells(out: str, school: str) -> list[str]:
    """The table row of `school`, split on the column gaps."""
    rows = [line for line in out.splitlines() if line.startswith(school + " ")]
    assert len(rows) == 1, out
    return re.split(r" {2,}", rows[0])


def _iso(ts: datetime) -> str:
    return ts.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@pytest.fixture
def fleet(stack: LocalStack, request: pytest.FixtureRequest) -> dict[str, Any]:
    """Two schools with known laptops and times, through the collector's line protocol.

    A: laptops a1 (3 samples) and a2 (2 samples), battery and Wi-Fi, last 10 min 20 s ago.
    B: laptop b1 one battery-only sample 3 h ago (and one 30 h ago: outside 24 h), b2
       one sample 20 min 30 s ahead (a fast clock, which the collector accepts).
    """
    kind: str = request.param
    db = _new_db(stack) if kind == "influxdb1" else ""
    now = datetime.now(UTC).replace(microsecond=0)
    a, b = unique_school(), unique_school()
    strings = kind == "influxdb1"
    lines: list[str] = []
    a_times = {"a1": [20 + 10 * 60, 30 * 60, 50 * 60], "a2": [15 * 60, 35 * 60]}
    for device, ages in a_times.items():
        for age_s in ages:
            smp = _sample(full_sample(now - timedelta(seconds=age_s)))
            lines += to_lines(a, device, "1.0.0", smp, strings=strings)
    for device, offset in (("b1", -3 * 3600), ("b1", -30 * 3600), ("b2", 20 * 60 + 30)):
        smp = _sample(minimal_sample(now + timedelta(seconds=offset)))
        lines += to_lines(b, device, "1.0.0", smp, strings=strings)
    _write(stack, kind, db, lines)
    return {
        "kind": kind,
        "db": db,
        "a": a,
        "b": b,
        "a_last": now - timedelta(seconds=620),
        "b_last": now + timedelta(seconds=1230),
        "args": _store_args(stack, kind, db),
    }


@pytest.mark.parametrize("fleet", KINDS, indirect=True)
def test_json_counts_laptops_samples_and_last_report_per_school(
    fleet: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    a, b, c = fleet["a"], fleet["b"], unique_school()
    rc, out, err = _status(
        capsys, *fleet["args"], "--school", a, "--school", b, "--school", c, "--json"
    )
    assert (rc, err) == (0, "")
    doc = json.loads(out)
    by_school = {s["school"]: s for s in doc["schools"]}
    assert [s["school"] for s in doc["schools"]] == [*sorted([a, b]), c]  # no data last
    assert by_school[a] | {"age_s": 0} == {
        "school": a,
        "name": None,
        "laptops": 2,
        "samples": 5,
        "battery_points": 5,
        "wifi_points": 5,
        "last_report": _iso(fleet["a_last"]),
        "age_s": 0,
    }
    assert 620 <= by_school[a]["age_s"] < 660
    # b1's sample of 30 h ago is outside the 24 h window; b2's from a fast clock counts
    assert (by_school[b]["laptops"], by_school[b]["samples"]) == (2, 2)
    assert (by_school[b]["battery_points"], by_school[b]["wifi_points"]) == (2, 0)
    assert by_school[b]["last_report"] == _iso(fleet["b_last"])
    assert -1230 <= by_school[b]["age_s"] < -1190
    assert by_school[c]["last_report"] is None and by_school[c]["samples"] == 0
    assert doc["no_data"] == [c]
    assert (doc["laptops"], doc["samples"]) == (4, 7)
    assert doc["store"]["kind"] == fleet["kind"]


@pytest.mark.parametrize("fleet", KINDS, indirect=True)
def test_table_names_registry_schools_and_lists_those_without_data(
    fleet: dict[str, Any], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    a, b, c = fleet["a"], fleet["b"], unique_school()
    registry = tmp_path / "schools.toml"
    contacts = 'level1 = [{ name = "Ana", email = "ana@example.org" }]\nssids = ["EDU"]\n'
    trades = 'hardware_contractor = "hw"\nnetwork_contractor = "net"\n'
    registry.write_text(
        'fallback_email = "registre@example.org"\n'
        '[contractors.hw]\nname = "HW"\ncategory = "hardware"\nemails = ["hw@example.org"]\n'
        '[contractors.net]\nname = "Net"\ncategory = "network"\nemails = ["n@example.org"]\n'
        f'[schools.{a}]\nname = "Lycée Alpha"\ntown = "Sète"\n{contacts}{trades}'
        f'[schools.{c}]\nname = "Collège Gamma"\ntown = "Agde"\n{contacts}{trades}',
        encoding="utf-8",
    )
    rc, out, err = _status(
        capsys,
        *fleet["args"],
        "--registry",
        str(registry),
        "--school",
        a,
        "--school",
        b,
        "--school",
        c,
    )
    assert (rc, err) == (0, "")
    lines = out.splitlines()
    assert lines[1].split() == [
        "SCHOOL",
        "NAME",
        "LAPTOPS",
        "SAMPLES",
        "BATTERY",
        "WIFI",
        "LAST",
        "REPORT",
        "(UTC)",
    ]
    a_last, b_last = fleet["a_last"], fleet["b_last"]
    assert _cells(out, a) == [
        a,
        "Lycée Alpha",
        "2",
        "5",
        "5",
        "5",
        f"{a_last:%Y-%m-%d %H:%M:%S} (10 min ago)",
    ]
    assert _cells(out, b) == [
        b,
        "(not in registry)",
        "2",
        "2",
        "2",
        "0",
        f"{b_last:%Y-%m-%d %H:%M:%S} (in 20 min: clock ahead)",
    ]
    assert _cells(out, c) == [c, "Collège Gamma", "0", "0", "0", "0", "no data"]
    assert lines[-1] == "2 school(s) with data, 1 without; 4 laptop(s), 7 sample(s)"


@pytest.mark.parametrize("fleet", KINDS, indirect=True)
def test_exit_code_1_when_the_window_holds_nothing(
    fleet: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    """b1's sample of 3 h ago is in a 4 h window, not in a 2 h one; b2's, ahead of
    time, is in both; a school without samples gives exit code 1."""
    b = fleet["b"]
    rc, out, err = _status(capsys, *fleet["args"], "--school", b, "--since", "4h", "--json")
    assert (rc, err, json.loads(out)["samples"]) == (0, "", 2)
    rc, out, err = _status(capsys, *fleet["args"], "--school", b, "--since", "2h", "--json")
    assert (rc, err, json.loads(out)["samples"]) == (0, "", 1)
    silent = unique_school()
    rc, out, err = _status(capsys, *fleet["args"], "--school", silent)
    assert (rc, err) == (1, "")
    assert _cells(out, silent) == [silent, "0", "0", "0", "0", "no data"]
    assert out.splitlines()[-1] == "0 school(s) with data, 1 without; 0 laptop(s), 0 sample(s)"


def test_exit_code_1_on_an_empty_influxdb_database(
    stack: LocalStack, capsys: pytest.CaptureFixture[str]
) -> None:
    db = _new_db(stack)
    rc, out, err = _status(
        capsys, "--url", stack.influx_url, "--kind", "influxdb1", "--db", db, "--json"
    )
    assert (rc, err) == (1, "")
    assert json.loads(out)["schools"] == [] and json.loads(out)["samples"] == 0


@pytest.mark.parametrize("kind", KINDS)
def test_unreachable_store_is_one_error_line(kind: str, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    rc, out, err = _status(capsys, "--url", url, "--kind", kind)
    name = "VictoriaMetrics" if kind == "victoriametrics" else "InfluxDB"
    assert (rc, out) == (2, "")
    assert err == f"error: {name} at {url}: cannot connect: connection refused\n"


def test_missing_influxdb_database_and_wrong_kind(
    stack: LocalStack, capsys: pytest.CaptureFixture[str]
) -> None:
    influx, vmurl = stack.influx_url, stack.vm_url
    rc, out, err = _status(capsys, "--url", influx, "--kind", "influxdb1", "--db", "nope_db")
    assert (rc, out) == (2, "")
    assert err == f"error: InfluxDB at {influx}: database 'nope_db' not found (--db)\n"
    rc, out, err = _status(capsys, "--url", influx)  # InfluxDB read as VictoriaMetrics
    assert (rc, out) == (2, "")
    assert err == (
        f"error: VictoriaMetrics at {influx}: HTTP 404: 404 page not found "
        "(is it VictoriaMetrics? see --kind)\n"
    )
    rc, out, err = _status(capsys, "--url", vmurl, "--kind", "influxdb1")  # and the reverse
    assert (rc, out) == (2, "")
    assert (
        err == f"error: InfluxDB at {vmurl}: unexpected answer (is it InfluxDB 1.x? see --kind)\n"
    )


def test_bad_registry_is_one_error_line(
    stack: LocalStack, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    registry = tmp_path / "schools.toml"
    registry.write_text("fallback_email = \n", encoding="utf-8")
    rc, out, err = _status(capsys, "--url", stack.vm_url, "--registry", str(registry))
    assert (rc, out) == (2, "")
    assert err.startswith(f"error: registry: {registry}: not valid TOML") and err.count("\n") == 1


@pytest.fixture(scope="module")
def influx_with_auth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A private InfluxDB 1.6.7 with `auth-enabled = true`, an admin `root`/`s3cret`
    and an empty database `lordi`."""
    root = tmp_path_factory.mktemp("influx-auth")
    port, rpc = free_port(), free_port()
    conf = root / "influxdb.conf"
    conf.write_text(
        f'reporting-disabled = true\nbind-address = "127.0.0.1:{rpc}"\n'
        f'[meta]\n  dir = "{root}/meta"\n'
        f'[data]\n  dir = "{root}/data"\n  wal-dir = "{root}/wal"\n'
        f'[http]\n  bind-address = "127.0.0.1:{port}"\n  auth-enabled = true\n'
        "  log-enabled = false\n[monitor]\n  store-enabled = false\n",
        encoding="utf-8",
    )
    influxd = shutil.which("influxd") or shutil.which("influxd", path="/usr/bin")
    assert influxd, "influxd not found: run `make bootstrap`"
    log = (root / "influxd.log").open("wb")
    proc = subprocess.Popen([influxd, "-config", str(conf)], stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{url}/ping", timeout=1).close()  # noqa: S310
                break
            except OSError:
                assert time.monotonic() < deadline and proc.poll() is None, "influxd did not start"
                time.sleep(0.1)
        create = "CREATE USER root WITH PASSWORD 's3cret' WITH ALL PRIVILEGES"
        influx_post(f"{url}/query?q=" + urllib.parse.quote(create))
        influx_post(f"{url}/query?u=root&p=s3cret&q=" + urllib.parse.quote("CREATE DATABASE lordi"))
        yield url
    finally:
        proc.terminate()
        proc.wait(15)
        log.close()


def test_influxdb_credentials_from_the_environment(
    influx_with_auth: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    url = influx_with_auth
    base = ["--url", url, "--kind", "influxdb1", "--db", "lordi"]
    monkeypatch.delenv("LORDI_INFLUX_USER", raising=False)
    monkeypatch.delenv("LORDI_INFLUX_PASSWORD", raising=False)
    rc, out, err = _status(capsys, *base)
    assert (rc, out) == (2, "")
    assert err.startswith(f"error: InfluxDB at {url}: HTTP 401: ") and err.count("\n") == 1
    assert err.endswith("(check LORDI_INFLUX_USER and LORDI_INFLUX_PASSWORD: no user set)\n")
    monkeypatch.setenv("LORDI_INFLUX_USER", "root")
    monkeypatch.setenv("LORDI_INFLUX_PASSWORD", "wrong")
    rc, out, err = _status(capsys, *base)
    assert (rc, out) == (2, "")
    assert err == (
        f"error: InfluxDB at {url}: HTTP 401: authorization failed "
        "(check LORDI_INFLUX_USER and LORDI_INFLUX_PASSWORD: user 'root')\n"
    )
    monkeypatch.setenv("LORDI_INFLUX_PASSWORD", "s3cret")
    rc, out, err = _status(capsys, *base, "--json")
    assert (rc, err) == (1, "")  # authenticated: the store answers, holds no samples
    assert json.loads(out)["samples"] == 0


def test_a_report_through_the_real_collector_is_found(
    stack: LocalStack, capsys: pytest.CaptureFixture[str]
) -> None:
    """One message through Mosquitto and the collector; `lordi store status` is then
    what a script waits on: exit code 1 until the samples are visible, then 0."""
    school = unique_school()
    taken = [recent(7), recent(3)]
    args = ["--url", stack.vm_url, "--school", school, "--json"]
    rc, _, err = _status(capsys, *args)
    assert (rc, err) == (1, "")
    with running_collector(stack):
        publish(
            stack,
            f"lordi/v1/{school}/dev-real/telemetry",
            [envelope(school, "dev-real", [full_sample(ts) for ts in taken])],
        )
        deadline = time.monotonic() + 15
        while True:
            # VictoriaMetrics shows a new series by itself after ~10 s (measured 9.7 s
            # here); the flush keeps the test fast.
            vm.force_flush(stack.vm_url)
            rc, out, err = _status(capsys, *args)
            if rc == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    assert (rc, err) == (0, "")
    row = json.loads(out)["schools"][0]
    assert (row["school"], row["laptops"], row["samples"]) == (school, 1, 2)
    assert (row["battery_points"], row["wifi_points"]) == (2, 2)
    assert row["last_report"] == _iso(taken[1])
