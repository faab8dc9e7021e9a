"""Rejections name the field and the value; good samples of a bad message survive."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from collector.validate import MessageRejected, check_message
from tests.helpers import envelope, minimal_sample, recent

TOPIC = "lordi/v1/0341234A/dev-1/telemetry"


def reason(payload: bytes, topic: str = TOPIC) -> str:
    with pytest.raises(MessageRejected) as exc:
        check_message(topic, payload)
    return exc.value.reason


def test_valid_message_is_accepted() -> None:
    checked = check_message(TOPIC, envelope("0341234A", "dev-1", [minimal_sample(recent(5))]))
    assert (checked.school, checked.device, len(checked.samples)) == ("0341234A", "dev-1", 1)
    assert checked.rejected == []


@pytest.mark.parametrize(
    ("topic", "expected"),
    [
        ("lordi/v1/0341234A/dev-1", "topic: not lordi/v1/<school>/<device>/telemetry"),
        ("lordi/v1/34/dev-1/telemetry", "topic school: not a UAI code (got '34')"),
        ("lordi/v1/0341234A/dév/telemetry", "topic device: not [0-9A-Za-z_-]{1,64} (got 'dév')"),
    ],
)
def test_bad_topics(topic: str, expected: str) -> None:
    assert reason(b"{}", topic).startswith(expected)


def _env(**change: Any) -> bytes:
    doc: dict[str, Any] = json.loads(envelope("0341234A", "dev-1", [minimal_sample(recent(5))]))
    doc.update(change)
    return json.dumps(doc).encode()


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (_env(device="dev-2"), "device: 'dev-2' differs from the topic's device 'dev-1'"),
        (_env(school="0341234B"), "school: '0341234B' differs from the topic's school '0341234A'"),
        (_env(schema=2), "schema: Input should be 1 (got 2)"),
        (_env(schema=True), "schema: Value error, must be the integer 1 (got True)"),
        (_env(schema=1.0), "schema: Value error, must be the integer 1 (got 1.0)"),
        (
            _env(samples=[]),
            "samples: List should have at least 1 item after validation, not 0 (got [])",
        ),
        (_env(extra=1), "extra: Extra inputs are not permitted (got 1)"),
        (
            b"[1, 2]",
            "message: Input should be a valid dictionary or instance of EnvelopeHeader (got [1, 2])",
        ),
        (b"x" * (256 * 1024 + 1), "payload: 262145 bytes exceeds the 262144-byte limit"),
        (b"\xff\xfe", "payload: not JSON"),
    ],
)
def test_bad_envelopes(payload: bytes, expected: str) -> None:
    assert reason(payload).startswith(expected)


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("percent", "55", "Input should be a valid number (got '55')"),
        ("percent", 101.0, "Input should be less than or equal to 100 (got 101.0)"),
        (
            "status",
            "exploding",
            "Input should be 'charging', 'discharging', 'full', 'not_charging' or 'unknown' (got 'exploding')",
        ),
        ("cycle_count", -1, "Input should be greater than or equal to 0 (got -1)"),
        ("model", "a\nb", "String should match pattern"),
    ],
)
def test_a_bad_sample_costs_only_itself(field: str, value: Any, expected: str) -> None:
    bad = minimal_sample(recent(6))
    bad["batteries"][0][field] = value
    payload = envelope(
        "0341234A", "dev-1", [minimal_sample(recent(5)), bad, minimal_sample(recent(7))]
    )
    checked = check_message(TOPIC, payload)
    assert len(checked.samples) == 2
    [rej] = checked.rejected
    assert rej.index == 1
    assert rej.reason.startswith(f"samples[1].batteries[0].{field}: {expected}")


def test_nan_and_far_timestamps_are_rejected() -> None:
    nan = envelope("0341234A", "dev-1", [minimal_sample(recent(5))]).replace(b"80.0", b"NaN")
    [rej] = check_message(TOPIC, nan).rejected
    assert (
        rej.reason
        == "samples[0].batteries[0].health_pct: Input should be a finite number (got nan)"
    )
    old = minimal_sample(recent(5))
    old["ts"] = "2019-01-01T00:00:00Z"
    [rej] = check_message(TOPIC, envelope("0341234A", "dev-1", [old])).rejected
    assert rej.reason.startswith("samples[0].ts: Value error, is more than 400 days old")


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "collector.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_validate_command(tmp_path: Path) -> None:
    good = tmp_path / "good.json"
    good.write_bytes(envelope("0341234A", "dev-1", [minimal_sample(recent(5))]))
    done = _cli("validate", "--topic", TOPIC, str(good))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "accepted 1 sample(s), rejected 0" in done.stdout
    other = tmp_path / "other-device.json"
    other.write_bytes(envelope("0341234A", "dev-9", [minimal_sample(recent(5))]))
    done = _cli("validate", "--topic", TOPIC, str(other))
    assert done.returncode == 1
    assert (
        done.stdout.strip() == "rejected: device: 'dev-9' differs from the topic's device 'dev-1'"
    )
