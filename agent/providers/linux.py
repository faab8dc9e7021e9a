"""Linux provider: sysfs power supplies, /proc/net/wireless and `iw dev <if> link`.

A thin reader: it only asks the `Source` for files and command outputs, and leaves
every decision to the pure parsers in `agent.parsers.linux_sysfs` / `linux_wifi`.
"""

from __future__ import annotations

import logging

from agent.model import BatteryReading, OsInfo, Reading, WifiReading
from agent.parsers.linux_sysfs import (
    BATTERY_ATTRS,
    MAINS_ATTRS,
    mains_online,
    parse_attribute,
    parse_uevent,
    supply_kind,
    to_battery,
)
from agent.parsers.linux_wifi import (
    IwLink,
    ProcWireless,
    band_ghz,
    channel,
    parse_iw_link,
    parse_proc_net_wireless,
)
from agent.sources import Source

log = logging.getLogger(__name__)

POWER_SUPPLY = "sys/class/power_supply"
PROC_WIRELESS = "proc/net/wireless"
SYS_NET = "sys/class/net"
IW_LINK = "iw-dev-link.txt"


class LinuxProvider:
    def __init__(self, source: Source, release: str | None = None) -> None:
        self.source = source
        self.os = OsInfo(platform="linux", release=release)

    def read(self) -> Reading:
        reading = Reading(os=self.os)
        # Parsers never raise; this guard only keeps one broken part (an odd sysfs
        # entry, a source error) from costing the other part its report.
        try:
            reading.batteries = self.read_batteries()
        except Exception:
            log.warning("reading Linux batteries failed", exc_info=True)
        try:
            reading.wifi = self.read_wifi()
        except Exception:
            log.warning("reading Linux Wi-Fi failed", exc_info=True)
        return reading

    # -- batteries ---------------------------------------------------------------

    def read_batteries(self) -> list[BatteryReading]:
        """System batteries sorted by name (BAT0, BAT1), with the adapter's plugged state.

        psutil is not used as a fallback here: on Linux it reads this same sysfs tree."""
        supplies = {name: self._read_supply(name) for name in self.source.list_dir(POWER_SUPPLY)}
        adapters = [mains_online(a) for a in supplies.values() if supply_kind(a) == "mains"]
        known = [online for online in adapters if online is not None]
        plugged = any(known) if known else None  # no adapter entry: unknown, not False
        readings = (to_battery(name, attrs, plugged) for name, attrs in sorted(supplies.items()))
        return [r for r in readings if r is not None]

    def _read_supply(self, name: str) -> dict[str, str]:
        """The supply's uevent, completed by the attribute files it lacks.

        The kernel's uevent lists every property the driver could read, so the files
        mostly matter for captures without a uevent (per-file dumps) and for older
        kernels whose uevent omits TYPE."""
        base = f"{POWER_SUPPLY}/{name}"
        text = self.source.read_text(f"{base}/uevent")
        attrs = parse_uevent(text) if text else {}
        self._fill(attrs, base, ("type", "scope"))
        kind = supply_kind(attrs)
        if kind is None and not attrs:
            # No uevent and no type file: try the battery files (a per-file capture).
            self._fill(attrs, base, BATTERY_ATTRS)
            kind = supply_kind(attrs)
        if kind == "battery":
            self._fill(attrs, base, BATTERY_ATTRS)
        elif kind == "mains":
            self._fill(attrs, base, MAINS_ATTRS)
        return attrs

    def _fill(self, attrs: dict[str, str], base: str, keys: tuple[str, ...]) -> None:
        for key in keys:
            if key in attrs:
                continue
            text = self.source.read_text(f"{base}/{key}")
            value = parse_attribute(text) if text is not None else None
            if value is not None:
                attrs[key] = value

    # -- Wi-Fi -------------------------------------------------------------------

    def read_wifi(self) -> WifiReading | None:
        text = self.source.read_text(PROC_WIRELESS)
        entries = parse_proc_net_wireless(text) if text else []
        proc = next((e for e in entries if e.associated), entries[0] if entries else None)
        interface = proc.interface if proc else self._sysfs_wifi_interface()
        link = self._iw_link(interface)
        if link is None and proc is None:
            return None if interface is None else WifiReading(interface, connected=False)
        return _to_wifi(interface, proc, link)

    def _sysfs_wifi_interface(self) -> str | None:
        # cfg80211 drops an interface from /proc/net/wireless while it is not
        # associated; sysfs still lists it, and phy80211/name is a readable file, so
        # captures keep it for replay.
        for name in self.source.list_dir(SYS_NET):
            if self.source.read_text(f"{SYS_NET}/{name}/phy80211/name") is not None:
                return name
        return None

    def _iw_link(self, interface: str | None) -> IwLink | None:
        if interface is not None:
            out = self.source.command(IW_LINK, ["iw", "dev", interface, "link"])
        elif not self.source.is_live:
            # A capture may hold the iw output alone; replay ignores argv. Live, iw
            # cannot be asked without an interface name.
            out = self.source.command(IW_LINK, ["iw", "dev"])
        else:
            return None
        return parse_iw_link(out) if out else None


def _to_wifi(interface: str | None, proc: ProcWireless | None, link: IwLink | None) -> WifiReading:
    """Merge both sources: iw knows the association, /proc/net/wireless the noise."""
    connected = link.connected if link is not None else bool(proc and proc.associated)
    wifi = WifiReading(interface=interface, connected=connected)
    if proc is not None and connected:
        wifi.rssi_dbm = proc.level_dbm
        wifi.noise_dbm = proc.noise_dbm
        wifi.signal_pct = proc.signal_pct  # the kernel's link quality, as a percentage
    if link is not None and link.connected:
        wifi.interface = interface or link.interface
        wifi.ssid = link.ssid
        wifi.bssid = link.bssid
        if link.signal_dbm is not None:
            wifi.rssi_dbm = link.signal_dbm
        wifi.band_ghz = band_ghz(link.freq_mhz)
        wifi.channel = channel(link.freq_mhz)
        wifi.rx_rate_mbps = link.rx_rate_mbps
        wifi.tx_rate_mbps = link.tx_rate_mbps
        wifi.radio = link.radio
    return wifi
