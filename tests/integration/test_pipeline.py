"""The whole path on real servers: agent -> Mosquitto -> collector -> VictoriaMetrics."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pytest

from agent.config import MqttConfig
from agent.model import BatteryReading, OsInfo, Reading, WifiReading
from agent.mqtt import Publisher
from agent.privacy import PrivacyPolicy
from agent.runtime import Agent
from agent.spool import Spool
from collector.contract import Sample
from collector.lineproto import to_lines
from lordi import vm
from lordi.stack import LocalStack
from tests.helpers import (
    Subscriber,
    envelope,
    full_sample,
    minimal_sample,
    publish,
    recent,
    running_collector,
    stored_count,
    unique_school,
    wait_stored,
)

SECTION_METRIC = {
    "batteries": "battery",
    "wifi": "wifi",
    "connectivity": "connectivity",
    "agent": "device",
}


class FixedProvider:
    def __init__(self, reading: Reading) -> None:
        self.reading = reading

    def read(self) -> Reading:
        return self.reading


def full_reading() -> Reading:
    return Reading(
        os=OsInfo("linux", "6.1.0"),
        batteries=[
            BatteryReading(
                name="BAT0",
                status="discharging",
                percent=71.5,
                plugged=False,
                design_capacity_mwh=57020.0,
                full_capacity_mwh=42490.0,
                health_pct=74.52,
                cycle_count=73,
                voltage_mv=11800.0,
                temperature_c=31.4,
                manufacturer="SMP",
                model="01AV430",
                technology="Li-poly",
            )
        ],
        wifi=WifiReading(
            interface="wlp0s20f3",
            connected=True,
            ssid="LORDI-EDU",
            bssid="aa:bb:cc:dd:ee:01",
            rssi_dbm=-61.0,
            signal_pct=78.0,
            noise_dbm=-92.0,
            channel=36,
            band_ghz=5.0,
            rx_rate_mbps=702.0,
            tx_rate_mbps=866.7,
            radio="802.11ac",
        ),
    )


def numeric_fields(sample: dict[str, Any]) -> list[tuple[str, float]]:
    """(metric name, expected value) for every numeric or boolean field of a sample."""
    out: list[tuple[str, float]] = []
    for section, measurement in SECTION_METRIC.items():
        parts = sample.get(section) or []
        for part in parts if isinstance(parts, list) else [parts]:
            for key, value in part.items():
                if isinstance(value, bool | int | float) and value is not None:
                    out.append((f"{measurement}_{key}", float(value)))
    return out


def assert_stored(stack: LocalStack, school: str, sample: dict[str, Any]) -> int:
    ts_ms = int(datetime.fromisoformat(sample["ts"].replace("Z", "+00:00")).timestamp() * 1000)
    vm.force_flush(stack.vm_url)
    checked = 0
    for metric, expected in numeric_fields(sample):
        rows = vm.export(stack.vm_url, f'{metric}{{school="{school}"}}')
        assert len(rows) == 1, f"{metric}: {len(rows)} series"
        assert rows[0]["timestamps"] == [ts_ms], f"{metric}: timestamps {rows[0]['timestamps']}"
        assert rows[0]["values"] == [expected], f"{metric}: {rows[0]['values']} != {expected}"
        checked += 1
    return checked


def test_agent_sample_reaches_the_store_field_by_field(stack: LocalStack) -> None:
    school = unique_school()
    ts = recent(10)
    link = Publisher(MqttConfig(port=stack.mqtt_port), school, "dev-rt")
    agent = Agent(
        school,
        "dev-rt",
        provider=FixedProvider(full_reading()),
        link=link,
        spool=Spool(None),
        policy=PrivacyPolicy(frozenset({"LORDI-EDU"}), b"k"),
        clock=lambda: ts,
    )
    with running_collector(stack):
        link.start()
        assert link.connected.wait(10)
        sample = agent.take_sample()
        assert agent.drain(10), "the broker did not acknowledge the sample"
        assert wait_stored(stack, school, 1) == 1
        link.stop()
    assert sample["wifi"]["ssid"] == "LORDI-EDU" and sample["wifi"]["bssid_hash"]
    # The agent's own reach watch fills connectivity from the link it just used:
    # the broker answered, so broker_ok is there; the rest depends on timing.
    connectivity = sample["connectivity"]
    assert connectivity["broker_ok"] is True
    reach = [k for k, v in connectivity.items() if isinstance(v, bool | int | float)]
    checked = assert_stored(stack, school, sample)
    # battery 9 + wifi 12 + agent 2 numeric or boolean fields, and connectivity's
    assert checked == 23 + len(reach)


def test_every_contract_field_round_trips(stack: LocalStack) -> None:
    school = unique_school()
    sample = full_sample(recent(20))
    with running_collector(stack):
        publish(
            stack, f"lordi/v1/{school}/dev-full/telemetry", [envelope(school, "dev-full", [sample])]
        )
        assert wait_stored(stack, school, 1) == 1
    assert assert_stored(stack, school, sample) == 26  # 9 battery, 12 wifi, 3 conn., 2 agent


@pytest.mark.parametrize("string_fields", [True, False])
def test_string_fields_are_series_of_zeros_in_victoriametrics_unless_left_out(
    stack: LocalStack, string_fields: bool
) -> None:
    """Why VictoriaMetrics collectors run with `[store] string_fields = false`: the
    store keeps a string field as a series of zeros; without them, every number is
    still stored and nothing else is."""
    school = unique_school()
    sample = full_sample(recent(20))
    with running_collector(stack, string_fields=string_fields):
        payload = envelope(school, "dev-str", [sample])
        publish(stack, f"lordi/v1/{school}/dev-str/telemetry", [payload])
        assert wait_stored(stack, school, 1) == 1
    assert assert_stored(stack, school, sample) == 26
    rows = vm.export(stack.vm_url, f'{{school="{school}"}}')
    series = {r["metric"]["__name__"]: r["values"] for r in rows}
    strings = {"device_platform", "device_os_release", "device_agent_version", "battery_status",
               "battery_manufacturer", "battery_technology", "wifi_ssid_state", "wifi_radio",
               "wifi_interface"}  # full_sample's ssid is null
    if string_fields:
        assert strings <= series.keys()
        assert all(series[name] == [0] for name in strings)
    else:
        assert not strings & series.keys()
    # Every number of the line protocol, and nothing else (summaries aside).
    numbers = {
        f"{line.split(',')[0]}_{field.split('=')[0]}"
        for line in to_lines(
            school, "dev-str", "test", Sample.model_validate_json(json.dumps(sample)), strings=False
        )
        for field in line.split(" ")[1].split(",")
    }
    assert {n for n in series if not n.startswith("school_")} - strings == numbers


def test_bad_input_is_dead_lettered_and_good_input_around_it_is_stored(stack: LocalStack) -> None:
    school = unique_school()
    topic = f"lordi/v1/{school}/dev-dl/telemetry"
    good = [minimal_sample(recent(30 + i)) for i in range(4)]
    bad_sample = minimal_sample(recent(40), health=512.0)
    messages = [
        envelope(school, "dev-dl", [good[0]]),
        b'{"schema": 1, "device": "dev-dl", "samples": [',  # truncated JSON
        envelope(school, "dev-dl", [good[1]]),
        envelope(school, "dev-dl", [good[2], bad_sample, good[3]]),
        envelope(school, "someone-else", [minimal_sample(recent(50))]),  # topic mismatch
    ]
    dead = Subscriber(stack, "lordi/deadletter/v1")
    try:
        with running_collector(stack):
            publish(stack, topic, messages)
            assert wait_stored(stack, school, 4) == 4
            assert dead.wait_for(lambda m: len(m) >= 3)
    finally:
        dead.close()
    letters = [json.loads(p) for _, p, _ in dead.messages]
    mine = [d for d in letters if d["topic"] == topic]
    reasons = sorted(d["reason"] for d in mine)
    assert len(mine) == 3
    assert any(r.startswith("payload: not JSON") for r in reasons)
    assert (
        "samples[1].batteries[0].health_pct: Input should be less than or equal to 200 (got 512.0)"
        in reasons
    )
    assert "device: 'someone-else' differs from the topic's device 'dev-dl'" in reasons
    sample_letter = next(d for d in mine if d["sample_index"] == 1)
    assert sample_letter["payload"]["batteries"][0]["health_pct"] == 512.0
    # nothing of the rejected input reached the store
    assert stored_count(stack, school) == 4
    vm.force_flush(stack.vm_url)
    values = [
        v
        for r in vm.export(stack.vm_url, f'battery_health_pct{{school="{school}"}}')
        for v in r["values"]
    ]
    assert sorted(values) == [80.0] * 4


def test_the_collector_writes_school_summaries(stack: LocalStack) -> None:
    """The fleet dashboard's per-school series, written by the running collector (all
    open intervals are written when it stops)."""
    school = unique_school()
    with running_collector(stack):
        for device, health in (("dev-s1", 55.0), ("dev-s2", 90.0)):
            publish(
                stack,
                f"lordi/v1/{school}/{device}/telemetry",
                [envelope(school, device, [minimal_sample(recent(30), health=health)])],
            )
        assert wait_stored(stack, school, 2) == 2
    vm.force_flush(stack.vm_url)
    [reporting] = vm.export(stack.vm_url, f'school_summary_devices_reporting{{school="{school}"}}')
    assert reporting["values"] == [2]
