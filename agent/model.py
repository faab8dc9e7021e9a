"""What a provider reads from the machine, before privacy filtering.

Every provider (Linux, Windows, macOS, psutil fallback, simulator) returns these
small types; `agent.sample` turns them into the wire sample. Unknown is `None`,
never a guessed value. Names carry units.
"""

from __future__ import annotations

from dataclasses import dataclass, field

BATTERY_STATUSES = ("charging", "discharging", "full", "not_charging", "unknown")


@dataclass(slots=True)
class BatteryReading:
    """One system battery (a laptop has 0, 1 or 2). Peripherals are never readings."""

    name: str
    present: bool = True
    status: str = "unknown"  # one of BATTERY_STATUSES
    percent: float | None = None
    plugged: bool | None = None
    design_capacity_mwh: float | None = None
    full_capacity_mwh: float | None = None
    # full/design x 100 computed in the source unit, so it is known even when the
    # design voltage (needed to convert mAh to mWh) is not. May exceed 100 on new packs.
    health_pct: float | None = None
    cycle_count: int | None = None  # None when the hardware does not know (0 for ever)
    voltage_mv: float | None = None
    temperature_c: float | None = None
    manufacturer: str | None = None
    model: str | None = None
    technology: str | None = None


@dataclass(slots=True)
class WifiReading:
    """The Wi-Fi link as the OS reports it. `ssid` and `bssid` are raw here and never
    leave the laptop as such: `agent.privacy` keeps the SSID only when it is a school
    network and replaces the BSSID by a keyed hash."""

    interface: str | None
    connected: bool
    ssid: str | None = None
    bssid: str | None = None
    # True when the OS withholds SSID/BSSID (Windows 11 24H2 location consent,
    # macOS 14+ redaction): signal is still reported.
    ssid_hidden_by_os: bool = False
    rssi_dbm: float | None = None
    signal_pct: float | None = None
    noise_dbm: float | None = None
    channel: int | None = None
    band_ghz: float | None = None
    rx_rate_mbps: float | None = None
    tx_rate_mbps: float | None = None
    radio: str | None = None  # e.g. "802.11ax"


@dataclass(slots=True)
class OsInfo:
    platform: str  # windows | linux | darwin
    release: str | None = None


@dataclass(slots=True)
class Reading:
    """Everything one provider pass produced."""

    os: OsInfo
    batteries: list[BatteryReading] = field(default_factory=list)
    wifi: WifiReading | None = None


# A laptop's pack holds roughly 20-100 Wh. Capacities far outside that are not mWh:
# ACPI lets firmware report the battery in mA/mAh ("Power Unit" of _BIF/_BIX), and
# Windows' BATTERY_INFORMATION may flag capacities as relative, "not in any specific
# units" (BATTERY_CAPACITY_RELATIVE); powercfg and WMI print them as mWh anyway.
PLAUSIBLE_MWH = (10_000.0, 200_000.0)


def without_implausible_mwh(b: BatteryReading) -> BatteryReading:
    """The reading with its mWh capacities nulled when they cannot be mWh. health_pct
    (a ratio, unit-free) is kept: full/design is right whatever the unit."""
    low, high = PLAUSIBLE_MWH
    design = b.design_capacity_mwh
    if design is not None and not low <= design <= high:
        b.design_capacity_mwh = None
        b.full_capacity_mwh = None
    return b


def health_pct(full: float | None, design: float | None) -> float | None:
    """full/design x 100, or None when either is unknown or the design is not positive."""
    if full is None or design is None or design <= 0 or full < 0:
        return None
    return round(full / design * 100.0, 2)
