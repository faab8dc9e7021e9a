"""The msgspec fast path never accepts what the pydantic contract refuses, and what
it accepts reads the same (values, types, line protocol, summaries) as pydantic's.

Messages are generated: valid ones (the fast path must take them, or the collector
would silently be slow), and valid ones with one to three mutations drawn from
values that sit on the contract's edges (bounds, lengths, control characters,
lone surrogates, odd timestamp spellings, wrong types, unknown and missing keys).
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from collector import fastpath
from collector.contract import Envelope
from collector.lineproto import epoch_ms, to_lines
from collector.summaries import summary_lines
from collector.validate import check_message
from tests.helpers import full_sample, json_paths, minimal_sample

SCHOOL, DEVICE = "0350001A", "lordi-fast-1"
TOPIC = f"lordi/v1/{SCHOOL}/{DEVICE}/telemetry"
NOW = datetime.now(UTC).replace(microsecond=0)


def plain(value: Any) -> Any:
    """Either path's objects as comparable data, types kept (71 is not 71.0)."""
    if isinstance(value, msgspec.Struct):
        return {f: plain(getattr(value, f)) for f in value.__struct_fields__}
    if isinstance(value, BaseModel):
        return {f: plain(getattr(value, f)) for f in type(value).model_fields}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, datetime):
        return ("datetime", value, value.utcoffset())
    return (type(value).__name__, value)


def envelope_doc(samples: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "schema": 1,
        "device": DEVICE,
        "school": SCHOOL,
        "agent_version": "1.4.0",
        "samples": samples,
    }


def assert_same_as_pydantic(payload: bytes) -> bool:
    """Checks the property; True when the fast path accepted the message."""
    decoded = fastpath.decode(SCHOOL, DEVICE, payload)
    if decoded is None:
        return False
    fast, ts_ms = decoded
    try:
        slow = Envelope.model_validate_json(payload)
    except ValidationError as exc:  # pragma: no cover - the failure being tested for
        pytest.fail(f"fast path accepted what the contract refuses: {exc}\n{payload[:500]!r}")
    assert plain(fast) == plain(slow)
    assert ts_ms == [epoch_ms(s.ts) for s in slow.samples]
    for f, s in zip(fast.samples, slow.samples, strict=True):
        assert to_lines(SCHOOL, DEVICE, fast.agent_version, f) == to_lines(
            SCHOOL, DEVICE, slow.agent_version, s
        )
    assert summary_lines([(SCHOOL, DEVICE, s) for s in fast.samples]) == summary_lines(
        [(SCHOOL, DEVICE, s) for s in slow.samples]
    )
    return True


# -- valid messages ----------------------------------------------------------------

_stamps = st.integers(min_value=-399 * 86_400, max_value=3_500).map(
    lambda s: NOW + timedelta(seconds=s)
)
_spellings = st.sampled_from(
    [
        lambda t: t.isoformat().replace("+00:00", "Z"),
        lambda t: t.isoformat(),
        lambda t: t.astimezone(UTC).replace(microsecond=123456).isoformat(),
        lambda t: t.astimezone(timezone_plus2()).isoformat(),
    ]
)


def timezone_plus2() -> Any:
    from datetime import timezone  # noqa: PLC0415

    return timezone(timedelta(hours=2))


@st.composite
def valid_samples(draw: st.DrawFn) -> dict[str, Any]:
    ts = draw(_stamps)
    sample = full_sample(ts, draw(st.sampled_from([None, "0123456789abcdef"])))
    sample["ts"] = draw(_spellings)(ts)
    if draw(st.booleans()):
        sample = minimal_sample(ts, draw(st.floats(0, 200)))
    battery = sample["batteries"][0]
    battery["percent"] = draw(st.one_of(st.none(), st.floats(0, 100), st.integers(0, 100)))
    printable = st.characters(min_codepoint=0x20, max_codepoint=0x7E)
    battery["name"] = draw(st.text(printable, min_size=1, max_size=32))
    battery["model"] = draw(st.one_of(st.none(), st.text("éàç-ABC xyz\"\\,=", max_size=64)))
    if draw(st.booleans()):
        sample["batteries"].append({**battery, "name": "BAT1", "health_pct": None})
    return sample


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(valid_samples(), min_size=1, max_size=4))
def test_valid_messages_take_the_fast_path_and_read_the_same(samples: list[dict[str, Any]]) -> None:
    payload = json.dumps(envelope_doc(samples)).encode()
    assert assert_same_as_pydantic(payload), "a valid message missed the fast path"


# -- mutated messages ------------------------------------------------------------------

_EDGE_NUMBERS = [
    0, -0.0, 1, -1, 0.5, 1e-320, 1e308, 2**63, -(2**63), 2**64 + 1,
    100, 100.0000001, 200, 200.0001, 233, 234, 1_000_000, 1_000_000.5, 10_000_000,
    10_000_001, -40, -40.0001, 150.0001, -120, -120.5, -130, -130.5, 70, 70.5, 2_678_400,
    2_678_400.5, 600_000.5, 100_000.5,
]
_EDGE_TEXT = [
    "", "a" * 32, "a" * 33, "a" * 64, "a" * 65, "é" * 64, "é" * 65, "a" * 257,
    "ok\x00", "tab\there", "del\x7f", "c1\x85", "csi\x9b", "nbsp\xa0", "\ud800", "\udfff",
    "emoji\U0001f600", "quote\"back\\slash", "0123456789abcdef", "0123456789ABCDEF",
    "0123456789abcdeg", "0123456789abcde", "windows", "charging", "school", "1", "true",
]
_EDGE_TIMES = [
    NOW.isoformat(), NOW.replace(tzinfo=None).isoformat(), NOW.isoformat().replace("+00:00", "z"),
    NOW.isoformat().replace("T", " "), NOW.isoformat().replace("T", "t"),
    NOW.isoformat().replace("+00:00", ".1234567Z"), NOW.isoformat().replace("+00:00", ".Z"),
    NOW.isoformat().replace("+00:00", "+0000"), NOW.isoformat().replace("+00:00", "+00"),
    NOW.isoformat().replace("+00:00", "+24:00"), NOW.strftime("%Y-%m-%dT23:59:60Z"),
    NOW.strftime("%Y-%m-%dT24:00:00Z"), NOW.strftime("%Y%m%dT%H%M%SZ"), NOW.strftime("%Y-%m-%d"),
    (NOW + timedelta(hours=2)).isoformat(), (NOW - timedelta(days=401)).isoformat(),
    (NOW - timedelta(days=399)).isoformat(), "1970-01-01T00:00:00Z", "9999-12-31T23:59:59Z",
    int(NOW.timestamp()), NOW.timestamp(), str(int(NOW.timestamp())),
]
_values = st.one_of(
    st.none(),
    st.booleans(),
    st.sampled_from(_EDGE_NUMBERS),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(_EDGE_TEXT),
    st.text(max_size=70),
    st.sampled_from(_EDGE_TIMES),
    st.builds(list),
    st.builds(dict),
    st.builds(lambda: [1, 2]),
)


def _mutate(doc: dict[str, Any], path: tuple[Any, ...], how: str, value: Any) -> None:
    parent: Any = doc
    for part in path[:-1]:
        parent = parent[part]
    last = path[-1]
    if how == "delete":
        del parent[last]
    elif how == "unknown" and isinstance(parent, dict):
        parent["extra_field"] = copy.deepcopy(value)
    else:
        parent[last] = copy.deepcopy(value)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(valid_samples(), min_size=1, max_size=3),
    st.lists(
        st.tuples(
            st.integers(0, 10_000), st.sampled_from(["set", "set", "delete", "unknown"]), _values
        ),
        min_size=1,
        max_size=3,
    ),
    st.booleans(),
)
def test_mutated_messages_are_never_accepted_wrongly(
    samples: list[dict[str, Any]], mutations: list[tuple[int, str, Any]], ascii_only: bool
) -> None:
    doc = envelope_doc(copy.deepcopy(samples))
    for pick, how, value in mutations:
        paths = json_paths(doc)
        _mutate(doc, paths[pick % len(paths)], how, value)
    # Escaped (\u0085) or raw (UTF-8 bytes): the two ways a control character can come.
    raw = json.dumps(doc, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")
    assert_same_as_pydantic(raw)


@pytest.mark.parametrize(
    "raw",
    [
        # JSON spellings that are not about one field's value
        b'{"schema":1,"schema":1,"device":"%s","school":"%s","agent_version":"x","samples":[%s]}',
        b'\xef\xbb\xbf{"schema":1,"device":"%s","school":"%s","agent_version":"x","samples":[%s]}',
        b'{"schema":1.0,"device":"%s","school":"%s","agent_version":"x","samples":[%s]}',
        b'{"schema":true,"device":"%s","school":"%s","agent_version":"x","samples":[%s]}',
        b'{"schema":1,"device":"%s","school":"%s","agent_version":"x","samples":[%s]} x',
        b'{"schema":1,"device":"%s","school":"%s","agent_version":"x\\u0000","samples":[%s]}',
        b'{"schema":1,"device":"%s","school":"%s","agent_version":"x","samples":[%s,]}',
        b'{"schema":1,"device":"%s","school":"%s","agent_version":"x","samples":[]}%s',
        b'{"schema":1,"device":"%s","school":"%s","agent_version":"x\xff","samples":[%s]}',
        b'{"schema":1,"device":"%s","school":"%s","agent_version":"x\xc3","samples":[%s]}',
        b'{"schema":1,"device":"%s","school":"%s","agent_version":"\\ud800","samples":[%s]}',
        b'{"schema":1,"device":"%s","school":"%s","agent_version":"x","samples":[%s]}\x00',
    ],
)
def test_odd_json_is_never_accepted_wrongly(raw: bytes) -> None:
    sample = json.dumps(full_sample(NOW)).encode()
    if raw.count(b"%s") == 3:
        payload = raw % (DEVICE.encode(), SCHOOL.encode(), sample)
    else:
        payload = raw.replace(b"[]%s", b"[]")
        payload = payload % (DEVICE.encode(), SCHOOL.encode())
    assert_same_as_pydantic(payload)


def test_samples_with_numbers_past_their_bounds_fall_back_to_pydantic_named_reasons() -> None:
    bad = full_sample(NOW)
    bad["batteries"][0]["health_pct"] = 250.0
    payload = json.dumps(envelope_doc([full_sample(NOW), bad])).encode()
    assert fastpath.decode(SCHOOL, DEVICE, payload) is None
    checked = check_message(TOPIC, payload)
    assert len(checked.samples) == 1
    reasons = [r.reason.split(":")[0] for r in checked.rejected]
    assert reasons == ["samples[1].batteries[0].health_pct"]


@pytest.mark.parametrize(
    ("where", "value"),
    [
        (("batteries", 0, "manufacturer"), "LG\x00C"),
        (("batteries", 0, "name"), "BAT\x9b"),
        (("wifi", "bssid_hash"), "0123456789ABCDEF"),
        (("wifi", "radio"), "802.11\n"),
        (("os", "release"), "10\x1b[2J"),
        (("ts",), (NOW - timedelta(days=401)).isoformat()),
        (("ts",), (NOW + timedelta(hours=2)).isoformat()),
    ],
)
@pytest.mark.parametrize("ascii_only", [True, False])
def test_what_msgspec_cannot_check_is_checked_here(
    where: tuple[Any, ...], value: Any, ascii_only: bool
) -> None:
    sample = full_sample(NOW, "0123456789abcdef")
    _mutate(sample, where, "set", value)
    payload = json.dumps(envelope_doc([sample]), ensure_ascii=ascii_only).encode()
    assert fastpath.decode(SCHOOL, DEVICE, payload) is None
    with pytest.raises(ValidationError):
        Envelope.model_validate_json(payload)


@pytest.mark.parametrize(
    ("text", "printable", "payload_clean"),
    [
        ("Celxpert", True, True),
        ("Société Générale", True, True),  # é is C3 A9 in UTF-8
        ("45\N{DEGREE SIGN}C", True, False),  # C2 B0: clean, checked string by string
        ("tab\there", False, False),
        ("del\x7f", False, False),
        ("c1\x85", False, False),
        ("csi\x9b", False, False),
    ],
)
def test_a_payload_without_escapes_del_or_c2_bytes_skips_the_string_checks(
    text: str, printable: bool, payload_clean: bool
) -> None:
    sample = full_sample(NOW)
    sample["batteries"][0]["manufacturer"] = text
    payload = json.dumps(envelope_doc([sample]), ensure_ascii=False).encode()
    assert fastpath._no_control_bytes(payload) is payload_clean
    assert (fastpath.decode(SCHOOL, DEVICE, payload) is not None) is printable
    assert_same_as_pydantic(payload)


def test_envelope_ids_must_match_the_topic() -> None:
    payload = json.dumps(envelope_doc([full_sample(NOW)])).encode()
    assert fastpath.decode(SCHOOL, DEVICE, payload) is not None
    assert fastpath.decode(SCHOOL, "other-device", payload) is None
    assert fastpath.decode("0350002B", DEVICE, payload) is None


def test_timestamps_come_out_in_utc_as_pydantic_gives_them() -> None:
    sample = full_sample(NOW)
    sample["ts"] = NOW.astimezone(timezone_plus2()).isoformat()
    decoded = fastpath.decode(SCHOOL, DEVICE, json.dumps(envelope_doc([sample])).encode())
    assert decoded is not None
    assert decoded[0].samples[0].ts.tzinfo is UTC
    assert decoded[0].samples[0].ts == NOW
    assert decoded[1] == [int(NOW.timestamp()) * 1000]


@pytest.mark.parametrize("fraction", ["0000005", "9999995", "1234567", "123456789"])
def test_times_finer_than_a_microsecond_are_left_to_pydantic(fraction: str) -> None:
    # msgspec rounds them, pydantic truncates: the fast path must not take them
    # (a hypothesis run found 2026-01-01T00:00:00.0000005Z read 1 us apart).
    sample = full_sample(NOW)
    sample["ts"] = NOW.strftime("%Y-%m-%dT%H:%M:%S.") + fraction + "Z"
    payload = json.dumps(envelope_doc([sample])).encode()
    assert fastpath.decode(SCHOOL, DEVICE, payload) is None
    checked = check_message(TOPIC, payload)
    assert not checked.rejected
    assert checked.samples[0].ts == NOW.replace(microsecond=int(fraction[:6]))


def test_six_decimals_and_decimal_numbers_keep_the_fast_path() -> None:
    sample = full_sample(NOW)
    sample["ts"] = NOW.strftime("%Y-%m-%dT%H:%M:%S.") + "123456Z"
    sample["batteries"][0]["percent"] = 12.1234567  # 7 decimals, not a time
    compact = json.dumps(envelope_doc([sample]), separators=(",", ":")).encode()
    decoded = fastpath.decode(SCHOOL, DEVICE, compact)
    assert decoded is not None
    assert decoded[0].samples[0].ts == NOW.replace(microsecond=123456)


def test_a_fine_time_after_a_decimal_number_is_still_left_to_pydantic() -> None:
    # the scan's first match is the number (":12.1234567" in compact JSON), not a time
    first, second = full_sample(NOW - timedelta(minutes=1)), full_sample(NOW)
    first["batteries"][0]["percent"] = 12.1234567
    second["ts"] = NOW.strftime("%Y-%m-%dT%H:%M:%S.") + "0000005Z"
    compact = json.dumps(envelope_doc([first, second]), separators=(",", ":")).encode()
    assert compact.index(b":12.1234567") < compact.index(b".0000005Z")
    assert fastpath.decode(SCHOOL, DEVICE, compact) is None
    assert check_message(TOPIC, compact).samples[1].ts == NOW


# -- the two declarations agree -------------------------------------------------------


def _normal(schema: dict[str, Any]) -> dict[str, Any]:
    """A property's JSON Schema reduced to what both libraries state the same way."""
    out = {k: v for k, v in schema.items() if k not in ("title", "pattern", "anyOf")}
    if "anyOf" in schema:
        branches = [b for b in schema["anyOf"] if b != {"type": "null"}]
        (branch,) = branches
        out |= {"nullable": True, **_normal(branch)}
    if "const" in out:
        out["enum"] = [out.pop("const")]
    if "enum" in out:
        out.pop("type", None)
        out["enum"] = sorted(out["enum"])
    if "$ref" in out:
        out["$ref"] = out["$ref"].rsplit("/", 1)[-1]
    if "items" in out:
        out["items"] = _normal(out["items"])
    return out


def _models(schema: dict[str, Any], root: str) -> dict[str, dict[str, Any]]:
    defs = dict(schema.get("$defs", {}))
    if "properties" in schema:
        defs[root] = schema
    return {
        name: {
            "required": sorted(d.get("required", [])),
            "properties": {p: _normal(s) for p, s in d["properties"].items()},
        }
        for name, d in defs.items()
    }


def test_fast_structs_declare_the_contracts_fields_types_and_bounds() -> None:
    slow = _models(Envelope.model_json_schema(), "Envelope")
    fast = _models(msgspec.json.schema(fastpath.Envelope), "Envelope")
    assert slow.keys() == fast.keys()
    # The envelope's ids are checked by equality with the topic's (already matched
    # against the same patterns), so the Struct declares them as plain strings.
    for prop in ("device", "school"):
        slow["Envelope"]["properties"][prop] = {"type": "string"}
    # The bssid hash's pattern fixes its length, which the Struct declares (and
    # fastpath checks the alphabet).
    bssid = Envelope.model_json_schema()["$defs"]["Wifi"]["properties"]["bssid_hash"]
    assert bssid["anyOf"][0]["pattern"] == "^[0-9a-f]{16}$"
    slow["Wifi"]["properties"]["bssid_hash"] |= {"minLength": 16, "maxLength": 16}
    for model, declared in slow.items():
        assert declared == fast[model], model


def test_every_pattern_of_the_contract_is_checked_by_hand_in_the_fast_path() -> None:
    schema = Envelope.model_json_schema()
    defs = {**schema["$defs"], "Envelope": schema}
    patterned = {
        model: {
            p
            for p, s in d["properties"].items()
            if "pattern" in s or any("pattern" in b for b in s.get("anyOf", []))
        }
        for model, d in defs.items()
    }
    assert {m: set(p) for m, p in fastpath.HAND_CHECKED.items()} == {
        m: p for m, p in patterned.items() if p
    }
