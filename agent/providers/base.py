"""The provider interface and the providers every platform can fall back on."""

from __future__ import annotations

import logging
from typing import Protocol

from agent.model import BatteryReading, OsInfo, Reading

log = logging.getLogger(__name__)


class Provider(Protocol):
    def read(self) -> Reading:
        """One pass over the machine's sources. Never raises on odd input."""
        ...


class NullProvider:
    """For platforms we have no backend for: reports the OS and nothing else."""

    def __init__(self, plat: str, release: str | None = None) -> None:
        self.os = OsInfo(platform=plat, release=release)
        log.info("no battery/Wi-Fi backend for platform %r; reporting OS only", plat)

    def read(self) -> Reading:
        return Reading(os=self.os)


def psutil_batteries() -> list[BatteryReading]:
    """The portable basics psutil knows: charge percent and plugged state only.

    Used when an OS backend finds no native source. Health and cycles stay None:
    psutil does not read them, and we never invent them.
    """
    try:
        import psutil  # noqa: PLC0415 - optional at import time, present at run time

        info = psutil.sensors_battery()
    except (ImportError, OSError, RuntimeError, NotImplementedError) as exc:
        log.debug("psutil battery unavailable: %s", exc)
        return []
    if info is None:
        return []
    plugged = info.power_plugged
    status = "unknown"
    if plugged is False:
        status = "discharging"
    elif plugged and info.percent >= 100:
        status = "full"
    return [
        BatteryReading(
            name="battery",
            percent=round(float(info.percent), 1),
            plugged=plugged,
            status=status,
        )
    ]
