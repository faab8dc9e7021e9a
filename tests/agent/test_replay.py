"""Replay every captured machine under tests/replay/<platform>/<case>/.

Each case folder is a capture (layout in design.md, "Capture / replay") plus
`expected.json` (the values a correct parser must extract, checked against the
capture's SOURCE.md) and `SOURCE.md` (where the capture came from). Adding a case is
adding a folder. `expected.json` lists only the fields it asserts: a key whose value
is null asserts that the field is unknown; lists must match in length.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

from agent.providers import replay_provider

REPLAY_ROOT = Path(__file__).resolve().parent.parent / "replay"
CASES = sorted(p.parent for p in REPLAY_ROOT.glob("*/*/expected.json"))


def assert_matches(got: Any, expected: Any, where: str) -> None:
    if isinstance(expected, dict):
        assert isinstance(got, dict), f"{where}: expected an object, got {got!r}"
        for key, value in expected.items():
            assert key in got, f"{where}.{key}: missing from reading"
            assert_matches(got[key], value, f"{where}.{key}")
    elif isinstance(expected, list):
        assert isinstance(got, list), f"{where}: expected a list, got {got!r}"
        assert len(got) == len(expected), f"{where}: {len(got)} items, expected {len(expected)}"
        for i, (g, e) in enumerate(zip(got, expected, strict=True)):
            assert_matches(g, e, f"{where}[{i}]")
    elif isinstance(expected, float) or (
        isinstance(expected, int) and not isinstance(expected, bool) and isinstance(got, float)
    ):
        assert isinstance(got, int | float) and not isinstance(got, bool), (
            f"{where}: expected {expected!r}, got {got!r}"
        )
        assert math.isclose(got, expected, abs_tol=0.01), f"{where}: expected {expected}, got {got}"
    else:
        assert got == expected, f"{where}: expected {expected!r}, got {got!r}"


def test_cases_exist() -> None:
    assert CASES, f"no replay cases under {REPLAY_ROOT}"


@pytest.mark.parametrize("case", CASES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_replay(case: Path) -> None:
    expected = json.loads((case / "expected.json").read_text(encoding="utf-8"))
    assert (case / "SOURCE.md").is_file(), "every case says where its capture came from"
    reading = replay_provider(case).read()
    assert_matches(asdict(reading), expected, case.name)
