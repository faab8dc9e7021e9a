"""Parse `powercfg /batteryreport /xml` (one <Battery> per pack; a ThinkPad with a
second, external pack has two).

Only `<Batteries>/<Battery>` is read. The report also has `<RuntimeEstimates>`,
`<RecentUsage>` and `<History>` whose `DesignCapacity` / `FullChargeCapacity` are
system totals or past days (the Dell XPS 13 history even holds DesignCapacity="0"
rows): they are ignored so they can never be mistaken for a pack's values.

Capacities are in mWh already (powercfg converts). `CycleCount` 0 is taken as
unknown: many packs never count (both Dell reports under tests/replay/windows say 0
on batteries worn to 85 %). `SerialNumber` is never read (privacy).
"""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET

from agent.model import BatteryReading, health_pct
from agent.parsers.windows_battery_html import HtmlPack, parse_installed_batteries

log = logging.getLogger(__name__)

# `Chemistry` codes seen in reports, to the words Linux sysfs uses; others kept as is.
_CHEMISTRY = {"lip": "Li-poly", "li-i": "Li-ion", "lion": "Li-ion", "pbac": "Lead-acid"}


def _local(tag: str) -> str:
    """Tag name without its namespace: the 2012 schema URI may change between builds."""
    return tag.rsplit("}", 1)[-1]


def _elements(text: str) -> list[ET.Element]:
    """Every complete element, in document order of their end tags.

    A pull parser keeps what it parsed before a syntax error (the error is queued
    after those events), so a truncated report (a copy cut short, a disk full while
    powercfg wrote it) still yields its batteries."""
    # The XML is written by powercfg on this machine; ElementTree resolves no
    # external entities and expat >= 2.4.1 limits entity expansion.
    parser: ET.XMLPullParser[ET.Element] = ET.XMLPullParser(events=("end",))
    elements: list[ET.Element] = []
    try:
        parser.feed(text.lstrip("\ufeff \t\r\n"))
        parser.close()
    except (ET.ParseError, ValueError) as exc:
        log.debug("battery report cut short or malformed: %s", exc)
    try:
        for event in parser.read_events():
            element = event[1] if isinstance(event, tuple) and len(event) == 2 else None
            if isinstance(element, ET.Element):
                elements.append(element)
    except (ET.ParseError, ValueError) as exc:
        log.debug("battery report cut short or malformed: %s", exc)
    return elements


def _text(battery: ET.Element, name: str) -> str | None:
    for child in battery:
        if _local(child.tag) == name:
            value = (child.text or "").strip()
            return value or None
    return None


def _int(battery: ET.Element, name: str) -> int | None:
    value = _text(battery, name)
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _positive(value: int | None) -> float | None:
    return float(value) if value is not None and value > 0 else None


def _technology(code: str | None) -> str | None:
    if code is None:
        return None
    return _CHEMISTRY.get(code.lower(), code)


def _battery(element: ET.Element, index: int) -> BatteryReading:
    design = _positive(_int(element, "DesignCapacity"))
    full = _positive(_int(element, "FullChargeCapacity"))
    cycles = _int(element, "CycleCount")
    return BatteryReading(
        name=f"battery{index}",
        design_capacity_mwh=design,
        full_capacity_mwh=full,
        health_pct=health_pct(full, design),
        # 0 means "this pack does not count", not "new": see the module docstring.
        cycle_count=cycles if cycles is not None and cycles > 0 else None,
        manufacturer=_text(element, "Manufacturer"),
        # `Id` is the pack's model / FRU number ("00HW023", "DELL XDY9K14"); it is
        # also what WMI calls DeviceName and Win32_Battery calls Name.
        model=_text(element, "Id"),
        technology=_technology(_text(element, "Chemistry")),
    )


def _from_html(pack: HtmlPack, index: int) -> BatteryReading:
    return BatteryReading(
        name=f"battery{index}",
        design_capacity_mwh=pack.design_mwh,
        full_capacity_mwh=pack.full_mwh,
        health_pct=health_pct(pack.full_mwh, pack.design_mwh),
        cycle_count=pack.cycle_count,
        manufacturer=pack.manufacturer,
        model=pack.model,
        technology=_technology(pack.chemistry),
    )


def parse_battery_report(text: str) -> list[BatteryReading] | None:
    """The packs listed in the report ([] when it lists none, as on a desktop), or
    None when the text is not a battery report. The XML report is what the agent
    asks for; the HTML one (`agent.parsers.windows_battery_html`) is read too."""
    html = parse_installed_batteries(text)
    if html is not None:
        return [_from_html(pack, i) for i, pack in enumerate(html)]
    is_report = False
    packs: list[ET.Element] = []
    for element in _elements(text):
        name = _local(element.tag)
        if name == "Battery":
            packs.append(element)
        elif name in ("Batteries", "BatteryReport", "ReportInformation"):
            is_report = True
    if not packs and not is_report:
        return None
    return [_battery(element, i) for i, element in enumerate(packs)]
