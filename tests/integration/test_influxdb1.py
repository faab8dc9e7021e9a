"""The collector's line protocol on a real InfluxDB 1.6.7 (v1 `/write`, InfluxQL `/query`).

Dashboards speak InfluxQL, so the series layout must answer their queries with the
right numbers: integers stay integers, booleans are summable 0/1, tags are escaped,
timestamps are exact to the millisecond.
"""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from collector.contract import Sample
from collector.lineproto import to_lines
from lordi.stack import LocalStack
from tests.helpers import influx_request, unique_school

DB = "lordi"
HASH_A, HASH_B = "00000000000000aa", "00000000000000bb"


def query(stack: LocalStack, q: str) -> list[dict[str, Any]]:
    """The series of the first statement's result (times in epoch milliseconds)."""
    params = urllib.parse.urlencode({"db": DB, "q": q, "epoch": "ms"})
    with urllib.request.urlopen(f"{stack.influx_url}/query?{params}", timeout=10) as resp:  # noqa: S310
        doc = json.loads(resp.read())
    result = doc["results"][0]
    assert "error" not in result, result
    return list(result.get("series", []))


def where(select: str, school: str, device: str | None = None, group_by: str = "") -> str:
    """`select` restricted to one school (and device), optionally grouped."""
    cond = f" WHERE school='{school}'" + (f" AND device='{device}'" if device else "")
    return select + cond + (f" GROUP BY {group_by}" if group_by else "")


def values(stack: LocalStack, q: str) -> list[list[Any]]:
    series = query(stack, q)
    assert len(series) == 1, series
    return list(series[0]["values"])


def by_tag(stack: LocalStack, q: str, tag: str) -> dict[str, list[Any]]:
    """{tag value: first row without its time} for a GROUP BY query."""
    return {s["tags"][tag]: s["values"][0][1:] for s in query(stack, q)}


def ms(ts: datetime) -> int:
    return int(ts.replace(microsecond=0).timestamp()) * 1000 + ts.microsecond // 1000


def sample_doc(
    ts: datetime, health: float, cycles: int, plugged: bool, **wifi: Any
) -> dict[str, Any]:
    return {
        "ts": ts.isoformat().replace("+00:00", "Z"),
        "os": {"platform": "windows", "release": "10.0.22631"},
        "batteries": [
            {
                "name": "BAT0",
                "present": True,
                "status": "charging" if plugged else "discharging",
                "percent": 64.0,
                "plugged": plugged,
                "design_capacity_mwh": 50000.0,
                "full_capacity_mwh": health * 500.0,
                "health_pct": health,
                "cycle_count": cycles,
                "voltage_mv": 12000.0,
                "temperature_c": 33.5,
                "manufacturer": "LGC",
                "model": "L19L3PD1",
                "technology": "Li-ion",
            }
        ],
        "wifi": {
            "interface": "Wi-Fi",
            "connected": True,
            "ssid": "LORDI-EDU",
            "ssid_state": "school",
            "on_school_network": True,
            "channel": 36,
            "band_ghz": 5.0,
            "radio": "802.11ax",
            "connected_s": 300.0,
            **wifi,
        },
        "connectivity": {
            "broker_rtt_ms": 20.0,
            "dns_ok": cycles != 102,
            "gateway_ok": True,
        },
        "agent": {"spool_pending": 0, "spool_dropped": 0},
    }


def sample(ts: datetime, health: float, cycles: int, plugged: bool, **wifi: Any) -> Sample:
    return Sample.model_validate_json(json.dumps(sample_doc(ts, health, cycles, plugged, **wifi)))


@pytest.fixture(scope="module")
def loaded(stack: LocalStack) -> tuple[str, datetime]:
    """One school, two devices: dev-a reports three times, dev-b once."""
    status, body = influx_request(f"{stack.influx_url}/query?q=CREATE%20DATABASE%20{DB}")
    assert status == 200, body
    school = unique_school()
    t0 = datetime.now(UTC).replace(microsecond=123456) - timedelta(hours=2)
    dev_a = [
        # health and rssi arrive as JSON integers in one sample: still float fields
        sample(t0, 80, 100, True, bssid_hash=HASH_A, rssi_dbm=-60.0, disconnects=1),
        sample(t0 + timedelta(minutes=5), 79.5, 101, False, bssid_hash=HASH_A, rssi_dbm=-70),
        sample(
            t0 + timedelta(minutes=10),
            79.0,
            102,
            True,
            bssid_hash=HASH_B,
            rssi_dbm=-50.0,
            disconnects=2,
        ),
    ]
    doc_b = sample_doc(t0, 55.25, 1500, False, rssi_dbm=-75.0, disconnects=0)
    doc_b["batteries"][0].update(
        name="Main Battery,1=a", model="L19\\L3PD1", manufacturer='Say "hi" C:\\x'
    )
    doc_b["wifi"].update(ssid=None, ssid_state="hidden_by_os", on_school_network=None)
    dev_b = Sample.model_validate_json(json.dumps(doc_b))
    lines = [ln for s in dev_a for ln in to_lines(school, "dev-a", "1.2.0", s)]
    lines += to_lines(school, "dev-b", "1.2.0", dev_b)
    status, body = influx_request(
        f"{stack.influx_url}/write?db={DB}&precision=ms", "\n".join(lines).encode()
    )
    assert status == 204, body
    return school, t0


def test_last_health_per_device(stack: LocalStack, loaded: tuple[str, datetime]) -> None:
    school, t0 = loaded
    rows = values(stack, where("SELECT last(health_pct) FROM battery", school, "dev-a"))
    assert rows == [[ms(t0 + timedelta(minutes=10)), 79.0]]
    grouped = by_tag(
        stack,
        where("SELECT last(health_pct) FROM battery", school, group_by="device"),
        "device",
    )
    assert grouped == {"dev-a": [79.0], "dev-b": [55.25]}


def test_timestamps_are_exact_milliseconds(stack: LocalStack, loaded: tuple[str, datetime]) -> None:
    school, t0 = loaded
    rows = values(stack, where("SELECT health_pct, cycle_count FROM battery", school, "dev-a"))
    base = int(t0.replace(microsecond=0).timestamp()) * 1000 + 123  # 123456 µs -> 123 ms
    assert rows == [
        [base, 80.0, 100],
        [base + 300_000, 79.5, 101],
        [base + 600_000, 79.0, 102],
    ]


def test_mean_rssi_per_access_point(stack: LocalStack, loaded: tuple[str, datetime]) -> None:
    school, _ = loaded
    grouped = by_tag(
        stack,
        where("SELECT mean(rssi_dbm) FROM wifi", school, group_by="bssid_hash"),
        "bssid_hash",
    )
    # no hash (the OS hid the network) is its own empty-tag group, not mixed into an AP
    assert grouped == {HASH_A: [-65.0], HASH_B: [-50.0], "": [-75.0]}


def test_report_count(stack: LocalStack, loaded: tuple[str, datetime]) -> None:
    school, _ = loaded
    assert values(stack, where("SELECT count(report) FROM device", school))[0][1:] == [4]
    grouped = by_tag(
        stack,
        where("SELECT count(report), sum(batteries) FROM device", school, group_by="device"),
        "device",
    )
    assert grouped == {"dev-a": [3, 3], "dev-b": [1, 1]}


def test_integer_fields_aggregate_as_integers(
    stack: LocalStack, loaded: tuple[str, datetime]
) -> None:
    school, _ = loaded
    select = "SELECT sum(cycle_count), max(cycle_count), min(cycle_count) FROM battery"
    assert values(stack, where(select, school, "dev-a"))[0][1:] == [303, 102, 100]
    assert values(stack, where("SELECT sum(disconnects) FROM wifi", school))[0][1:] == [3]


def test_booleans_are_summable(stack: LocalStack, loaded: tuple[str, datetime]) -> None:
    school, _ = loaded
    select = "SELECT sum(plugged), mean(plugged), sum(present) FROM battery"
    row = values(stack, where(select, school, "dev-a"))[0]
    assert row[1] == 2 and row[2] == pytest.approx(2 / 3) and row[3] == 3
    select = "SELECT sum(dns_ok), sum(gateway_ok), count(dns_ok) FROM connectivity"
    assert values(stack, where(select, school))[0][1:] == [3, 4, 4]  # dev-a's last: DNS down
    select = "SELECT sum(on_school_network), sum(connected) FROM wifi"
    # dev-b's network was hidden by the OS: unknown, so not counted as school or not
    assert values(stack, where(select, school))[0][1:] == [3, 4]


def test_field_types_are_fixed(stack: LocalStack, loaded: tuple[str, datetime]) -> None:
    assert loaded
    types = {s["name"]: dict(s["values"]) for s in query(stack, "SHOW FIELD KEYS")}
    assert types["battery"]["cycle_count"] == "integer"
    assert types["battery"]["plugged"] == "integer"
    assert types["battery"]["health_pct"] == "float"
    assert types["battery"]["status"] == "string"
    assert types["wifi"]["rssi_dbm"] == "float"
    assert types["wifi"]["channel"] == "integer"
    assert types["device"]["report"] == "integer"
    assert types["connectivity"]["dns_ok"] == "integer"


def test_escaped_tags_and_strings_come_back_intact(
    stack: LocalStack, loaded: tuple[str, datetime]
) -> None:
    school, _ = loaded
    select = "SELECT last(manufacturer) FROM battery"
    series = query(stack, where(select, school, "dev-b", group_by="battery, model"))
    assert [s["tags"] for s in series] == [{"battery": "Main Battery,1=a", "model": "L19/L3PD1"}]
    assert series[0]["values"][0][1] == 'Say "hi" C:\\x'


def test_resent_sample_is_the_same_point(stack: LocalStack, loaded: tuple[str, datetime]) -> None:
    school, t0 = loaded
    again = sample(t0, 80, 100, True, bssid_hash=HASH_A, rssi_dbm=-60.0, disconnects=1)
    status, body = influx_request(
        f"{stack.influx_url}/write?db={DB}&precision=ms",
        "\n".join(to_lines(school, "dev-a", "1.2.0", again)).encode(),
    )
    assert status == 204, body
    select = "SELECT count(report) FROM device"
    assert values(stack, where(select, school, "dev-a"))[0][1:] == [3]
    assert values(stack, where("SELECT count(health_pct) FROM battery", school))[0][1:] == [4]


def test_tiny_floats_in_exponent_form_are_accepted(stack: LocalStack) -> None:
    """Python writes 0.00001 as `1e-05`: the store must read it as the same float."""
    assert influx_request(f"{stack.influx_url}/query?q=CREATE%20DATABASE%20{DB}")[0] == 200
    school = unique_school()
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    doc = sample_doc(t0, 0.00001, 1, False, rssi_dbm=-0.0)
    doc["batteries"][0].update(percent=0.000012, temperature_c=-0.00005)
    lines = to_lines(school, "dev-e", "1.2.0", Sample.model_validate_json(json.dumps(doc)))
    assert "health_pct=1e-05," in lines[1] and "temperature_c=-5e-05," in lines[1]
    status, body = influx_request(
        f"{stack.influx_url}/write?db={DB}&precision=ms", "\n".join(lines).encode()
    )
    assert status == 204, body
    select = "SELECT health_pct, percent, temperature_c FROM battery"
    assert values(stack, where(select, school)) == [[ms(t0), 0.00001, 0.000012, -0.00005]]
    assert values(stack, where("SELECT rssi_dbm FROM wifi", school)) == [[ms(t0), 0.0]]


def test_alert_and_forecast_points_keep_integer_fields(stack: LocalStack) -> None:
    """The schemas of the collector's `alert` points (its own `alert_lines`, via the
    dashboards' scenario) and `forecast` points (read by the School and Fleet
    dashboards): counts, ids and times stay integers, the term name with spaces and
    accents is one tag value, and every alert transition stays its own point - two
    alerts changed at the same time (two access points of one window, two batteries
    of one sample) differ by `alert_key`, so neither overwrites the other."""
    from tests.dashboards import scenario  # noqa: PLC0415 - the dashboards' own fixtures

    assert influx_request(f"{stack.influx_url}/query?q=CREATE%20DATABASE%20{DB}")[0] == 200
    school, other = unique_school(), unique_school()
    days = scenario.days()
    alerts = scenario.alert_lines(school, other, datetime.now(UTC))
    lines = alerts + scenario.forecast_lines(school, other, days)
    status, body = influx_request(
        f"{stack.influx_url}/write?db={DB}&precision=ms", "\n".join(lines).encode()
    )
    assert status == 204, body
    types = {s["name"]: dict(s["values"]) for s in query(stack, "SHOW FIELD KEYS")}
    assert types["alert"] == {"alert_id": "integer", "open": "integer", "since_ms": "integer"}
    assert types["forecast"] == {"devices_below_60": "integer", "devices_below_80": "integer"}
    terms = by_tag(
        stack, where("SELECT last(devices_below_80) FROM forecast", school, group_by="term"), "term"
    )
    assert terms == {scenario.TERM_1: [2], scenario.TERM_2: [1], "before": [0]}
    opened = values(stack, where("SELECT sum(open), count(open) FROM alert", school))[0][1:]
    # 17 transitions of the school: 12 alerts opened, one re-opened, 4 resolved.
    assert sum(f"school={school}," in line for line in alerts) == 17
    assert opened == [13, 17]
    keys = by_tag(
        stack, where("SELECT count(open) FROM alert", school, group_by="alert_key"), "alert_key"
    )
    assert len(keys) == 12 and keys[f"{school}/ap/{scenario.AP_A}/wifi_ap_fault"] == [1]
