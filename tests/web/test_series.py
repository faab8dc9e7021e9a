"""The charts' telemetry read back from the real VictoriaMetrics and InfluxDB 1.x of
the test stack, written in the collector's own line protocol."""

from __future__ import annotations

import itertools
import json
import time
import urllib.request
from datetime import timedelta

import pytest

from collector.contract import Sample
from collector.lineproto import to_lines
from lordi import vm
from lordi.stack import LocalStack
from lordi.web.config import SeriesSettings
from lordi.web.series import CHARGE, RSSI, SeriesReader, SeriesUnavailable
from tests.helpers import influx_post, minimal_sample, recent

SCHOOL, DEVICE = "0340001A", "dev-series-0001"
PERCENTS = (80.0, 60.0, 40.0)  # three readings, three hours apart


def _lines(device: str) -> list[str]:
    lines: list[str] = []
    for n, percent in enumerate(PERCENTS):
        doc = minimal_sample(recent(60 * 3 * (len(PERCENTS) - n)))
        doc["batteries"][0]["percent"] = percent
        doc["wifi"] = {"connected": True, "ssid_state": "school", "rssi_dbm": -60 - 5 * n}
        lines += to_lines(SCHOOL, device, "1.0.0", Sample.model_validate_json(json.dumps(doc)))
    return lines


def _post(url: str, body: bytes) -> None:
    request = urllib.request.Request(url, data=body, method="POST")  # noqa: S310 - test stack
    with urllib.request.urlopen(request, timeout=10) as resp:  # noqa: S310
        assert resp.status in (200, 204)


def test_victoriametrics_history(stack: LocalStack) -> None:
    device = DEVICE + "-vm"
    _post(f"{stack.vm_url}/write", "\n".join(_lines(device)).encode())
    vm.force_flush(stack.vm_url)
    reader = SeriesReader(SeriesSettings(kind="victoriametrics", url=stack.vm_url))
    charge: list[tuple[object, float]] = []
    for _ in range(50):  # a new series takes a moment to become searchable
        charge = list(reader.history(CHARGE, SCHOOL, device))
        if len(charge) == 3:
            break
        time.sleep(0.2)
    assert [v for _, v in charge] == list(PERCENTS)
    assert [v for _, v in reader.history(RSSI, SCHOOL, device)] == [-60.0, -65.0, -70.0]
    assert reader.history(CHARGE, SCHOOL, "dev-unknown") == []


def test_influxql_history(stack: LocalStack) -> None:
    # (influx_post: a write right after CREATE DATABASE may be answered 404 by InfluxDB
    # 1.x for a moment; it failed here once in a clean-clone run)
    influx_post(f"{stack.influx_url}/query?q=CREATE%20DATABASE%20lordi_web")
    influx_post(
        f"{stack.influx_url}/write?db=lordi_web&precision=ms", "\n".join(_lines(DEVICE)).encode()
    )
    reader = SeriesReader(
        SeriesSettings(kind="influxql", url=stack.influx_url, database="lordi_web")
    )
    charge = reader.history(CHARGE, SCHOOL, DEVICE)
    assert [v for _, v in charge] == list(PERCENTS)
    assert all(b - a >= timedelta(hours=3) for (a, _), (b, _) in itertools.pairwise(charge))
    assert [v for _, v in reader.history(RSSI, SCHOOL, DEVICE)] == [-60.0, -65.0, -70.0]
    # A quote in an id cannot change the query.
    assert reader.history(CHARGE, SCHOOL, "x' OR device =~ /.*/ --") == []


def test_a_store_that_does_not_answer_is_said_not_raised() -> None:
    reader = SeriesReader(SeriesSettings(kind="victoriametrics", url="http://127.0.0.1:9"))
    with pytest.raises(SeriesUnavailable, match=r"127\.0\.0\.1:9"):
        reader.history(CHARGE, SCHOOL, DEVICE)
