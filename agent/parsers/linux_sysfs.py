"""Pure parsers for Linux power supplies (`/sys/class/power_supply/<NAME>/`).

Inputs come in two shapes, both turned into one `{attribute: raw value}` mapping
keyed by the sysfs attribute file name ("energy_full", "cycle_count", ...):

- the `uevent` file: `POWER_SUPPLY_<ATTR>=<value>` lines, keys in any order.
  `udevadm monitor --property` dumps look the same plus a header and ACTION=,
  DEVPATH=, SEQNUM= lines; those are ignored, so such dumps parse too.
- per-attribute files (`energy_full`, `cycle_count`...): one value and a newline.

Units are the kernel's (Documentation/ABI/testing/sysfs-class-power): energy µWh,
charge µAh, voltage µV, temperature tenths of °C, capacity %.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from agent.model import BatteryReading, health_pct

_PREFIX = "POWER_SUPPLY_"
# Bounded: int() refuses strings over 4300 digits, and no sysfs value has 19.
_INT = re.compile(r"[+-]?[0-9]{1,18}", re.ASCII)

# Attribute files a battery reading uses; the provider reads the ones the uevent lacks.
BATTERY_ATTRS = (
    "status",
    "present",
    "capacity",
    "energy_full_design",
    "energy_full",
    "energy_now",
    "charge_full_design",
    "charge_full",
    "charge_now",
    "voltage_min_design",
    "voltage_now",
    "temp",
    "cycle_count",
    "manufacturer",
    "model_name",
    "technology",
)
MAINS_ATTRS = ("online",)
# Older kernels (all the 2015-2018 captures in tests/replay/linux) leave TYPE out of
# the uevent; these keys then tell a battery from an adapter.
_BATTERY_KEYS = frozenset(
    (
        "capacity",
        "energy_full",
        "energy_full_design",
        "energy_now",
        "charge_full",
        "charge_full_design",
        "charge_now",
    )
)

_KINDS = {"battery": "battery", "mains": "mains"}
_STATUSES = {
    "charging": "charging",
    "discharging": "discharging",
    "full": "full",
    "not charging": "not_charging",
    "unknown": "unknown",
}


def parse_uevent(text: str) -> dict[str, str]:
    """`POWER_SUPPLY_ENERGY_FULL=123` lines -> {"energy_full": "123"}; other lines ignored."""
    attrs: dict[str, str] = {}
    for raw in text.splitlines():
        key, sep, value = raw.strip().partition("=")
        if not sep or not key.startswith(_PREFIX) or len(key) == len(_PREFIX):
            continue
        attrs[key[len(_PREFIX) :].lower()] = value.strip()
    return attrs


def parse_attribute(text: str) -> str | None:
    """One sysfs attribute file's value, or None when it is empty."""
    value = text.strip()
    return value or None


def supply_kind(attrs: Mapping[str, str]) -> str | None:
    """Kind of one supply: "battery", "mains", or None (peripheral, USB port, unknown)."""
    # Mice, keyboards and headsets are type Battery too; only scope=Device tells them
    # apart from the laptop's own pack (kernel power_supply "scope" attribute).
    if attrs.get("scope", "").lower() == "device":
        return None
    kind = attrs.get("type", "").lower()
    if kind:
        # USB, USB_C, UPS, Wireless: not the laptop's own pack nor its wall adapter.
        return _KINDS.get(kind)
    if _BATTERY_KEYS.intersection(attrs):
        return "battery"
    return "mains" if "online" in attrs else None


def mains_online(attrs: Mapping[str, str]) -> bool | None:
    """An adapter's `online` flag: True, False, or None when not reported."""
    value = to_int(attrs.get("online"))
    return None if value is None else value > 0


def to_int(value: str | None) -> int | None:
    """A sysfs integer, or None when absent or not a plain integer."""
    if value is None:
        return None
    value = value.strip()
    return int(value) if _INT.fullmatch(value) else None


def _text(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    # "Unknown" is what the kernel prints when the firmware gave nothing.
    return value if value and value.lower() != "unknown" else None


def _status(value: str | None) -> str:
    return _STATUSES.get((value or "").strip().lower(), "unknown")


def _positive(attrs: Mapping[str, str], key: str) -> int | None:
    # A capacity or voltage of 0 means the firmware did not fill it in, not an empty pack.
    value = to_int(attrs.get(key))
    return value if value is not None and value > 0 else None


def _capacities(
    attrs: Mapping[str, str], design_uv: int | None = None
) -> tuple[int | None, int | None, int | None, str]:
    """(design, full, now, unit) in the source unit: "uWh" (energy_*) or "uAh" (charge_*).

    Some drivers (sbs-battery, bq27xxx) export both families, not always complete: the
    family with both design and full wins, so health is known whenever one family has
    both; else, when one family has only the design and the other only the full
    capacity, the charge becomes energy at the design voltage (`design_uv`); else
    the first family with either."""
    found = []
    for prefix, unit in (("energy", "uWh"), ("charge", "uAh")):
        design = _positive(attrs, f"{prefix}_full_design")
        full = _positive(attrs, f"{prefix}_full")
        if design is not None or full is not None:
            found.append((design, full, to_int(attrs.get(f"{prefix}_now")), unit))
    complete = [f for f in found if f[0] is not None and f[1] is not None]
    if complete:
        return complete[0]
    if len(found) == 2 and design_uv is not None:
        (e_design, e_full, e_now, _), (c_design, c_full, c_now, _) = found

        def to_uwh(uah: int | None) -> int | None:
            return None if uah is None else round(uah * design_uv / 1e6)

        design, full = e_design or to_uwh(c_design), e_full or to_uwh(c_full)
        now = e_now if e_now is not None else to_uwh(c_now)
        return design, full, now, "uWh"
    if found:
        return found[0]
    return None, None, None, "uWh"


def _to_mwh(value: int | None, unit: str, design_uv: int | None) -> float | None:
    if value is None:
        return None
    if unit == "uWh":
        return round(value / 1000.0, 1)
    if design_uv is None:
        return None  # mAh without a design voltage cannot become mWh: stay unknown
    return round(value * design_uv / 1e9, 1)  # µAh x µV = 1e-12 Wh


def _percent(attrs: Mapping[str, str], full: int | None, now: int | None) -> float | None:
    capacity = to_int(attrs.get("capacity"))
    if capacity is not None:
        return float(capacity) if capacity >= 0 else None
    if full is None or now is None or now < 0:
        return None
    # No CAPACITY key (ThinkPad 42T4969 capture): derive it as upower does, clamped to
    # 100 because energy_now may exceed energy_full right after a full charge.
    return round(min(100.0, now / full * 100.0), 1)


def _cycle_count(attrs: Mapping[str, str]) -> int | None:
    cycles = to_int(attrs.get("cycle_count"))
    # Many packs report 0 for ever (ACPI _BIF has no cycle count, and most _BIX
    # firmware leaves it 0: every 2015-2018 uevent capture here says 0 on worn packs),
    # so 0 means "unknown", like a negative value.
    return cycles if cycles is not None and cycles > 0 else None


def to_battery(
    name: str, attrs: Mapping[str, str], plugged: bool | None = None
) -> BatteryReading | None:
    """A system battery's reading, or None for anything else (peripheral, adapter).

    The serial number is never read: it identifies the laptop (privacy by design)."""
    if supply_kind(attrs) != "battery":
        return None
    # ACPI's "design voltage" (_BIF/_BIX) is exported as voltage_min_design;
    # voltage_max_design is the charge voltage and would overstate Wh by ~15 %.
    design_uv = _positive(attrs, "voltage_min_design")
    design, full, now, unit = _capacities(attrs, design_uv)
    voltage_uv = _positive(attrs, "voltage_now")
    temp = to_int(attrs.get("temp"))
    present = to_int(attrs.get("present"))
    return BatteryReading(
        name=name,
        present=present != 0,
        status=_status(attrs.get("status")),
        percent=_percent(attrs, full, now),
        plugged=plugged,
        design_capacity_mwh=_to_mwh(design, unit, design_uv),
        full_capacity_mwh=_to_mwh(full, unit, design_uv),
        health_pct=health_pct(full, design),
        cycle_count=_cycle_count(attrs),
        voltage_mv=None if voltage_uv is None else voltage_uv / 1000.0,
        temperature_c=None if temp is None else temp / 10.0,
        manufacturer=_text(attrs.get("manufacturer")),
        model=_text(attrs.get("model_name")),
        technology=_text(attrs.get("technology")),
    )
