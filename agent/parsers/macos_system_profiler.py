"""Parse `system_profiler SPPowerDataType` (the "Power" report) for the battery.

The report is indented "Key: value" lines under section headers ("Battery
Information:", "AC Charger Information:", ...). The same key appears in several
sections ("Charging", "Manufacturer", "Serial Number"), so every value is read
by its section path. Labels are the English ones; system_profiler follows the
user's language on some releases, which is why the provider asks the
locale-independent ioreg first and uses this report only to fill gaps.
"""

from __future__ import annotations

import re

from agent.parsers.macos_ioreg import MacBatteryFacts

_LINE = re.compile(r"^(\s*)([^:]+?):\s*(.*?)\s*$")
# Bounded digits: a huge number would become float("inf") and int() of it raises.
_NUMBER = re.compile(r"-?\d{1,15}(?:[.,]\d{1,15})?")
_BATTERY = "Battery Information"
_CHARGER = "AC Charger Information"


def parse_power_sections(text: str) -> dict[tuple[str, ...], str]:
    """{(section, ..., key): value} for every "Key: value" line, keyed by the path of
    the headers above it (a header is a "Key:" line with no value)."""
    stack: list[tuple[int, str]] = []
    values: dict[tuple[str, ...], str] = {}
    for line in text.splitlines():
        match = _LINE.match(line)
        if not match:
            continue
        indent = len(match.group(1).expandtabs())
        key, value = match.group(2).strip(), match.group(3)
        while stack and stack[-1][0] >= indent:
            stack.pop()
        if value:
            values[(*(name for _, name in stack), key)] = value
        else:
            stack.append((indent, key))
    return values


def _find(values: dict[tuple[str, ...], str], section: str, key: str) -> str | None:
    """The value of `key` anywhere below `section` (sub-sections moved between
    releases, e.g. "Charge Information" vs directly under the battery)."""
    for path, value in values.items():
        if path[-1] == key and section in path[:-1]:
            return value
    return None


def _number(raw: str | None) -> float | None:
    if raw is None:
        return None
    match = _NUMBER.search(raw)
    return float(match.group(0).replace(",", ".")) if match else None


def _bool(raw: str | None) -> bool | None:
    if raw is None:
        return None
    return {"yes": True, "no": False, "true": True, "false": False}.get(raw.strip().lower())


def _percent(values: dict[tuple[str, ...], str], full: float | None) -> float | None:
    # Apple Silicon prints "State of Charge (%)"; Intel releases print mAh only.
    state = _number(_find(values, _BATTERY, "State of Charge (%)"))
    if state is None:
        remaining = _number(_find(values, _BATTERY, "Charge Remaining (mAh)"))
        if remaining is None or not full:
            return None
        state = remaining / full * 100.0
    return round(min(max(state, 0.0), 100.0), 1)


def _cycles(values: dict[tuple[str, ...], str]) -> int | None:
    # 0 cycles is what packs that do not count report for ever: unknown, not new.
    cycles = _number(_find(values, _BATTERY, "Cycle Count"))
    return int(cycles) if cycles is not None and cycles > 0 else None


def parse_system_profiler_power(text: str) -> MacBatteryFacts | None:
    """The internal battery from the Power report, or None when it has no
    "Battery Information" section (desktop Macs, empty or foreign text).
    The pack's serial number is never read."""
    values = parse_power_sections(text)
    if not any(_BATTERY in path[:-1] for path in values):
        return None
    full = _number(_find(values, _BATTERY, "Full Charge Capacity (mAh)"))
    full = full if full is not None and full > 0 else None
    amperage = _number(_find(values, _BATTERY, "Amperage (mA)"))
    voltage = _number(_find(values, _BATTERY, "Voltage (mV)"))
    return MacBatteryFacts(
        full_mah=full,
        percent=_percent(values, full),
        reported_health_pct=_number(_find(values, _BATTERY, "Maximum Capacity")),
        cycle_count=_cycles(values),
        voltage_mv=voltage if voltage is not None and voltage > 0 else None,
        amperage_ma=int(amperage) if amperage is not None else None,
        charging=_bool(_find(values, _BATTERY, "Charging")),
        fully_charged=_bool(_find(values, _BATTERY, "Fully Charged")),
        external_power=_bool(_find(values, _CHARGER, "Connected")),
        installed=_bool(_find(values, _BATTERY, "Battery Installed")),
        manufacturer=_find(values, _BATTERY, "Manufacturer"),
        model=_find(values, _BATTERY, "Device Name"),
        condition=_find(values, _BATTERY, "Condition"),
    )
