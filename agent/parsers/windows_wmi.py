"""Parse the WMI battery classes, as printed by `WMI_BATTERY_SCRIPT` (PowerShell).

The agent runs that fixed script (see `agent.providers.windows`); its output is one
`Format-List` block per class instance, `Property : Value` lines, blank lines
between blocks. Each block is recognised by the properties it has, not by a class
header, so the same parser also reads `Get-WmiObject ... | Format-List` pastes
(with `__CLASS` lines), `wmic ... /format:list` (`Property=Value`) and PowerShell
one-liners (`PS> (Get-WmiObject ...).DesignedCapacity` then the bare value):

  root\\wmi BatteryStaticData           DesignedCapacity (mWh), DeviceName
  root\\wmi BatteryFullChargedCapacity  FullChargedCapacity (mWh)
  root\\wmi BatteryStatus               RemainingCapacity (mWh), Voltage (mV),
                                       Charging, Discharging, PowerOnline
  root\\wmi BatteryCycleCount           CycleCount
  Win32_Battery                        Name, EstimatedChargeRemaining (%),
                                       BatteryStatus (code), DesignCapacity,
                                       FullChargeCapacity

Blocks of one pack share an `InstanceName` (e.g. ACPI\\PNP0C0A\\1_0) and are merged.

Known lie: Win32_Battery leaves DesignCapacity and FullChargeCapacity EMPTY on most
laptops (glpi-agent issue 240: a ThinkPad T470s in German shows both blank), which
is why the root\\wmi classes are read. Empty is read as unknown, never as 0.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, fields, replace
from itertools import pairwise

from agent.model import BatteryReading, health_pct

# The fixed script the agent runs (`powershell -NoProfile -NonInteractive -Command`).
# Properties are listed by name so that SerialNumber / UniqueID never reach a capture
# file (privacy), and so the output does not depend on PowerShell's default views.
# A class the firmware does not implement prints nothing (errors are silenced).
WMI_BATTERY_SCRIPT = (
    "$ErrorActionPreference='SilentlyContinue';"
    "Get-CimInstance -Namespace root/wmi -ClassName BatteryStaticData"
    " | Format-List InstanceName,DeviceName,DesignedCapacity;"
    "Get-CimInstance -Namespace root/wmi -ClassName BatteryFullChargedCapacity"
    " | Format-List InstanceName,FullChargedCapacity;"
    "Get-CimInstance -Namespace root/wmi -ClassName BatteryStatus"
    " | Format-List InstanceName,RemainingCapacity,Voltage,Charging,Discharging,PowerOnline;"
    "Get-CimInstance -Namespace root/wmi -ClassName BatteryCycleCount"
    " | Format-List InstanceName,CycleCount;"
    "Get-CimInstance -ClassName Win32_Battery | Format-List"
    " Name,EstimatedChargeRemaining,BatteryStatus,DesignCapacity,FullChargeCapacity,DesignVoltage"
)

_LINE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*[:=][ \t]?(.*)$")
# `PS C:\...> (Get-WmiObject -Class X -Namespace ROOT/WMI).Property`
_ONELINER = re.compile(r"\)\.([A-Za-z_][A-Za-z0-9_]*)\s*$")

# Win32_Battery.BatteryStatus codes (Microsoft docs): 1 "Other" is documented as
# discharging, 2 "Unknown" as "on AC, not necessarily charging".
_WIN32_STATUS = {1: "discharging", 3: "full"} | dict.fromkeys((6, 7, 8, 9), "charging")
_WIN32_PLUGGED = {1: False, 2: True, 6: True, 7: True, 8: True, 9: True}


@dataclass(slots=True)
class WmiBattery:
    """What WMI says about one pack. Every field None when not reported."""

    instance: str = ""
    device_name: str | None = None
    design_mwh: float | None = None
    full_mwh: float | None = None
    remaining_mwh: float | None = None
    voltage_mv: float | None = None
    charging: bool | None = None
    discharging: bool | None = None
    power_online: bool | None = None
    cycle_count: int | None = None
    percent: float | None = None  # Win32_Battery EstimatedChargeRemaining
    win32_status: int | None = None  # Win32_Battery BatteryStatus code
    from_win32: bool = False


def _lines(text: str) -> list[str]:
    """Lines with single blank lines dropped when the text is double-spaced.

    A CRLF text saved once more in text mode becomes CR CR LF, which reads back with
    a blank line after every line; the real separators then are runs of blanks."""
    lines = text.splitlines()
    content = [i for i, line in enumerate(lines) if line.strip()]
    double_spaced = len(content) > 1 and all(b - a > 1 for a, b in pairwise(content))
    if not double_spaced:
        return lines
    kept = []
    for i, line in enumerate(lines):
        lone_blank = not line.strip() and i > 0 and i + 1 < len(lines) and lines[i + 1].strip()
        if not (lone_blank and lines[i - 1].strip()):
            kept.append(line)
    return kept


def _blocks(text: str) -> list[dict[str, str]]:
    """Property maps, one per instance. A block ends at a blank line, or when a
    property repeats (a new instance even if the blank line was lost)."""
    blocks: list[dict[str, str]] = [{}]
    pending: str | None = None  # property named by a one-liner prompt
    for raw in _lines(text):
        line = raw.strip()
        if not line:
            if blocks[-1]:
                blocks.append({})
            continue
        if pending is not None and ":" not in line and "=" not in line:
            blocks[-1][pending] = line
            pending = None
            continue
        oneliner = _ONELINER.search(line)
        match = _LINE.match(raw)
        if oneliner:
            pending = oneliner.group(1)
        elif match:
            if match.group(1) in blocks[-1]:
                blocks.append({})
            blocks[-1][match.group(1)] = match.group(2).strip()
    return [b for b in blocks if b]


def _num(props: dict[str, str], key: str, zero_ok: bool = False) -> float | None:
    """A positive number (or >= 0 with `zero_ok`: an empty pack really holds 0 mWh),
    None when empty or not a number. A capacity, voltage or cycle count of 0 means
    "not reported" in these classes."""
    value = props.get(key, "").strip()
    try:
        number = float(value)
    except ValueError:
        return None
    # "nan"/"inf" parse as floats but are no measurement.
    if not math.isfinite(number) or number < 0 or (number == 0 and not zero_ok):
        return None
    return number


def _bool(props: dict[str, str], key: str) -> bool | None:
    value = props.get(key, "").strip().lower()
    return {"true": True, "false": False}.get(value)


def _record(props: dict[str, str]) -> WmiBattery:
    cycles = _num(props, "CycleCount")
    status = _num(props, "BatteryStatus")
    percent = _num(props, "EstimatedChargeRemaining", zero_ok=True)
    return WmiBattery(
        instance=props.get("InstanceName", ""),
        device_name=props.get("DeviceName") or props.get("Name") or None,
        # root\wmi names first; Win32_Battery's (usually empty, see above) last.
        design_mwh=_num(props, "DesignedCapacity") or _num(props, "DesignCapacity"),
        full_mwh=_num(props, "FullChargedCapacity") or _num(props, "FullChargeCapacity"),
        remaining_mwh=_num(props, "RemainingCapacity", zero_ok=True),
        voltage_mv=_num(props, "Voltage"),
        charging=_bool(props, "Charging"),
        discharging=_bool(props, "Discharging"),
        power_online=_bool(props, "PowerOnline"),
        # 0 is "not counted" on many packs, like in the battery report.
        cycle_count=int(cycles) if cycles is not None else None,
        percent=min(percent, 100.0) if percent is not None else None,
        win32_status=int(status) if status is not None else None,
    )


def _merge(into: WmiBattery, other: WmiBattery) -> None:
    for name in (f.name for f in fields(WmiBattery)):
        if getattr(into, name) in (None, "") and getattr(other, name) not in (None, ""):
            setattr(into, name, getattr(other, name))


_KNOWN = (
    "DesignedCapacity", "FullChargedCapacity", "RemainingCapacity", "Voltage", "Charging",
    "Discharging", "PowerOnline", "CycleCount", "EstimatedChargeRemaining", "DesignCapacity",
    "FullChargeCapacity",
)  # fmt: skip


def parse_wmi_batteries(text: str) -> list[WmiBattery] | None:
    """One record per pack (blocks merged by InstanceName; Win32_Battery blocks,
    which have none, are kept apart), or None when no battery class was printed."""
    by_instance: dict[str, WmiBattery] = {}
    win32: list[WmiBattery] = []
    for props in _blocks(text):
        if not any(key in props for key in _KNOWN):
            continue
        record = _record(props)
        if "EstimatedChargeRemaining" in props or "DesignVoltage" in props:
            record.from_win32 = True
            win32.append(record)
        elif record.instance in by_instance:
            _merge(by_instance[record.instance], record)
        else:
            by_instance[record.instance] = record
    records = [by_instance[k] for k in sorted(by_instance)] + win32
    return records or None


def combine_wmi(records: list[WmiBattery]) -> list[WmiBattery]:
    """One record per pack: each Win32_Battery record folded into its root\\wmi
    twin (same name, else same position); Win32_Battery alone when root\\wmi is empty."""
    root = [replace(r) for r in records if not r.from_win32]
    win32 = [r for r in records if r.from_win32]
    if not root:
        return [replace(r) for r in win32]
    for i, w in enumerate(win32):
        twin = match_record(root, i, len(win32), w.device_name)
        if twin is not None:
            _merge(twin, w)
    return root


def match_record(
    pool: list[WmiBattery], index: int, count: int, model: str | None
) -> WmiBattery | None:
    """The record of `pool` describing pack number `index` of `count`, named `model`."""
    for record in pool:
        if model is not None and record.device_name == model:
            return record
    if len(pool) == count and index < count:
        return pool[index]
    return None


def _percent(r: WmiBattery) -> float | None:
    if r.remaining_mwh is not None and r.full_mwh is not None:
        return round(min(r.remaining_mwh / r.full_mwh * 100.0, 100.0), 1)
    return r.percent


def _status(r: WmiBattery, percent: float | None) -> str:
    if r.charging:
        return "charging"
    if r.discharging:
        return "discharging"
    if r.power_online and r.charging is False and r.discharging is False:
        # On AC and idle: full, or held below full (charge threshold, too hot).
        return "full" if percent is not None and percent >= 99.5 else "not_charging"
    return _WIN32_STATUS.get(r.win32_status or 0, "unknown")


def to_battery(r: WmiBattery, name: str) -> BatteryReading:
    percent = _percent(r)
    plugged = r.power_online
    if plugged is None and r.win32_status is not None:
        plugged = _WIN32_PLUGGED.get(r.win32_status)
    return BatteryReading(
        name=name,
        status=_status(r, percent),
        percent=percent,
        plugged=plugged,
        design_capacity_mwh=r.design_mwh,
        full_capacity_mwh=r.full_mwh,
        health_pct=health_pct(r.full_mwh, r.design_mwh),
        cycle_count=r.cycle_count,
        voltage_mv=r.voltage_mv,
        model=r.device_name,
    )


def fill_gaps(battery: BatteryReading, r: WmiBattery) -> BatteryReading:
    """`battery` (from the battery report, which wins) with its unknowns taken from WMI."""
    extra = to_battery(r, battery.name)
    out = replace(battery)
    for name in (f.name for f in fields(BatteryReading)):
        if name != "health_pct" and getattr(out, name) is None:
            setattr(out, name, getattr(extra, name))
    if out.status == "unknown":
        out.status = extra.status
    # Recomputed, not copied: one capacity may come from each source.
    out.health_pct = health_pct(out.full_capacity_mwh, out.design_capacity_mwh)
    return out


def with_wmi(report: list[BatteryReading] | None, wmi: list[WmiBattery]) -> list[BatteryReading]:
    """The battery report's packs with their gaps filled from WMI, or WMI's packs
    when the report is missing or lists none."""
    if not report:
        return [to_battery(record, f"battery{i}") for i, record in enumerate(wmi)]
    batteries = []
    for i, battery in enumerate(report):
        twin = match_record(wmi, i, len(report), battery.model)
        batteries.append(fill_gaps(battery, twin) if twin else battery)
    return batteries
