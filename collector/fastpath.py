"""The fast acceptor: msgspec decodes a well-formed message without pydantic.

`collector.contract` (pydantic) stays the contract: it exports the JSON Schema,
and it alone explains a rejection. This module only *accepts*: it mirrors the
contract's models as msgspec Structs (same fields, same types, same bounds) and
returns None at the first doubt, and the caller then runs pydantic, which accepts
the message or names the field and value it refuses. So the fast path may refuse
more than the contract (that costs time, never data), but must never accept what
the contract refuses: `tests/collector/test_fastpath.py` checks this on generated
messages, that what both accept reads the same (values and their types, line
protocol, epoch ms, summaries), and that the two declarations agree.

Why: on the ingest benchmark pydantic's `model_validate_json` (with the timestamp
check, a Python callback per sample) took ~12 µs of the collector's ~26 µs per
sample; msgspec decodes and checks the same message in ~1 µs (BENCHMARKS.md).
What msgspec cannot express is checked here: the text pattern (no control
characters: for a payload with no byte that could spell one, at once for all its
strings; else string by string, through a cache of strings already seen clean: a
fleet repeats its manufacturer, model, SSID and interface names), the bssid hash's alphabet, the
envelope's ids against the topic's (already checked against their patterns), and
the timestamp's plausible window. Timestamps come out in UTC, as pydantic's do.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from typing import Annotated, Literal

import msgspec
from msgspec import Meta, Struct

from collector.contract import (
    MAX_CLOCK_AHEAD,
    MAX_MESSAGE_BYTES,
    MAX_SAMPLE_AGE,
    MAX_SAMPLES_PER_MESSAGE,
    TEXT_PATTERN,
)

Text = Annotated[str, Meta(max_length=64)]
Percent = Annotated[float, Meta(ge=0, le=100)]


class _Strict(Struct, frozen=True, forbid_unknown_fields=True, kw_only=True, gc=False):
    """Frozen like the contract's models; no cycles, so no garbage-collector tracking."""


class OsInfo(_Strict, frozen=True, kw_only=True):
    platform: Literal["windows", "linux", "darwin"]
    release: Text | None = None


class Battery(_Strict, frozen=True, kw_only=True):
    name: Annotated[str, Meta(min_length=1, max_length=32)]
    present: bool
    status: Literal["charging", "discharging", "full", "not_charging", "unknown"]
    percent: Percent | None = None
    plugged: bool | None = None
    design_capacity_mwh: Annotated[float, Meta(gt=0, le=1_000_000)] | None = None
    full_capacity_mwh: Annotated[float, Meta(ge=0, le=1_000_000)] | None = None
    health_pct: Annotated[float, Meta(ge=0, le=200)] | None = None
    cycle_count: Annotated[int, Meta(ge=0, le=100_000)] | None = None
    voltage_mv: Annotated[float, Meta(ge=0, le=100_000)] | None = None
    temperature_c: Annotated[float, Meta(ge=-40, le=150)] | None = None
    manufacturer: Text | None = None
    model: Text | None = None
    technology: Text | None = None


class Wifi(_Strict, frozen=True, kw_only=True):
    interface: Text | None = None
    connected: bool
    ssid: Text | None = None
    ssid_state: Literal["school", "other", "hidden_by_os", "not_connected"]
    on_school_network: bool | None = None
    bssid_hash: Annotated[str, Meta(min_length=16, max_length=16)] | None = None
    rssi_dbm: Annotated[float, Meta(ge=-120, le=0)] | None = None
    signal_pct: Percent | None = None
    noise_dbm: Annotated[float, Meta(ge=-130, le=0)] | None = None
    channel: Annotated[int, Meta(ge=1, le=233)] | None = None
    band_ghz: Annotated[float, Meta(gt=0, le=70)] | None = None
    rx_rate_mbps: Annotated[float, Meta(ge=0, le=100_000)] | None = None
    tx_rate_mbps: Annotated[float, Meta(ge=0, le=100_000)] | None = None
    radio: Text | None = None
    rssi_min_dbm: Annotated[float, Meta(ge=-120, le=0)] | None = None
    disconnects: Annotated[int, Meta(ge=0, le=100_000)] | None = None
    connected_s: Annotated[float, Meta(ge=0, le=31 * 86_400)] | None = None


class Connectivity(_Strict, frozen=True, kw_only=True):
    broker_rtt_ms: Annotated[float, Meta(ge=0, le=600_000)] | None = None
    dns_ok: bool | None = None
    gateway_ok: bool | None = None
    broker_ok: bool | None = None
    school_online_s: Annotated[float, Meta(ge=0, le=31 * 86_400)] | None = None
    school_unreachable_s: Annotated[float, Meta(ge=0, le=31 * 86_400)] | None = None
    connect_delay_s: Annotated[float, Meta(ge=0, le=31 * 86_400)] | None = None
    failure: Literal["dns", "connect", "timeout", "tls", "refused", "closed"] | None = None
    failed_attempts: Annotated[int, Meta(ge=0, le=100_000)] | None = None


class AgentHealth(_Strict, frozen=True, kw_only=True):
    spool_pending: Annotated[int, Meta(ge=0, le=10_000_000)] | None = None
    spool_dropped: Annotated[int, Meta(ge=0, le=10_000_000)] | None = None


class Sample(_Strict, frozen=True, kw_only=True):
    ts: Annotated[datetime, Meta(tz=True)]
    os: OsInfo
    batteries: Annotated[list[Battery], Meta(max_length=4)] = []
    wifi: Wifi | None = None
    connectivity: Connectivity | None = None
    agent: AgentHealth | None = None


class Envelope(_Strict, frozen=True, kw_only=True, rename={"schema_": "schema"}):
    schema_: Literal[1]
    device: str
    school: str
    agent_version: Annotated[str, Meta(min_length=1, max_length=32)]
    samples: Annotated[list[Sample], Meta(min_length=1, max_length=MAX_SAMPLES_PER_MESSAGE)]


# The contract's fields whose pattern msgspec cannot check (`pattern=` would run
# Python's `re` on every value: 3.5 of 5.2 µs per sample, measured); checked below.
# A test compares this with the contract's patterned fields.
HAND_CHECKED: dict[str, tuple[str, ...]] = {
    "Envelope": ("device", "school", "agent_version"),  # ids: equal to the topic's
    "OsInfo": ("release",),
    "Battery": ("name", "manufacturer", "model", "technology"),
    "Wifi": ("interface", "ssid", "bssid_hash", "radio"),
}

_DECODER = msgspec.json.Decoder(Envelope)
_CONTROL = re.compile(TEXT_PATTERN.replace("^[^", "[").replace("]*$", "]"))
_HEX = frozenset("0123456789abcdef")
_AGE_S = MAX_SAMPLE_AGE.total_seconds()
_AHEAD_S = MAX_CLOCK_AHEAD.total_seconds()
# A time with more than 6 decimals of a second: msgspec rounds it to the microsecond,
# pydantic truncates (…00.0000005Z is 00.000001 for one, 00 for the other), so such
# a message goes to pydantic. Agents send whole seconds: this only costs the scan.
# The pattern starts with a literal, which `re` finds with a fast search: 0.54 µs per
# ingest-bench sample (724 bytes), against 3.4 µs for one starting with `\d`, tried at
# every byte (BENCHMARKS.md). A digit before the colon, checked on each rare match: no
# JSON key matches.
_SUB_MICROSECOND = re.compile(rb":\d\d\.\d{7}")
_DIGITS = frozenset(b"0123456789")
_CLEAN_CACHE_MAX = 100_000
_clean: set[str] = set()  # strings already checked free of control characters


def _sub_microsecond(payload: bytes) -> bool:
    return any(
        m.start() and payload[m.start() - 1] in _DIGITS for m in _SUB_MICROSECOND.finditer(payload)
    )


def _no_control_bytes(payload: bytes) -> bool:
    """True when no string of this JSON can hold a control character (C0, DEL, C1):
    the decoder refuses raw C0 bytes inside strings, so one can only come from an
    escape (a backslash), a raw DEL byte, or a C1 character, whose UTF-8 starts with
    0xC2 (as do U+00A0-U+00BF, e.g. a degree sign: those messages are checked string
    by string). Three byte searches instead of each string's: `decode_and_check`
    3.5 µs per ingest-bench sample instead of 4.0-4.2 (`python -m lordi.bench.stages`,
    BENCHMARKS.md)."""
    return b"\\" not in payload and b"\x7f" not in payload and b"\xc2" not in payload


def _text_ok(value: str | None) -> bool:
    if value is None or value in _clean:
        return True
    if _CONTROL.search(value):
        return False
    if len(_clean) >= _CLEAN_CACHE_MAX:
        _clean.clear()  # a flood of distinct strings must not grow memory
    _clean.add(value)
    return True


def _sample_ok(sample: Sample, ts: float, oldest: float, newest: float, texts: bool) -> bool:
    """`texts`: whether its strings still need checking (`_no_control_bytes`)."""
    if ts < oldest or ts > newest:
        return False
    w = sample.wifi
    if w is not None and w.bssid_hash is not None and not _HEX.issuperset(w.bssid_hash):
        return False
    if not texts:
        return True
    if not _text_ok(sample.os.release):
        return False
    for b in sample.batteries:
        if not (
            _text_ok(b.name)
            and _text_ok(b.manufacturer)
            and _text_ok(b.model)
            and _text_ok(b.technology)
        ):
            return False
    return w is None or (_text_ok(w.interface) and _text_ok(w.ssid) and _text_ok(w.radio))


def _utc(sample: Sample) -> Sample:
    """The sample with its timestamp in UTC (agents send `Z`: rarely needed)."""
    return msgspec.structs.replace(sample, ts=sample.ts.astimezone(UTC))


def decode(school: str, device: str, payload: bytes) -> tuple[Envelope, list[int]] | None:
    """The message's envelope when it is certainly valid for the topic's `school`
    and `device` (already checked against their patterns), with each sample's time
    in epoch milliseconds (floored, as `lineproto.epoch_ms`); else None: ask pydantic."""
    if len(payload) > MAX_MESSAGE_BYTES or _sub_microsecond(payload):
        return None
    try:
        env = _DECODER.decode(payload)
    except (msgspec.DecodeError, ValueError, RecursionError):
        # ValueError: invalid UTF-8 inside a string is a UnicodeDecodeError, not a
        # msgspec.DecodeError (tests/reliability corpus)
        return None
    if env.device != device or env.school != school:
        return None
    texts = not _no_control_bytes(payload)
    if texts and not _text_ok(env.agent_version):
        return None
    now = time.time()
    oldest, newest = now - _AGE_S, now + _AHEAD_S
    samples = env.samples
    ts_ms = []
    for i, sample in enumerate(samples):
        ts = sample.ts.timestamp()
        if not _sample_ok(sample, ts, oldest, newest, texts):
            return None
        # Exact: the whole seconds of a float timestamp are exact in this window.
        ts_ms.append(int(ts) * 1000 + sample.ts.microsecond // 1000)
        if sample.ts.tzinfo is not UTC:
            samples[i] = _utc(sample)
    return env, ts_ms
