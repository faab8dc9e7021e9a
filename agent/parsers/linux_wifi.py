"""Pure parsers for the Linux Wi-Fi sources: `/proc/net/wireless` and `iw dev <if> link`."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

# Bounded so a garbage run of digits gives None rather than an infinite or absurd value.
_NUMBER = re.compile(r"-?[0-9]{1,9}(?:\.[0-9]{1,9})?(?![0-9])", re.ASCII)
_MAC = re.compile(r"(?:[0-9a-f]{2}:){5}[0-9a-f]{2}", re.ASCII | re.IGNORECASE)
_CONNECTED = re.compile(r"^Connected to (\S+)(?: \(on (\S+)\))?")
_ESCAPE = re.compile(r"(?:\\x[0-9a-fA-F]{2})+")
# Most recent first: a link whose rx is HE and tx is VHT is an 802.11ax link.
_GENERATIONS = (
    ("EHT-MCS", "802.11be"),
    ("HE-MCS", "802.11ax"),
    ("VHT-MCS", "802.11ac"),
    ("MCS", "802.11n"),
)
_NO_NOISE = -256  # see ProcWireless


@dataclass(frozen=True, slots=True)
class ProcWireless:
    """One interface line of /proc/net/wireless.

    The kernel prints level and noise as `u8 - 256` when the driver flags them as dBm
    (IW_QUAL_DBM, net/wireless/wext-proc.c), so a missing noise (0) shows as -256,
    and a positive level is a driver's relative scale (Raspberry Pi capture,
    Realtek rtw drivers), not dBm. The link quality is on the driver's scale, whose
    maximum /proc does not print: see `signal_pct`."""

    interface: str
    link_quality: float | None
    level_dbm: float | None
    noise_dbm: float | None

    @property
    def associated(self) -> bool:
        # cfg80211 prints no line at all when not associated; wext drivers print zeros.
        return self.level_dbm is not None or bool(self.link_quality)

    @property
    def signal_pct(self) -> float | None:
        """Link quality as a percentage of the driver's maximum, None when unknown.

        cfg80211 drivers that report dBm (iwlwifi, ath9k/10k/11k, mt76, rtw88/89,
        brcmfmac) print quality = clamp(dBm, -110, -40) + 110 with a maximum of 70
        (net/wireless/wext-compat.c: cfg80211_wireless_stats, max_qual.qual = 70);
        drivers with a relative signal (CFG80211_SIGNAL_TYPE_UNSPEC) and most old
        wext drivers use 100. So: 70 when the level is dBm and the quality fits in
        it, else 100; a quality above 100 has no known scale."""
        quality = self.link_quality
        if quality is None or quality < 0 or not self.associated:
            return None
        scale = 70.0 if self.level_dbm is not None and quality <= 70 else 100.0
        if quality > scale:
            return None
        return round(quality / scale * 100.0, 1)


def _dbm(token: str) -> float | None:
    value = _float(token)
    if value is None or not _NO_NOISE < value < 0:
        return None
    return value


def _float(token: str) -> float | None:
    # Values end with "." when the driver flagged them updated ("63.", "-47.").
    match = _NUMBER.match(token)
    return float(match.group()) if match else None


def parse_proc_net_wireless(text: str) -> list[ProcWireless]:
    """Interfaces listed in /proc/net/wireless, in file order ([] for header only)."""
    entries: list[ProcWireless] = []
    for line in text.splitlines():
        name, sep, rest = line.partition(":")
        fields = rest.split()
        name = name.strip()
        # Skip the two header lines ("Inter-| sta-|...", " face | tus |...").
        if not sep or not name or "|" in name or " " in name or len(fields) < 4:
            continue
        entries.append(
            ProcWireless(
                interface=name,
                link_quality=_float(fields[1]),
                level_dbm=_dbm(fields[2]),
                noise_dbm=_dbm(fields[3]),
            )
        )
    return entries


@dataclass(slots=True)
class IwLink:
    """What `iw dev <if> link` says about the current association."""

    connected: bool
    interface: str | None = None
    bssid: str | None = None
    ssid: str | None = None
    freq_mhz: float | None = None
    signal_dbm: float | None = None
    rx_rate_mbps: float | None = None
    tx_rate_mbps: float | None = None
    radio: str | None = None


def _unescape_ssid(value: str) -> str:
    # iw prints bytes outside printable ASCII (and edge spaces) as \xNN: a school SSID
    # "Lycée" arrives as "Lyc\xc3\xa9e" and must match the allowlist as UTF-8 text.
    def decode(match: re.Match[str]) -> str:
        raw = bytes(int(h, 16) for h in match.group().split("\\x")[1:])
        return raw.decode("utf-8", errors="replace")

    return _ESCAPE.sub(decode, value)


def _radio(*bitrates: str | None) -> str | None:
    for marker, radio in _GENERATIONS:
        if any(rate and marker in rate.split() for rate in bitrates):
            return radio
    return None  # legacy rates (802.11a/b/g) alone do not tell which


def _signal(value: str) -> float | None:
    signal = _float(value)
    # A received signal above 0 dBm is not physical: the station dump capture here
    # shows "signal avg: 93 dBm" from a buggy driver. Treat it as unknown.
    return signal if signal is not None and signal < 0 else None


def parse_iw_link(text: str) -> IwLink | None:
    """`iw dev <if> link` output, or None when it is neither connected nor not."""
    link: IwLink | None = None
    fields: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        match = _CONNECTED.match(line)
        if match:
            bssid = match.group(1)
            link = IwLink(
                True,
                interface=match.group(2),
                bssid=bssid.lower() if _MAC.fullmatch(bssid) else None,
            )
        elif line.startswith(("Not connected", "Authenticated with")):
            # Authenticated but not associated carries no traffic yet.
            link = IwLink(False)
        elif link is not None and link.connected:
            key, sep, value = line.partition(":")
            if sep:
                fields.setdefault(key.strip().lower(), value.strip())
    if link is None or not link.connected:
        return link
    _fill(link, fields)
    return link


def _fill(link: IwLink, fields: dict[str, str]) -> None:
    ssid = fields.get("ssid")
    link.ssid = _unescape_ssid(ssid) if ssid else None
    link.freq_mhz = _float(fields.get("freq", ""))
    link.signal_dbm = _signal(fields.get("signal", ""))
    rx, tx = fields.get("rx bitrate"), fields.get("tx bitrate")
    link.rx_rate_mbps = _float(rx or "")
    link.tx_rate_mbps = _float(tx or "")
    link.radio = _radio(rx, tx)


def band_ghz(freq_mhz: float | None) -> float | None:
    """2.4, 5 or 6 (GHz) for a channel centre frequency, None when unknown."""
    if freq_mhz is None:
        return None
    if 2400 <= freq_mhz < 2500:
        return 2.4
    if 4900 <= freq_mhz < 5925:
        return 5.0
    if 5925 <= freq_mhz <= 7125:
        return 6.0
    return None


# (lowest, highest centre frequency in MHz, base): channel = (freq - base) / 5, as the
# kernel's ieee80211_freq_khz_to_channel computes it.
_CHANNEL_RANGES = ((2412, 2472, 2407), (4910, 4980, 4000), (5005, 5920, 5000), (5955, 7115, 5950))
# Off-grid channels: 2.4 GHz channel 14 and 6 GHz channel 2.
_CHANNEL_SPECIAL = {2484: 14, 5935: 2}


def channel(freq_mhz: float | None) -> int | None:
    """IEEE channel number of a centre frequency, None when unknown."""
    if freq_mhz is None or not math.isfinite(freq_mhz):
        return None
    freq = round(freq_mhz)
    if freq in _CHANNEL_SPECIAL:
        return _CHANNEL_SPECIAL[freq]
    for low, high, base in _CHANNEL_RANGES:
        if low <= freq <= high:
            return (freq - base) // 5
    return None
