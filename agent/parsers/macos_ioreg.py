"""Parse the AppleSmartBattery registry entry printed by `ioreg`.

Accepts the full `ioreg -rn AppleSmartBattery` output, the lines of `ioreg -l`
filtered by grep (with their `|   |` tree prefixes), and logs that repeat the same
keys over time (the last value of a key wins: it is the newest sample).

Also holds `MacBatteryFacts`, the source-unit (mAh) view of the internal battery
that both macOS battery parsers fill, and its conversion to a `BatteryReading`.
ioreg is locale-independent, which is why the provider asks it first; the
localized `system_profiler` text only fills the gaps.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields

from agent.model import BatteryReading, health_pct

# `"Key" = value`, after any run of tree-drawing characters (`|`, `+-o`, spaces).
_PROPERTY = re.compile(r'^[\s|+o-]*"([^"]+)"\s*=\s*(.*?)\s*$')
# Digits are bounded so absurd input cannot hit int()'s 4300-digit limit.
_LEGACY_ITEM = re.compile(r'"([^"]+)"=(-?\d{1,20})(?!\d)')
_U64 = 1 << 64
_CELSIUS_PER_UNIT = 0.01  # AppleSmartBattery "Temperature" is in hundredths of a degree C
_NAME = "InternalBattery-0"  # what pmset calls the one internal pack


@dataclass(slots=True)
class MacBatteryFacts:
    """What one macOS source says about the internal battery, in its own units.

    Capacities are mAh. `condition` is Apple's verdict from system_profiler
    ("Normal", "Service Recommended", ...); the reading has no field for it yet.
    The serial number is deliberately absent: it never leaves the laptop.
    """

    design_mah: float | None = None
    full_mah: float | None = None
    percent: float | None = None
    # Apple Silicon system_profiler prints only "Maximum Capacity: 91%" (no mAh):
    # Apple's own rounded full/design ratio, used when the mAh values are missing.
    reported_health_pct: float | None = None
    cycle_count: int | None = None
    voltage_mv: float | None = None
    temperature_c: float | None = None
    amperage_ma: int | None = None
    charging: bool | None = None
    fully_charged: bool | None = None
    external_power: bool | None = None
    installed: bool | None = None
    manufacturer: str | None = None
    model: str | None = None
    condition: str | None = None


def parse_ioreg_properties(text: str) -> dict[str, str]:
    """Every `"Key" = value` line as raw strings; a repeated key keeps its last value."""
    props: dict[str, str] = {}
    for line in text.splitlines():
        match = _PROPERTY.match(line)
        if match:
            props[match.group(1)] = match.group(2)
    return props


def to_signed64(value: int) -> int:
    """ioreg prints negative currents as unsigned 64-bit (18446744073709550084 = -1532)."""
    if 1 << 63 <= value < _U64:
        return value - _U64
    return value


def _int(raw: str | None) -> int | None:
    if raw is None or len(raw) > 40:  # no real value is longer; int() has a digit limit
        return None
    try:
        return int(raw.strip())
    except ValueError:
        return None


def _bool(raw: str | None) -> bool | None:
    if raw is None:
        return None
    return {"yes": True, "no": False}.get(raw.strip().lower())


def _text(raw: str | None) -> str | None:
    if raw is None or len(raw) < 2 or not (raw[0] == raw[-1] == '"'):
        return None
    return raw[1:-1].strip() or None


def _legacy(props: dict[str, str]) -> dict[str, int]:
    """`LegacyBatteryInfo` = {"Amperage"=...,"Voltage"=...}: a fallback for old logs
    (batlog) whose filtered lines kept this dictionary but not the top-level keys."""
    raw = props.get("LegacyBatteryInfo", "")
    return {key: int(value) for key, value in _LEGACY_ITEM.findall(raw)}


def _positive(value: int | None) -> float | None:
    return float(value) if value is not None and value > 0 else None


def _nested(props: dict[str, str], key: str) -> int | None:
    """`key` inside the "BatteryData" dictionary (Apple Silicon, macOS 12+), which
    holds the design capacity and cycle count a filtered or trimmed dump may lack at
    the top level. Its first occurrence: nested dictionaries come after."""
    match = re.search(rf'"{key}"=(-?\d{{1,20}})(?!\d)', props.get("BatteryData", ""))
    return int(match.group(1)) if match else None


def _capacities(props: dict[str, str]) -> tuple[float | None, float | None, float | None]:
    """(design mAh, full mAh, charge percent).

    On Apple Silicon "MaxCapacity" is a percentage (100) and "CurrentCapacity" the
    charge percent shown in the menu bar; the real mAh is "AppleRawMaxCapacity"
    (else "NominalChargeCapacity", the gauge's full charge before its own
    corrections). Intel Macs print mAh in both, and newer macOS adds the AppleRaw*
    copies, so the raw key wins whenever it is there. The design capacity is the
    top-level key, else the one in "BatteryData".
    """
    design = _positive(_int(props.get("DesignCapacity")))
    if design is None:
        design = _positive(_nested(props, "DesignCapacity"))
    max_cap = _positive(_int(props.get("MaxCapacity")))
    raw_max = _positive(_int(props.get("AppleRawMaxCapacity")))
    nominal = _positive(_int(props.get("NominalChargeCapacity")))
    current = _int(props.get("CurrentCapacity"))
    raw_current = _int(props.get("AppleRawCurrentCapacity"))
    mah_max = raw_max if raw_max is not None else nominal
    percent: float | None = None
    if mah_max is not None and max_cap is not None and max_cap <= 100:
        # Apple Silicon: MaxCapacity/CurrentCapacity are already percentages.
        percent = float(current) if current is not None and 0 <= current <= 100 else None
    elif max_cap is not None and current is not None and current >= 0:
        percent = current / max_cap * 100.0
    elif raw_max is not None and raw_current is not None and raw_current >= 0:
        percent = raw_current / raw_max * 100.0
    full = mah_max if mah_max is not None else (max_cap if max_cap and max_cap > 100 else None)
    if percent is not None:
        percent = round(min(percent, 100.0), 1)
    return design, full, percent


def _cycle_count(props: dict[str, str], legacy: dict[str, int]) -> int | None:
    # Many packs report 0 cycles for ever: 0 means "does not know", never "new".
    cycles = _int(props.get("CycleCount"))
    if cycles is None:
        cycles = _nested(props, "CycleCount")
    if cycles is None:
        cycles = legacy.get("Cycle Count")
    return cycles if cycles is not None and cycles > 0 else None


def _amperage(props: dict[str, str], legacy: dict[str, int]) -> int | None:
    raw = _int(props.get("Amperage"))
    if raw is None:
        raw = legacy.get("Amperage")
    return to_signed64(raw) if raw is not None else None


def parse_ioreg_battery(text: str) -> MacBatteryFacts | None:
    """The internal battery from ioreg output, or None when it names no battery key
    (a desktop Mac prints nothing for `ioreg -rn AppleSmartBattery`)."""
    props = parse_ioreg_properties(text)
    legacy = _legacy(props)
    design, full, percent = _capacities(props)
    voltage = _positive(_int(props.get("Voltage")))
    if voltage is None:
        voltage = _positive(legacy.get("Voltage"))
    temp = _int(props.get("Temperature"))
    facts = MacBatteryFacts(
        design_mah=design,
        full_mah=full,
        percent=percent,
        cycle_count=_cycle_count(props, legacy),
        voltage_mv=voltage,
        temperature_c=round(temp * _CELSIUS_PER_UNIT, 2) if temp is not None and temp > 0 else None,
        amperage_ma=_amperage(props, legacy),
        charging=_bool(props.get("IsCharging")),
        fully_charged=_bool(props.get("FullyCharged")),
        external_power=_bool(props.get("ExternalConnected")),
        installed=_bool(props.get("BatteryInstalled")),
        manufacturer=_text(props.get("Manufacturer")),
        # "DeviceName" is the fuel-gauge chip (e.g. bq20z451), the only model-like
        # name macOS gives for the pack; it still groups packs of one design.
        model=_text(props.get("DeviceName")),
    )
    return facts if _names_a_battery(facts) else None


def _names_a_battery(facts: MacBatteryFacts) -> bool:
    """Charge, capacity or battery flags seen. A lone "Voltage" or "Temperature" line
    proves nothing: other registry nodes print those keys too."""
    keys = (facts.design_mah, facts.full_mah, facts.percent, facts.cycle_count)
    flags = (facts.charging, facts.fully_charged, facts.external_power, facts.installed)
    return any(v is not None for v in keys) or any(v is not None for v in flags)


def has_gaps(facts: MacBatteryFacts | None) -> bool:
    """True when system_profiler could add something ioreg did not say. It costs
    far more CPU than ioreg (it is a whole report tool), so it runs only then."""
    if facts is None:
        return True
    wanted = (facts.full_mah, facts.percent, facts.charging, facts.external_power)
    return any(value is None for value in wanted)


def fill_gaps(primary: MacBatteryFacts, secondary: MacBatteryFacts) -> MacBatteryFacts:
    """`primary` with each unknown field taken from `secondary` (same units: mAh)."""
    merged = MacBatteryFacts()
    for f in fields(MacBatteryFacts):
        value = getattr(primary, f.name)
        setattr(merged, f.name, value if value is not None else getattr(secondary, f.name))
    return merged


def _status(facts: MacBatteryFacts) -> str:
    if facts.fully_charged:
        return "full"
    if facts.charging:
        return "charging"
    if facts.external_power is True:
        return "not_charging"
    if facts.external_power is False:
        return "discharging"
    if facts.amperage_ma:  # no flags at all: the sign of the measured current tells
        return "charging" if facts.amperage_ma > 0 else "discharging"
    return "unknown"


def to_battery_reading(facts: MacBatteryFacts) -> BatteryReading:
    """The reading for the internal pack. Capacity mWh fields stay None: neither
    ioreg nor system_profiler gives a design voltage (only the live "Voltage", which
    moves with charge), so mAh cannot be converted; health is a mAh ratio instead."""
    health = health_pct(facts.full_mah, facts.design_mah)
    if health is None:
        health = facts.reported_health_pct
    return BatteryReading(
        name=_NAME,
        present=facts.installed is not False,
        status=_status(facts),
        percent=facts.percent,
        plugged=facts.external_power,
        health_pct=health,
        cycle_count=facts.cycle_count,
        voltage_mv=facts.voltage_mv,
        temperature_c=facts.temperature_c,
        manufacturer=facts.manufacturer,
        model=facts.model,
    )
