"""Validate one MQTT telemetry message against the v1 contract.

Good traffic takes the fast path: `collector.fastpath` (msgspec) accepts a message
it can prove valid. Anything else goes to the contract's pydantic models, over the
whole envelope first, and when that fails piece by piece so that a bad sample
costs only itself: the other samples of the message are kept, and every rejection
carries a one-line reason naming the field and the value.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from pydantic import TypeAdapter, ValidationError

from collector import fastpath
from collector.contract import (
    ID_PATTERN,
    MAX_MESSAGE_BYTES,
    UAI_PATTERN,
    Envelope,
    EnvelopeHeader,
    Sample,
)
from collector.samples import Sample as AnySample

_SAMPLE = TypeAdapter(Sample)
_ID = re.compile(ID_PATTERN)
_UAI = re.compile(UAI_PATTERN)
_MAX_VALUE_REPR = 60


class MessageRejected(Exception):
    """The whole message is unusable; `reason` says which field and value."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class SampleRejection:
    index: int
    reason: str
    raw: Any


@dataclass(slots=True)
class Checked:
    school: str
    device: str
    agent_version: str
    samples: list[AnySample]
    # each sample's time in epoch ms when the fast path computed it, else empty
    ts_ms: list[int] = field(default_factory=list)
    rejected: list[SampleRejection] = field(default_factory=list)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _MAX_VALUE_REPR else text[: _MAX_VALUE_REPR - 3] + "..."


def _path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + ("schema" if part == "schema_" else str(part))
    return out or "message"


def describe(exc: ValidationError, prefix: str = "", secrets: frozenset[str] = frozenset()) -> str:
    """First error of `exc` as `field.path: message (got value)`, plus a count of others.
    The value of a field named in `secrets` is never shown."""
    errors = exc.errors(include_url=False)
    first = errors[0]
    where = _path(tuple(first["loc"]))
    if prefix:
        # "message" is pydantic's whole input: then the field is the prefix itself.
        where = (
            prefix
            if where == "message"
            else prefix + ("" if where.startswith("[") else ".") + where
        )
    got = "" if first["type"] == "missing" else f" (got {_show(first.get('input'))})"
    if any(str(part) in secrets for part in first["loc"]):
        got = " (got <hidden>)"
    more = f" [+{len(errors) - 1} more]" if len(errors) > 1 else ""
    return f"{where}: {first['msg']}{got}{more}"


def parse_topic(topic: str) -> tuple[str, str]:
    """(school, device) from `lordi/v1/<school>/<device>/telemetry`."""
    parts = topic.split("/")
    if len(parts) != 5 or parts[:2] != ["lordi", "v1"] or parts[4] != "telemetry":
        raise MessageRejected(
            f"topic: not lordi/v1/<school>/<device>/telemetry (got {_show(topic)})"
        )
    school, device = parts[2], parts[3]
    if not _UAI.match(school):
        raise MessageRejected(f"topic school: not a UAI code (got {_show(school)})")
    if not _ID.match(device):
        raise MessageRejected(f"topic device: not [0-9A-Za-z_-]{{1,64}} (got {_show(device)})")
    return school, device


def _match_topic(school: str, device: str, env_school: str, env_device: str) -> None:
    if env_device != device:
        raise MessageRejected(f"device: {env_device!r} differs from the topic's device {device!r}")
    if env_school != school:
        raise MessageRejected(f"school: {env_school!r} differs from the topic's school {school!r}")


def check_message(topic: str, payload: bytes) -> Checked:
    """Validate a message. Raises `MessageRejected` when nothing of it can be kept."""
    school, device = parse_topic(topic)
    if len(payload) > MAX_MESSAGE_BYTES:
        raise MessageRejected(
            f"payload: {len(payload)} bytes exceeds the {MAX_MESSAGE_BYTES}-byte limit"
        )
    fast = fastpath.decode(school, device, payload)
    if fast is not None:
        env_fast, ts_ms = fast
        return Checked(school, device, env_fast.agent_version, list(env_fast.samples), ts_ms)
    try:
        env = Envelope.model_validate_json(payload)
    except ValidationError:
        return _check_slowly(school, device, payload)
    _match_topic(school, device, env.school, env.device)
    return Checked(env.school, env.device, env.agent_version, list(env.samples))


def _check_slowly(school: str, device: str, payload: bytes) -> Checked:
    try:
        doc = json.loads(payload)
    except ValueError as exc:
        # JSONDecodeError, UnicodeDecodeError, and Python's limit on the digits of an
        # integer (a 5,000-digit number: tests/reliability corpus) are all ValueErrors.
        raise MessageRejected(f"payload: not JSON ({exc})") from None
    except RecursionError:
        raise MessageRejected("payload: JSON nested too deeply") from None
    try:
        header = EnvelopeHeader.model_validate(doc)
    except ValidationError as exc:
        raise MessageRejected(describe(exc)) from None
    _match_topic(school, device, header.school, header.device)
    checked = Checked(header.school, header.device, header.agent_version, [])
    for i, raw in enumerate(header.samples):
        try:
            # JSON mode again (timestamps are strings there), one sample at a time.
            checked.samples.append(_SAMPLE.validate_json(json.dumps(raw)))
        except ValidationError as exc:
            checked.rejected.append(SampleRejection(i, describe(exc, f"samples[{i}]"), raw))
    return checked
