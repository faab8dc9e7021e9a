"""Property-based fuzzing of every agent parser (hypothesis).

Every public `parse_*(text)` function of every module under `agent/parsers/` is found
at run time (a new parser is fuzzed without editing this file) and fed arbitrary text,
decoded bytes (as the sources decode command output: UTF-8 with replacement, or a
legacy code page) and mutations of the real captures under tests/replay/. It must
never raise, and what it returns must hold only plain values: None for what it could
not read, never NaN or infinity. The converters that turn parsed facts into readings
are fuzzed through the same inputs."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import math
import pkgutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import agent.parsers
from agent.parsers.linux_sysfs import parse_uevent, to_battery
from agent.parsers.linux_wifi import band_ghz, channel, parse_iw_link
from agent.parsers.macos_ioreg import fill_gaps, parse_ioreg_battery, to_battery_reading
from agent.parsers.macos_system_profiler import parse_system_profiler_power
from agent.parsers.windows_battery_report import parse_battery_report
from agent.parsers.windows_wmi import combine_wmi, parse_wmi_batteries, with_wmi

REPLAY = Path(__file__).resolve().parents[1] / "replay"
FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _parsers() -> list[tuple[str, Callable[[str], Any]]]:
    found = []
    for info in pkgutil.iter_modules(agent.parsers.__path__):
        module = importlib.import_module(f"agent.parsers.{info.name}")
        for name, func in inspect.getmembers(module, inspect.isfunction):
            if name.startswith("parse_") and func.__module__ == module.__name__:
                found.append((f"{info.name}.{name}", func))
    return sorted(found, key=lambda item: item[0])


PARSERS = _parsers()
SEEDS = sorted(
    p.read_text(encoding="utf-8", errors="replace")
    for p in REPLAY.rglob("*")
    if p.is_file() and p.name not in ("expected.json", "SOURCE.md", "platform")
)


def test_every_parser_module_is_fuzzed() -> None:
    modules = {info.name for info in pkgutil.iter_modules(agent.parsers.__path__)}
    assert modules == {name.split(".")[0] for name, _ in PARSERS}
    assert len(SEEDS) > 50  # the real captures are there to mutate


def check_plain(value: Any, where: str = "result") -> None:
    """None, bool, int, finite float, str, or containers/dataclasses of those."""
    if value is None or isinstance(value, bool | int | str):
        return
    if isinstance(value, float):
        assert math.isfinite(value), f"{where} = {value}"
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            check_plain(getattr(value, f.name), f"{where}.{f.name}")
    elif isinstance(value, dict):
        for k, v in value.items():
            check_plain(k, f"{where} key")
            check_plain(v, f"{where}[{k!r}]")
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            check_plain(v, f"{where}[{i}]")
    else:
        raise AssertionError(f"{where}: unexpected {type(value).__name__}")


decoded_bytes = st.binary(max_size=2000).flatmap(
    lambda raw: st.sampled_from(
        [raw.decode("utf-8", errors="replace"), raw.decode("latin-1"), raw.decode("cp850")]
    )
)
_NUMBERISH = st.sampled_from(
    [
        "",
        "0",
        "-1",
        "NaN",
        "inf",
        "-inf",
        "1e309",
        "9" * 50,
        "-" + "9" * 30,
        "0x10",
        "½",
        "١٢٣",
        "  ",
        ":",
        "=",
        '"',
        "\r",
        "\x00",
        "\ufeff",
        "<",
        "&amp;",
        "]]>",
    ]
)


@st.composite
def mutated_capture(draw: st.DrawFn) -> str:
    """A real capture with a few of its bytes changed, cut or repeated."""
    text = draw(st.sampled_from(SEEDS))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(text)))
        kind = draw(st.sampled_from(["cut", "insert", "replace", "repeat"]))
        if kind == "cut":
            text = text[:at]
        elif kind == "insert":
            text = text[:at] + draw(_NUMBERISH | st.text(max_size=20)) + text[at:]
        elif kind == "replace":
            end = min(len(text), at + draw(st.integers(1, 12)))
            text = text[:at] + draw(_NUMBERISH) + text[end:]
        else:
            line_start = text.rfind("\n", 0, at) + 1
            line_end = text.find("\n", at)
            line = text[line_start : line_end if line_end >= 0 else len(text)]
            text = text[:line_start] + line + "\n" + text[line_start:]
    return text


any_text = st.text(max_size=2000) | decoded_bytes | mutated_capture()


@pytest.mark.parametrize(("name", "parser"), PARSERS, ids=[n for n, _ in PARSERS])
@FUZZ
@given(text=any_text)
def test_parser_never_raises_and_returns_plain_values(
    name: str, parser: Callable[[str], Any], text: str
) -> None:
    check_plain(parser(text), name)


@FUZZ
@given(text=any_text)
def test_linux_battery_and_link_conversions(text: str) -> None:
    check_plain(to_battery("BAT0", parse_uevent(text)), "to_battery")
    link = parse_iw_link(text)
    if link is not None:
        check_plain((band_ghz(link.freq_mhz), channel(link.freq_mhz)), "iw link")


@FUZZ
@given(first=any_text, second=any_text)
def test_macos_battery_conversions(first: str, second: str) -> None:
    ioreg, profiler = parse_ioreg_battery(first), parse_system_profiler_power(second)
    for facts in (ioreg, profiler):
        if facts is not None:
            check_plain(to_battery_reading(facts), "to_battery_reading")
    if ioreg is not None and profiler is not None:
        check_plain(to_battery_reading(fill_gaps(ioreg, profiler)), "fill_gaps")


@FUZZ
@given(report=any_text, wmi=any_text)
def test_windows_battery_conversions(report: str, wmi: str) -> None:
    records = combine_wmi(parse_wmi_batteries(wmi) or [])
    check_plain(with_wmi(parse_battery_report(report), records), "with_wmi")


@FUZZ
@given(freq=st.floats(allow_nan=True, allow_infinity=True) | st.none())
def test_frequency_helpers_accept_any_float(freq: float | None) -> None:
    check_plain((band_ghz(freq), channel(freq)), "freq")
