"""Property-based fuzzing of the collector's validation (hypothesis).

- `check_message` raises nothing but `MessageRejected`, whatever the bytes or topic;
- `build_batch` on a valid message with random mutations never raises, never accepts
  a sample that breaks the contract's invariants (checked here independently of the
  pydantic models: finite numbers in their physical ranges, plain text, a plausible
  time, the topic's school and device), and every line it produces parses as
  InfluxDB line protocol (with a strict parser written for this test)."""

from __future__ import annotations

import contextlib
import json
import math
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from collector.ingest import build_batch
from collector.samples import Sample
from collector.validate import MessageRejected, check_message
from tests import helpers

SCHOOL, DEVICE = "0341234A", "dev-fuzz"
TOPIC = f"lordi/v1/{SCHOOL}/{DEVICE}/telemetry"
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# (lower, upper) bounds of every numeric field of the v1 contract (design.md), by name.
RANGES = {
    "percent": (0, 100),
    "signal_pct": (0, 100),
    "health_pct": (0, 200),
    "design_capacity_mwh": (0, 1e6),
    "full_capacity_mwh": (0, 1e6),
    "cycle_count": (0, 1e5),
    "voltage_mv": (0, 1e5),
    "temperature_c": (-40, 150),
    "rssi_dbm": (-120, 0),
    "rssi_min_dbm": (-120, 0),
    "noise_dbm": (-130, 0),
    "channel": (1, 233),
    "band_ghz": (0, 70),
    "rx_rate_mbps": (0, 1e5),
    "tx_rate_mbps": (0, 1e5),
    "disconnects": (0, 1e5),
    "connected_s": (0, 31 * 86400),
    "broker_rtt_ms": (0, 6e5),
    "school_online_s": (0, 31 * 86400),
    "school_unreachable_s": (0, 31 * 86400),
    "connect_delay_s": (0, 31 * 86400),
    "failed_attempts": (0, 1e5),
    "spool_pending": (0, 1e7),
    "spool_dropped": (0, 1e7),
}
CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def full_sample() -> dict[str, Any]:
    ts = (datetime.now(UTC) - timedelta(hours=1)).replace(microsecond=0)
    return helpers.full_sample(ts, bssid_hash="0123456789abcdef")


ENVELOPE = {
    "schema": 1,
    "device": DEVICE,
    "school": SCHOOL,
    "agent_version": "1.2.0",
    "samples": [full_sample()],
}
PATHS = helpers.json_paths(ENVELOPE)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**20), max_value=10**20)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=80)
    | st.sampled_from(["", "NaN", "-1", "1e309", "2099-01-01T00:00:00Z", "0341234A", DEVICE]),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)


def _set(doc: Any, path: tuple[Any, ...], value: Any) -> None:
    for part in path[:-1]:
        doc = doc[part]
    doc[path[-1]] = value


@st.composite
def mutated_messages(draw: st.DrawFn) -> bytes:
    doc = json.loads(json.dumps(ENVELOPE))
    for path in draw(st.lists(st.sampled_from(PATHS), min_size=1, max_size=4)):
        # an earlier mutation may have replaced a parent: nothing left to mutate there
        with contextlib.suppress(KeyError, IndexError, TypeError):
            _set(doc, path, draw(json_values))
    if draw(st.booleans()) and isinstance(doc.get("samples"), list):
        doc["samples"] = doc["samples"] * draw(st.integers(1, 3))
    return json.dumps(doc, allow_nan=True).encode()


def check_invariants(sample: Sample) -> None:
    now = datetime.now(UTC)
    assert sample.ts.tzinfo is not None
    assert now - timedelta(days=401) <= sample.ts <= now + timedelta(hours=1, minutes=1)

    def walk(name: str, value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(k, v)
        elif isinstance(value, list):
            for v in value:
                walk(name, v)
        elif isinstance(value, bool) or value is None:
            return
        elif isinstance(value, int | float):
            assert math.isfinite(value), (name, value)
            low, high = RANGES[name]
            assert low <= value <= high, (name, value)
        elif isinstance(value, str):
            assert not CONTROL.search(value) and len(value) <= 256, (name, value)
        else:
            raise AssertionError(f"{name}: unexpected {type(value).__name__}")

    # Either path's sample (collector.samples): as plain data, the time left out.
    doc = sample.model_dump() if isinstance(sample, BaseModel) else msgspec.to_builtins(sample)
    del doc["ts"]
    walk("sample", doc)


# -- a strict line-protocol parser -----------------------------------------------------
_INT = re.compile(r"-?[0-9]+i")
_FLOAT = re.compile(r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")


def _token(line: str, i: int, stops: str) -> tuple[str, int]:
    out = []
    while i < len(line) and line[i] not in stops:
        if line[i] == "\\" and i + 1 < len(line):
            out.append(line[i + 1])
            i += 2
            continue
        out.append(line[i])
        i += 1
    return "".join(out), i


def parse_line(line: str) -> tuple[str, dict[str, str], dict[str, str], int]:
    assert line and "\n" not in line and "\r" not in line, repr(line)
    measurement, i = _token(line, 0, ", ")
    assert measurement, line
    tags: dict[str, str] = {}
    while line[i] == ",":
        key, i = _token(line, i + 1, "=")
        assert line[i] == "=", line
        value, i = _token(line, i + 1, ", ")
        assert key and value, line
        tags[key] = value
    assert line[i] == " ", line
    i += 1
    fields: dict[str, str] = {}
    while True:
        key, i = _token(line, i, "=")
        assert key and line[i] == "=", line
        i += 1
        if line[i] == '"':
            i += 1
            start = i
            while line[i] != '"':
                i += 2 if line[i] == "\\" else 1
            value = line[start:i]
            i += 1
        else:
            value, i = _token(line, i, ", ")
            assert _INT.fullmatch(value) or _FLOAT.fullmatch(value), (key, value, line)
        fields[key] = value
        if line[i] == ",":
            i += 1
            continue
        break
    assert line[i] == " ", line
    stamp = line[i + 1 :]
    assert re.fullmatch(r"-?[0-9]+", stamp), line
    return measurement, tags, fields, int(stamp)


# -- properties --------------------------------------------------------------------


@FUZZ
@given(st.binary(max_size=3000))
def test_arbitrary_bytes_only_ever_raise_message_rejected(payload: bytes) -> None:
    try:
        checked = check_message(TOPIC, payload)
    except MessageRejected as exc:
        assert exc.reason
        return
    for sample in checked.samples:
        check_invariants(sample)


@FUZZ
@given(st.text(max_size=120), st.binary(max_size=200))
def test_arbitrary_topics_only_ever_raise_message_rejected(topic: str, payload: bytes) -> None:
    try:
        check_message(topic, payload)
    except MessageRejected as exc:
        assert exc.reason


@FUZZ
@given(mutated_messages())
def test_mutated_messages_never_crash_nor_let_bad_data_through(payload: bytes) -> None:
    batch = build_batch([(TOPIC, payload)])
    doc = json.loads(payload)
    listed = doc.get("samples") if isinstance(doc, dict) else None
    doc_samples = len(listed) if isinstance(listed, list) else 0
    for school, device, sample in batch.accepted:
        assert (school, device) == (SCHOOL, DEVICE)
        check_invariants(sample)
    assert batch.sample_count == len(batch.accepted)
    if batch.accepted:
        assert batch.rejected_samples + len(batch.accepted) == doc_samples
    reports = 0
    for line in batch.lines:
        measurement, tags, _fields, _stamp = parse_line(line)
        assert tags["school"] == SCHOOL and tags["device"] == DEVICE
        reports += measurement == "device"
    assert reports == len(batch.accepted)
    for letter in batch.dead_letters:
        assert letter.reason and letter.topic == TOPIC


@FUZZ
@given(
    st.lists(
        st.sampled_from(["ssid", "manufacturer", "model", "release", "name", "radio"]),
        min_size=1,
        max_size=3,
    ),
    st.text(max_size=64),
)
def test_any_printable_text_in_string_fields_gives_parsable_lines(
    keys: list[str], text: str
) -> None:
    doc = json.loads(json.dumps(ENVELOPE))
    sample = doc["samples"][0]
    for key in keys:
        target = (
            sample["os"]
            if key == "release"
            else sample["wifi"]
            if key in ("ssid", "radio")
            else sample["batteries"][0]
        )
        target[key] = text or "x"
    batch = build_batch([(TOPIC, json.dumps(doc).encode())])
    for line in batch.lines:
        parse_line(line)
    if batch.accepted:
        check_invariants(batch.accepted[0][2])
