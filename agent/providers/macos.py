"""macOS provider: a thin reader over the pure parsers in `agent.parsers.macos_*`.

Battery: `ioreg -rn AppleSmartBattery` first (locale-independent, has the design
capacity), then `system_profiler SPPowerDataType` to fill what ioreg left unknown.
Wi-Fi: `wdutil info` (needs root: the agent runs as a LaunchDaemon), then the legacy
`airport -I` (removed in macOS 14.4). `airport -s` is never run: it lists the
neighbours' networks.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from agent.model import BatteryReading, OsInfo, Reading, WifiReading
from agent.parsers.macos_ioreg import (
    MacBatteryFacts,
    fill_gaps,
    has_gaps,
    parse_ioreg_battery,
    to_battery_reading,
)
from agent.parsers.macos_system_profiler import parse_system_profiler_power
from agent.parsers.macos_wifi import parse_airport_info, parse_wdutil_info
from agent.providers.base import psutil_batteries
from agent.sources import Source

log = logging.getLogger(__name__)

T = TypeVar("T")

IOREG = ("ioreg-AppleSmartBattery.txt", ["ioreg", "-rn", "AppleSmartBattery"])
SYSTEM_PROFILER = ("system_profiler-SPPowerDataType.txt", ["system_profiler", "SPPowerDataType"])
WDUTIL = ("wdutil-info.txt", ["wdutil", "info"])
AIRPORT = (
    "airport-I.txt",
    [
        "/System/Library/PrivateFrameworks/Apple80211.framework/Versions/Current/Resources/airport",
        "-I",
    ],
)


def _guarded(what: str, step: Callable[[], T], default: T) -> T:
    """Run one reading step; a bug in it costs that part of the reading, not the report."""
    try:
        return step()
    except Exception:
        log.exception("macOS %s reading failed; reporting it as unknown", what)
        return default


class MacProvider:
    def __init__(self, source: Source, release: str | None = None) -> None:
        self.source = source
        self.os = OsInfo(platform="darwin", release=release)

    def read(self) -> Reading:
        return Reading(
            os=self.os,
            batteries=_guarded("battery", self._batteries, []),
            wifi=_guarded("Wi-Fi", self._wifi, None),
        )

    def _command(self, spec: tuple[str, list[str]]) -> str | None:
        name, argv = spec
        return self.source.command(name, argv)

    def _batteries(self) -> list[BatteryReading]:
        ioreg_text = self._command(IOREG)
        facts = parse_ioreg_battery(ioreg_text) if ioreg_text is not None else None
        if has_gaps(facts):
            facts = self._fill_from_profiler(facts)
        if facts is not None:
            return [to_battery_reading(facts)]
        # Neither source knows a battery (a desktop Mac, or both tools missing):
        # on the live machine psutil may still know the basics.
        return psutil_batteries() if self.source.is_live else []

    def _fill_from_profiler(self, facts: MacBatteryFacts | None) -> MacBatteryFacts | None:
        text = self._command(SYSTEM_PROFILER)
        profiler = parse_system_profiler_power(text) if text is not None else None
        if facts is None or profiler is None:
            return facts if profiler is None else profiler
        return fill_gaps(facts, profiler)

    def _wifi(self) -> WifiReading | None:
        wdutil_text = self._command(WDUTIL)
        reading = parse_wdutil_info(wdutil_text) if wdutil_text is not None else None
        if reading is not None:
            return reading
        airport_text = self._command(AIRPORT)
        return parse_airport_info(airport_text) if airport_text is not None else None
