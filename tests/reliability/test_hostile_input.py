"""The hostile-input corpus (corpus/cases.toml) through the real broker into a running
collector, interleaved with valid traffic: every bad message is dead-lettered with a
reason naming the field and the value and counted, none of it reaches the store,
nothing crashes, and every valid sample around it is stored exactly once."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from collector.config import CollectorSettings, IngestSettings, MqttSettings, StoreSettings
from collector.deadletter import to_dead_letter
from collector.ingest import build_batch
from collector.service import Collector
from collector.validate import MessageRejected, check_message
from lordi import vm
from lordi.stack import LocalStack
from tests.helpers import Subscriber, unique_school
from tests.reliability.hostile import Case, corpus_files, listed_files, load_cases
from tests.reliability.servers import (
    duplicates,
    envelope,
    sample_at,
    stored_timestamps,
    stored_total,
    wait_stored_total,
)

DEAD_LETTERS = "lordi/deadletter/v1"


def _publish_in_order(port: int, messages: list[tuple[str, bytes]]) -> None:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        for topic, payload in messages:  # one at a time: the order is the corpus order
            info = client.publish(topic, payload, qos=1)
            info.wait_for_publish(30)
            assert info.is_published(), topic
    finally:
        client.disconnect()
        client.loop_stop()


def _collector(stack: LocalStack, client_id: str) -> Collector:
    collector = Collector(
        CollectorSettings(
            mqtt=MqttSettings(port=stack.mqtt_port, client_id=client_id),
            store=StoreSettings(url=stack.vm_url),
            ingest=IngestSettings(linger_ms=20, retry_initial_s=0.2),
        )
    )
    collector.start()
    assert collector.connected.wait(20)
    return collector


def _cases(school: str) -> list[Case]:
    # a device of its own per case: its dead letters are told apart by their topic
    return load_cases(school, "bad-{i}")


def test_every_corpus_file_is_listed() -> None:
    assert corpus_files() == listed_files()


def test_hostile_corpus_through_a_running_collector(private_stack: LocalStack) -> None:
    school = unique_school()
    cases = [c for c in _cases(school) if c.known_bug is None]
    base = (datetime.now(UTC) - timedelta(hours=2)).replace(microsecond=0)
    messages: list[tuple[str, bytes]] = []
    valid = 0
    for i, case in enumerate(cases):
        device = f"good-{i % 3}"
        ts = base + timedelta(seconds=i)
        topic = f"lordi/v1/{school}/{device}/telemetry"
        messages += [
            (topic, envelope(school, device, [sample_at(ts, 90.0)])),
            (case.topic, case.payload),
        ]
        valid += 1
    last = base + timedelta(seconds=len(cases))
    messages.append(
        (f"lordi/v1/{school}/good-0/telemetry", envelope(school, "good-0", [sample_at(last, 90.0)]))
    )
    valid += 1
    expected_letters = sum(c.rejections for c in cases)
    dead = Subscriber(private_stack, DEAD_LETTERS)
    collector = _collector(private_stack, "hostile-collector")
    try:
        _publish_in_order(private_stack.mqtt_port, messages)
        # the last valid message stored: the collector went through the whole corpus
        assert wait_stored_total(private_stack.vm_url, school, valid, timeout_s=60) == valid
        assert dead.wait_for(lambda m: len(m) >= expected_letters, timeout_s=30), len(dead.messages)
        time.sleep(1.0)  # a stray extra dead letter or sample would arrive now
        stats = collector.stats.as_dict()
    finally:
        collector.stop()
        dead.close()
    letters: list[dict[str, Any]] = [json.loads(p) for _, p, _ in dead.messages]
    problems = []
    for case in cases:
        mine = [d for d in letters if d["topic"] == case.topic]
        want_index = None if case.level == "message" else 0
        if len(mine) != case.rejections:
            problems.append(f"{case.name}: {len(mine)} dead letters")
        for letter in mine:
            if case.reason not in letter["reason"]:
                problems.append(f"{case.name}: reason {letter['reason']!r}")
            if letter["sample_index"] != want_index:
                problems.append(f"{case.name}: sample_index {letter['sample_index']}")
    assert problems == []
    assert len(letters) == expected_letters
    # counted
    assert stats["rejected_messages"] == sum(c.level == "message" for c in cases)
    assert stats["rejected_samples"] == sum(c.rejections for c in cases if c.level == "sample")
    assert stats["samples_written"] == valid
    # nothing of it reached the store; every valid sample there once
    stamps = stored_timestamps(private_stack.vm_url, school)
    assert set(stamps) == {"good-0", "good-1", "good-2"}
    assert duplicates(stamps) == 0 and sum(len(t) for t in stamps.values()) == valid
    assert stored_total(private_stack.vm_url, "0000000X") == 0  # the school-mismatch case
    vm.force_flush(private_stack.vm_url)
    health = {
        v
        for r in vm.export(private_stack.vm_url, f'battery_health_pct{{school="{school}"}}')
        for v in r["values"]
    }
    assert health == {90.0}
    print(
        f"hostile corpus: {len(cases)} bad messages ({stats['rejected_messages']} rejected whole, "
        f"{stats['rejected_samples']} as samples) interleaved with {valid} valid ones: "
        f"{len(letters)} dead letters, 0 bad values stored, {valid} valid samples stored once"
    )


def _xfail_if(case: Case, *stages: str) -> list[pytest.MarkDecorator]:
    if case.known_bug and case.bug_stage in stages:
        return [pytest.mark.xfail(strict=True, reason=case.known_bug)]
    return []


UNIT_CASES = load_cases("0341234A", "bad-{i}")


@pytest.mark.parametrize(
    "case", [pytest.param(c, id=c.name, marks=_xfail_if(c, "validate")) for c in UNIT_CASES]
)
def test_check_message_rejects_each_corpus_case(case: Case) -> None:
    """The same corpus at the validation function (fast, and names the failing case)."""
    try:
        checked = check_message(case.topic, case.payload)
    except MessageRejected as exc:
        assert case.level == "message" or case.known_bug, exc.reason
        assert case.reason in exc.reason
        return
    assert checked.samples == []
    assert len(checked.rejected) == case.rejections
    assert all(case.reason in r.reason for r in checked.rejected)


@pytest.mark.parametrize(
    "case",
    [pytest.param(c, id=c.name, marks=_xfail_if(c, "deadletter")) for c in UNIT_CASES],
)
def test_each_corpus_case_makes_a_publishable_dead_letter(case: Case) -> None:
    batch = build_batch([(case.topic, case.payload)])
    assert batch.sample_count == 0 and batch.lines == []
    assert len(batch.dead_letters) == case.rejections
    for letter in batch.dead_letters:
        doc = json.loads(to_dead_letter(letter))
        assert doc["reason"] == letter.reason and doc["topic"] == case.topic
