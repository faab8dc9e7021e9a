"""Every replay case through `lordi-agent sample --replay DIR --json` (issue 15 item 4).

tests/agent/test_replay.py checks the provider's reading against `expected.json`;
this runs the same folders through the command a technician runs, in process, and
checks that what would be published carries those readings: the measured Wi-Fi and
battery values pass through unchanged, the privacy filter turns the identity into
`ssid_state` (never a raw BSSID), and the collector's contract accepts the message.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agent.cli import main
from agent.model import PLAUSIBLE_MWH
from collector.contract import Envelope
from tests.agent.test_replay import CASES, assert_matches

# Reading fields the sample copies as they are (privacy touches only ssid/bssid).
WIFI_PASS_THROUGH = (
    "interface",
    "connected",
    "rssi_dbm",
    "signal_pct",
    "noise_dbm",
    "channel",
    "band_ghz",
    "rx_rate_mbps",
    "tx_rate_mbps",
    "radio",
)
BATTERY_PASS_THROUGH = ("status", "percent", "plugged", "health_pct", "cycle_count")


def sample_json(case: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    assert main(["sample", "--replay", str(case), "--json"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1, "--json prints the message on one line"
    envelope: dict[str, Any] = json.loads(out)
    Envelope.model_validate_json(out)  # what the collector would accept
    assert len(envelope["samples"]) == 1
    sample: dict[str, Any] = envelope["samples"][0]
    return sample


def check_wifi(got: dict[str, Any] | None, expected: dict[str, Any] | None, where: str) -> None:
    if expected is None:
        assert got is None, f"{where}: expected no Wi-Fi, got {got!r}"
        return
    assert got is not None, f"{where}: Wi-Fi missing from the sample"
    assert "bssid" not in got, "a raw BSSID never leaves the laptop"
    wanted = {k: v for k, v in expected.items() if k in WIFI_PASS_THROUGH}
    assert_matches(got, wanted, where)
    if expected.get("ssid_hidden_by_os"):
        assert got["ssid_state"] == "hidden_by_os", where
        assert got["ssid"] is None, where
    elif expected.get("connected") is False:
        assert got["ssid_state"] == "not_connected", where
    elif expected.get("connected"):
        # The preview config has no school SSIDs: every network is "other", unnamed.
        assert got["ssid_state"] == "other", where
        assert got["ssid"] is None, where


def check_batteries(got: list[dict[str, Any]], expected: list[dict[str, Any]], where: str) -> None:
    assert len(got) == len(expected), f"{where}: {len(got)} batteries, expected {len(expected)}"
    low, high = PLAUSIBLE_MWH
    for i, (g, e) in enumerate(zip(got, expected, strict=True)):
        wanted = {k: v for k, v in e.items() if k in BATTERY_PASS_THROUGH}
        assert_matches(g, wanted, f"{where}[{i}]")
        design = e.get("design_capacity_mwh")
        if design is not None and low <= design <= high:
            # Plausible mWh values are sent as read (implausible ones are nulled).
            assert_matches(g["design_capacity_mwh"], design, f"{where}[{i}].design")
            assert_matches(g["full_capacity_mwh"], e.get("full_capacity_mwh"), f"{where}[{i}].full")


@pytest.mark.parametrize("case", CASES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_sample_replay_json(case: Path, capsys: pytest.CaptureFixture[str]) -> None:
    expected = json.loads((case / "expected.json").read_text(encoding="utf-8"))
    sample = sample_json(case, capsys)
    if "os" in expected:
        assert sample["os"]["platform"] == expected["os"]["platform"]
    if "wifi" in expected:
        check_wifi(sample["wifi"], expected["wifi"], f"{case.name}.wifi")
    if "batteries" in expected:
        check_batteries(sample["batteries"], expected["batteries"], f"{case.name}.batteries")
