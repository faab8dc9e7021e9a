"""Validated samples -> InfluxDB line protocol: exact lines, escaping, types, timestamps."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from collector.contract import Sample
from collector.lineproto import append_message, epoch_ms, to_lines, version_field

SCHOOL, DEVICE, VERSION = "0341234A", "dev-1", "1.2.0"
# 2024-03-01T08:30:15.987654Z; samples are validated with a recent ts (the contract
# refuses old ones) and then moved to this instant so the expected lines are literal.
FIXED_TS = datetime(2024, 3, 1, 8, 30, 15, 987654, tzinfo=UTC)
FIXED_MS = "1709281815987"
HASH = "0123456789abcdef"


def recent_ts() -> str:
    return (datetime.now(UTC) - timedelta(hours=1)).isoformat().replace("+00:00", "Z")


def full_sample_doc() -> dict[str, Any]:
    return {
        "ts": recent_ts(),
        "os": {"platform": "linux", "release": "6.1.0"},
        "batteries": [
            {
                "name": "BAT0",
                "present": True,
                "status": "discharging",
                "percent": 71.5,
                "plugged": False,
                "design_capacity_mwh": 57020.0,
                "full_capacity_mwh": 42490.0,
                "health_pct": 74.52,
                "cycle_count": 73,
                "voltage_mv": 11800.0,
                "temperature_c": 31.4,
                "manufacturer": "SMP",
                "model": "01AV430",
                "technology": "Li-poly",
            }
        ],
        "wifi": {
            "interface": "wlp0s20f3",
            "connected": True,
            "ssid": "LORDI-EDU",
            "ssid_state": "school",
            "on_school_network": True,
            "bssid_hash": HASH,
            "rssi_dbm": -61,  # an integer in JSON is still a float field
            "signal_pct": 78.0,
            "noise_dbm": -92.0,
            "channel": 36,
            "band_ghz": 5.0,
            "rx_rate_mbps": 702.0,
            "tx_rate_mbps": 866.7,
            "radio": "802.11ac",
            "rssi_min_dbm": -70.0,
            "disconnects": 2,
            "connected_s": 280.0,
        },
        "connectivity": {
            "broker_rtt_ms": 42.5,
            "dns_ok": True,
            "gateway_ok": False,
            "broker_ok": True,
            "school_online_s": 120.0,
            "school_unreachable_s": 180.0,
            "connect_delay_s": 175.5,
            "failure": "tls",
            "failed_attempts": 4,
        },
        "agent": {"spool_pending": 3, "spool_dropped": 0},
    }


def sample_at(doc: dict[str, Any], ts: datetime = FIXED_TS) -> Sample:
    return Sample.model_validate_json(json.dumps(doc)).model_copy(update={"ts": ts})


def lines_for(doc: dict[str, Any], ts: datetime = FIXED_TS) -> list[str]:
    return to_lines(SCHOOL, DEVICE, VERSION, sample_at(doc, ts))


def line_of(lines: list[str], measurement: str) -> str:
    found = [ln for ln in lines if ln.startswith(measurement + ",")]
    assert len(found) == 1, lines
    return found[0]


def test_full_sample_gives_exact_lines() -> None:
    base = f"school={SCHOOL},device={DEVICE}"
    assert lines_for(full_sample_doc()) == [
        f"device,{base} report=1i,batteries=1i,spool_pending=3i,spool_dropped=0i,"
        f'platform="linux",os_release="6.1.0",agent_version="1.2.0" {FIXED_MS}',
        f"battery,{base},battery=BAT0,model=01AV430 percent=71.5,design_capacity_mwh=57020.0,"
        "full_capacity_mwh=42490.0,health_pct=74.52,voltage_mv=11800.0,temperature_c=31.4,"
        'present=1i,plugged=0i,cycle_count=73i,status_code=2i,status="discharging",'
        f'manufacturer="SMP",technology="Li-poly" {FIXED_MS}',
        f"wifi,{base},bssid_hash={HASH} rssi_dbm=-61.0,signal_pct=78.0,noise_dbm=-92.0,"
        "band_ghz=5.0,rx_rate_mbps=702.0,tx_rate_mbps=866.7,rssi_min_dbm=-70.0,"
        "connected_s=280.0,connected=1i,on_school_network=1i,channel=36i,disconnects=2i,"
        f'ssid_state_code=1i,ssid="LORDI-EDU",ssid_state="school",radio="802.11ac",'
        f'interface="wlp0s20f3" {FIXED_MS}',
        f"connectivity,{base},bssid_hash={HASH} broker_rtt_ms=42.5,dns_ok=1i,gateway_ok=0i,"
        "broker_ok=1i,school_online_s=120.0,school_unreachable_s=180.0,connect_delay_s=175.5,"
        f'failed_attempts=4i,failure_code=4i,failure="tls" {FIXED_MS}',
    ]


@pytest.mark.parametrize(
    ("name", "model", "expected_tags"),
    [
        ("Main Battery", "L19L3PD1", r"battery=Main\ Battery,model=L19L3PD1"),
        ("BAT,0", "A=B", r"battery=BAT\,0,model=A\=B"),
        ("BAT0", "Li ion,4=cell", r"battery=BAT0,model=Li\ ion\,4\=cell"),
        # a backslash before a separator would escape it: it becomes a slash
        ("ACPI\\BAT0", "01AV430\\", "battery=ACPI/BAT0,model=01AV430/"),
    ],
)
def test_battery_tags_are_escaped(name: str, model: str, expected_tags: str) -> None:
    doc = full_sample_doc()
    doc["batteries"][0].update(name=name, model=model)
    line = line_of(lines_for(doc), "battery")
    assert line.startswith(f"battery,school={SCHOOL},device={DEVICE},{expected_tags} ")
    assert line.endswith(f" {FIXED_MS}")


def test_model_tag_only_when_known() -> None:
    doc = full_sample_doc()
    doc["batteries"][0]["model"] = None
    line = line_of(lines_for(doc), "battery")
    assert line.startswith(f"battery,school={SCHOOL},device={DEVICE},battery=BAT0 percent=71.5,")
    assert "model" not in line


@pytest.mark.parametrize(
    ("manufacturer", "expected"),
    [
        ('Say "hi"', r'manufacturer="Say \"hi\""'),
        ("C:\\vendor", r'manufacturer="C:\\vendor"'),
        ('end\\"', r'manufacturer="end\\\""'),
        ("a b,c=d", 'manufacturer="a b,c=d"'),  # no tag escaping inside quotes
    ],
)
def test_string_fields_are_escaped(manufacturer: str, expected: str) -> None:
    doc = full_sample_doc()
    doc["batteries"][0]["manufacturer"] = manufacturer
    line = line_of(lines_for(doc), "battery")
    assert f",{expected}," in line


def test_integers_carry_i_and_floats_never_do() -> None:
    doc = full_sample_doc()
    doc["wifi"].update(rssi_dbm=-50, noise_dbm=-90, channel=1, disconnects=0)
    doc["batteries"][0].update(cycle_count=0, percent=100, health_pct=100)
    wifi = line_of(lines_for(doc), "wifi")
    battery = line_of(lines_for(doc), "battery")
    assert "rssi_dbm=-50.0," in wifi and "noise_dbm=-90.0," in wifi
    assert ",channel=1i," in wifi and ",disconnects=0i," in wifi
    assert ",cycle_count=0i," in battery
    assert "percent=100.0," in battery and ",health_pct=100.0," in battery


def test_booleans_are_0_1_integers() -> None:
    doc = full_sample_doc()
    doc["batteries"][0].update(present=False, plugged=True)
    doc["wifi"].update(connected=False, on_school_network=False, ssid_state="not_connected")
    doc["connectivity"].update(dns_ok=False, gateway_ok=True, broker_ok=False)
    lines = lines_for(doc)
    battery, wifi = line_of(lines, "battery"), line_of(lines, "wifi")
    assert ",present=0i,plugged=1i," in battery
    assert ",connected=0i,on_school_network=0i," in wifi
    assert ",ssid_state_code=0i," in wifi
    assert ",dns_ok=0i,gateway_ok=1i,broker_ok=0i," in line_of(lines, "connectivity")
    assert "true" not in " ".join(lines).lower()
    assert "false" not in " ".join(lines).lower()


def test_null_fields_are_omitted() -> None:
    doc = full_sample_doc()
    doc["batteries"][0] = {"name": "BAT1", "present": True, "status": "unknown"}
    doc["agent"] = None
    doc["connectivity"] = {"broker_rtt_ms": None, "dns_ok": True}
    doc["os"] = {"platform": "windows"}
    lines = lines_for(doc)
    assert line_of(lines, "battery") == (
        f"battery,school={SCHOOL},device={DEVICE},battery=BAT1 "
        f'present=1i,status_code=0i,status="unknown" {FIXED_MS}'
    )
    assert line_of(lines, "device") == (
        f"device,school={SCHOOL},device={DEVICE} "
        f'report=1i,batteries=1i,platform="windows",agent_version="1.2.0" {FIXED_MS}'
    )
    assert line_of(lines, "connectivity") == (
        f"connectivity,school={SCHOOL},device={DEVICE},bssid_hash={HASH} dns_ok=1i {FIXED_MS}"
    )


def test_connectivity_line_carries_the_access_point_of_the_reading() -> None:
    doc = full_sample_doc()
    doc["wifi"] = None
    plain = line_of(lines_for(doc), "connectivity")
    assert plain.startswith(f"connectivity,school={SCHOOL},device={DEVICE} broker_rtt_ms=")
    codes_only = to_lines(SCHOOL, DEVICE, VERSION, sample_at(full_sample_doc()), strings=False)
    connectivity = line_of(codes_only, "connectivity")
    assert ",failure_code=4i " in connectivity and 'failure="' not in connectivity


def test_no_wifi_or_connectivity_line_when_absent() -> None:
    doc = full_sample_doc()
    doc["wifi"] = None
    doc["connectivity"] = None
    doc["batteries"] = []
    lines = lines_for(doc)
    assert len(lines) == 1
    assert lines[0].startswith(f"device,school={SCHOOL},device={DEVICE} report=1i,batteries=0i,")


def test_connectivity_with_only_nulls_gives_no_line() -> None:
    doc = full_sample_doc()
    doc["connectivity"] = {"broker_rtt_ms": None, "dns_ok": None, "gateway_ok": None}
    assert [ln.split(",", 1)[0] for ln in lines_for(doc)] == ["device", "battery", "wifi"]


def test_two_batteries_give_two_lines() -> None:
    doc = full_sample_doc()
    doc["batteries"].append({"name": "BAT1", "present": False, "status": "unknown"})
    lines = lines_for(doc)
    assert [ln.split(" ", 1)[0].split(",")[0] for ln in lines] == [
        "device",
        "battery",
        "battery",
        "wifi",
        "connectivity",
    ]
    assert ",batteries=2i," in lines[0]
    assert lines[2].startswith(f"battery,school={SCHOOL},device={DEVICE},battery=BAT1 present=0i,")


@pytest.mark.parametrize(
    ("ts", "expected_ms"),
    [
        (FIXED_TS, 1709281815987),  # microseconds are floored, never rounded up
        (datetime(2024, 3, 1, 8, 30, 15, 999999, tzinfo=UTC), 1709281815999),
        (datetime(2024, 3, 1, 8, 30, 15, tzinfo=UTC), 1709281815000),
        (datetime(2024, 3, 1, 8, 30, 15, 1000, tzinfo=UTC), 1709281815001),
        (datetime(2024, 3, 1, 8, 30, 15, 999, tzinfo=UTC), 1709281815000),
        (datetime(1970, 1, 1, tzinfo=UTC), 0),
    ],
)
def test_timestamps_are_exact_milliseconds(ts: datetime, expected_ms: int) -> None:
    lines = lines_for(full_sample_doc(), ts)
    assert all(ln.endswith(f" {expected_ms}") for ln in lines)
    assert all(ln.rsplit(" ", 1)[1] == str(expected_ms) for ln in lines)


def test_validated_offset_timestamp_is_the_same_instant() -> None:
    now = datetime.now(UTC).replace(microsecond=456789) - timedelta(hours=2)
    doc = full_sample_doc()
    doc["ts"] = now.astimezone(timezone(timedelta(hours=2))).isoformat()
    lines = to_lines(SCHOOL, DEVICE, VERSION, Sample.model_validate_json(json.dumps(doc)))
    expected = int(now.replace(microsecond=0).timestamp()) * 1000 + 456
    assert {ln.rsplit(" ", 1)[1] for ln in lines} == {str(expected)}


def test_bssid_hash_tag_only_when_present() -> None:
    doc = full_sample_doc()
    assert line_of(lines_for(doc), "wifi").startswith(
        f"wifi,school={SCHOOL},device={DEVICE},bssid_hash={HASH} rssi_dbm="
    )
    doc["wifi"].update(bssid_hash=None, ssid=None, ssid_state="other", on_school_network=False)
    wifi = line_of(lines_for(doc), "wifi")
    assert wifi.startswith(f"wifi,school={SCHOOL},device={DEVICE} rssi_dbm=-61.0,")
    assert "bssid_hash" not in wifi
    assert ",ssid_state_code=2i," in wifi and 'ssid_state="other"' in wifi
    assert "ssid=" not in wifi.replace("ssid_state", "")


def test_hidden_by_os_keeps_signal_without_identity() -> None:
    doc = full_sample_doc()
    doc["wifi"].update(
        ssid=None, ssid_state="hidden_by_os", on_school_network=None, bssid_hash=None
    )
    wifi = line_of(lines_for(doc), "wifi")
    assert wifi.startswith(f"wifi,school={SCHOOL},device={DEVICE} rssi_dbm=-61.0,")
    assert ",connected=1i,channel=36i," in wifi
    assert ",ssid_state_code=3i," in wifi and "on_school_network" not in wifi


def test_without_string_fields_the_lines_are_the_same_minus_their_strings() -> None:
    """`[store] string_fields = false` (VictoriaMetrics) drops exactly the quoted fields."""
    doc = full_sample_doc()
    doc["wifi"]["ssid"] = 'A"b\\c'  # escaped in the full lines
    sample = Sample.model_validate_json(json.dumps(doc))
    full = to_lines("0350001A", "dev-1", "1.0", sample)
    lean = to_lines("0350001A", "dev-1", "1.0", sample, strings=False)
    assert len(full) == len(lean) == 4
    assert sum(line.count('"') for line in full) > 0
    for with_strings, without in zip(full, lean, strict=True):
        key, fields, ts = with_strings.split(" ")
        numbers = [kv for kv in fields.split(",") if '"' not in kv]
        assert without == f"{key} {','.join(numbers)} {ts}"


def test_remembered_numbers_are_written_as_repr_and_the_memory_stays_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The repr cache (lineproto._float) changes no text: -0.0 after 0.0 stays -0.0,
    and the cache is emptied, not grown, past its bound."""
    from collector import lineproto  # noqa: PLC0415

    monkeypatch.setattr(lineproto, "_FLOATS_MAX", 5)
    lineproto._floats.clear()  # other tests' numbers
    doc = full_sample_doc()
    texts = []
    values = (-0.0, 0.0, -0.0, -61.5, -61.5, -62.25, -1e-5, -3.0, -4.0, -5.0, -6.0)
    for rssi in values:
        doc["wifi"]["rssi_dbm"] = rssi
        sample = Sample.model_validate_json(json.dumps(doc))
        line = to_lines("0350001A", "dev-1", "1.0", sample)[2]
        texts.append(line.split("rssi_dbm=")[1].split(",")[0])
        assert len(lineproto._floats) <= 5
    assert texts == [repr(v) for v in values]


@pytest.mark.parametrize("strings", [True, False])
def test_a_message_at_a_time_gives_the_lines_of_each_sample(strings: bool) -> None:
    """`append_message` builds each series key once per message: the lines must be
    those of `to_lines` sample by sample, keys changing within the message."""
    docs = []
    for i, (name, model, bssid) in enumerate(
        [("BAT0", "M-A", "0123456789abcdef"), ("BAT0", None, None), ("BAT1", "M-A", None),
         ("BAT0", "M-A", "0123456789abcdef"), ("BAT0", "M B,=x", "fedcba9876543210")]
    ):
        doc = full_sample_doc()
        doc["ts"] = (datetime.now(UTC) - timedelta(minutes=10 - i)).isoformat()
        doc["batteries"][0] |= {"name": name, "model": model}
        doc["wifi"]["bssid_hash"] = bssid
        if i == 2:
            doc["wifi"] = None
            doc["batteries"].append({**doc["batteries"][0], "name": "BAT0"})
        docs.append(doc)
    samples = [Sample.model_validate_json(json.dumps(d)) for d in docs]
    expected = [
        line for s in samples for line in to_lines("0350001A", "dev-1", "1.0", s, strings=strings)
    ]
    got = append_message(
        [], "0350001A", "dev-1", version_field("1.0"), samples,
        ts_ms=[epoch_ms(s.ts) for s in samples], strings=strings,
    )
    assert got == expected
    assert len({line.split(" ")[0] for line in got}) >= 7  # the keys did change
