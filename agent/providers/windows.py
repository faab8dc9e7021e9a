"""Windows provider: a thin reader over the Windows parsers.

Batteries: `powercfg /batteryreport /xml` first (per-pack design and full capacity
in mWh, cycle count, chemistry), then WMI (root\\wmi battery classes and
Win32_Battery, via one fixed PowerShell script) for what the report lacks: charge
state, percent, voltage, and the capacities when powercfg is unavailable. psutil's
basics (percent, plugged) are asked only on the live machine.
Wi-Fi: `netsh wlan show interfaces`, in whatever language Windows displays; when it
withholds the link (Windows 11 24H2 without location consent), the Native Wi-Fi
API's state, RSSI and channel (`agent.winwlan`), which reveal no SSID or BSSID.

Every input comes from the `Source`, so a capture folder replays the same pass.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace

from agent.model import BatteryReading, OsInfo, Reading, WifiReading
from agent.parsers.windows_battery_report import parse_battery_report
from agent.parsers.windows_netsh import parse_netsh_interfaces
from agent.parsers.windows_wlanapi import parse_wlanapi
from agent.parsers.windows_wmi import (
    WMI_BATTERY_SCRIPT,
    combine_wmi,
    parse_wmi_batteries,
    with_wmi,
)
from agent.providers.base import psutil_batteries
from agent.sources import Source

log = logging.getLogger(__name__)

BATTERY_REPORT = (
    "powercfg-batteryreport.xml",
    ["powercfg", "/batteryreport", "/xml", "/output", "{out}"],
)
WMI_BATTERY = (
    "wmi-battery.txt",
    ["powershell", "-NoProfile", "-NonInteractive", "-Command", WMI_BATTERY_SCRIPT],
)
NETSH_INTERFACES = ("netsh-wlan-show-interfaces.txt", ["netsh", "wlan", "show", "interfaces"])
WLANAPI_LINK = "wlanapi-link.txt"


class WindowsProvider:
    # powercfg and PowerShell each cost far more than the agent's 30 ms CPU budget
    # per report, and capacities move over weeks: on the live machine they are
    # re-read this often; in between, only psutil's cheap charge state is fresh.
    native_interval_s = 6 * 3600.0

    def __init__(self, source: Source, release: str | None = None) -> None:
        self.source = source
        self.os = OsInfo(platform="windows", release=release)
        self._native: list[BatteryReading] | None = None
        self._native_at = 0.0

    def read(self) -> Reading:
        return Reading(os=self.os, batteries=self._batteries(), wifi=self._wifi())

    def _command(self, spec: tuple[str, list[str]]) -> str | None:
        name, argv = spec
        try:
            return self.source.command(name, argv)
        except Exception:  # a provider never raises; a broken source is "unavailable"
            log.exception("reading %s failed", name)
            return None

    def _read_native(self) -> list[BatteryReading]:
        report_text = self._command(BATTERY_REPORT)
        report = parse_battery_report(report_text) if report_text else None
        wmi_text = self._command(WMI_BATTERY)
        wmi = combine_wmi(parse_wmi_batteries(wmi_text) or []) if wmi_text else []
        return with_wmi(report, wmi)

    def _batteries(self) -> list[BatteryReading]:
        if not self.source.is_live:
            return self._read_native()
        now = time.monotonic()
        if self._native is None or now - self._native_at >= self.native_interval_s:
            batteries = self._read_native()
            self._native = [replace(b) for b in batteries]
            self._native_at = now
        else:
            # Capacities from the last native pass; its charge state is stale.
            batteries = [
                replace(b, status="unknown", percent=None, plugged=None, voltage_mv=None)
                for b in self._native
            ]
        return _with_psutil(batteries)

    def _wifi(self) -> WifiReading | None:
        text = self._command(NETSH_INTERFACES)
        reading = parse_netsh_interfaces(text) if text else None
        if reading is None or not reading.ssid_hidden_by_os or reading.rssi_dbm is not None:
            return reading
        # netsh withheld the link: ask the API that does not reveal SSID or BSSID.
        from agent.winwlan import read_link  # noqa: PLC0415 - Windows only, rarely needed

        native = self.source.call(WLANAPI_LINK, read_link)
        link = parse_wlanapi(native) if native else None
        return link if link is not None else reading


def _with_psutil(batteries: list[BatteryReading]) -> list[BatteryReading]:
    """psutil reports one combined battery: it may fill the gaps of a single pack, or
    stand in when no native source answered. Two packs keep their own unknowns."""
    basics = psutil_batteries()
    if not basics:
        return batteries
    if not batteries:
        basics[0].name = "battery0"  # the name the native sources give the first pack
        return basics
    if len(batteries) == 1:
        only = batteries[0]
        if only.percent is None:
            only.percent = basics[0].percent
        if only.plugged is None:
            only.plugged = basics[0].plugged
        if only.status == "unknown":
            only.status = basics[0].status
    return batteries
