"""Parse the macOS Wi-Fi link: `wdutil info` (macOS 12.3+) and legacy `airport -I`.

Both print the associated link only. `airport -s` (the scan table) is deliberately
not a source: it lists the neighbours' networks, which the agent must not collect.
macOS 14+ prints SSID/BSSID as "<redacted>" without location consent: the link is
still reported, flagged `ssid_hidden_by_os`.
"""

from __future__ import annotations

import re

from agent.model import WifiReading
from agent.parsers.wifi_band import band_ghz, channel_band_ghz, parse_band_text

__all__ = ["channel_band_ghz", "normalize_bssid", "parse_airport_info", "parse_wdutil_info"]

_REDACTED = "<redacted>"
# wdutil: "    RSSI                 : -79 dBm"; section titles sit between rules of "—".
_WDUTIL_LINE = re.compile(r"^\s*([^\s:][^:]*?)\s*:\s?(.*)$")
# airport: right-aligned keys, "     agrCtlRSSI: -64"
_AIRPORT_LINE = re.compile(r"^\s*([^:]+?): ?(.*)$")
# Bounded digits: a huge number would become float("inf") and int() of it raises.
_NUMBER = re.compile(r"-?\d{1,15}(?:[.,]\d{1,15})?")
# wdutil channel "5g44/40", "2g1/20", "6g37/160": band digit, channel, width.
_WDUTIL_CHANNEL = re.compile(r"^\s*([256])g(\d{1,3})(?!\d)")
_BANDS_GHZ = {"2": 2.4, "5": 5.0, "6": 6.0}
# Other channel forms: "36 (5GHz, 80MHz)", "149,80", "36".
_CHANNEL_NUMBER = re.compile(r"^(\d{1,3})(?![\d.])")
_CHANNEL_MAX = 233  # 802.11 channel numbers run 1-233 (6 GHz is the highest)


def _number(raw: str | None) -> float | None:
    if raw is None:
        return None
    match = _NUMBER.search(raw)
    return float(match.group(0).replace(",", ".")) if match else None


def _nonzero(raw: str | None) -> float | None:
    """macOS prints 0 dBm / 0 Mbps as a placeholder when there is no link."""
    value = _number(raw)
    return value if value else None


def _radio(phy: str | None) -> str | None:
    """wdutil's PHY Mode "11ax" -> "802.11ax"; anything else is unknown."""
    if phy is None:
        return None
    match = re.fullmatch(r"\s*(?:802\.)?(11[a-z/]+)\s*", phy)
    return f"802.{match.group(1)}" if match else None


def normalize_bssid(raw: str | None) -> str | None:
    """Lower-case, zero-padded "aa:bb:..." so one access point always hashes the same:
    airport drops leading zeros ("58:b6:33:6:67:ac" is 58:b6:33:06:67:ac)."""
    if raw is None:
        return None
    parts = raw.strip().lower().split(":")
    if len(parts) != 6 or not all(re.fullmatch(r"[0-9a-f]{1,2}", p) for p in parts):
        return None
    if all(int(p, 16) == 0 for p in parts):
        return None  # 0:0:0:0:0:0 is airport's "no access point"
    return ":".join(p.zfill(2) for p in parts)


def _wdutil_channel(raw: str | None) -> tuple[int | None, float | None]:
    """(channel, band GHz) from wdutil's Channel value, in the forms macOS prints:
    "5g44/40" (band digit, channel, width), "36 (5GHz, 80MHz)" (band written out),
    "149,80" (airport style) or a bare "36". The band is derived from the number
    only when none is written (never 6 GHz: see `agent.parsers.wifi_band`)."""
    value = (raw or "").strip()
    prefixed = _WDUTIL_CHANNEL.match(value)
    if prefixed:
        return int(prefixed.group(2)), _BANDS_GHZ[prefixed.group(1)]
    number = _CHANNEL_NUMBER.match(value)
    if number is None:
        return None, None  # "None" when not associated
    channel = int(number.group(1))
    if not 0 < channel <= _CHANNEL_MAX:
        return None, None
    return channel, band_ghz(parse_band_text(value[number.end() :]), channel)


def _wifi_section(text: str) -> dict[str, str]:
    """Key/value lines of wdutil's WIFI section (other sections reuse key names)."""
    values: dict[str, str] = {}
    in_wifi = False
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and stripped.isupper() and ":" not in stripped:
            in_wifi = stripped == "WIFI"  # a section title: NETWORK, WIFI, BLUETOOTH...
            continue
        match = _WDUTIL_LINE.match(line) if in_wifi else None
        if match and match.group(1) not in values:
            values[match.group(1)] = match.group(2).strip()
    return values


def _ssid_fields(ssid: str | None, bssid: str | None) -> tuple[str | None, str | None, bool]:
    """(ssid, bssid, hidden_by_os). "None"/empty means no value in wdutil and airport."""
    hidden = _REDACTED in (ssid, bssid)
    ssid = None if ssid in (None, "", "None", _REDACTED) else ssid
    bssid = None if bssid == _REDACTED else normalize_bssid(bssid)
    return ssid, bssid, hidden


def parse_wdutil_info(text: str) -> WifiReading | None:
    """The link from `sudo wdutil info`, or None when there is no WIFI section
    (wdutil refused to run without root, or the text is something else)."""
    values = _wifi_section(text)
    if not values:
        return None
    interface = values.get("Interface Name") or None
    rssi = _nonzero(values.get("RSSI"))
    # Op Mode is "STA" when associated as a client, "None" when not; without the
    # line, a non-zero RSSI (0 dBm is the placeholder) is the only sign of a link.
    op_mode = values.get("Op Mode", "STA").upper()
    connected = op_mode == "STA" and rssi is not None
    if not connected:
        return WifiReading(interface=interface, connected=False)
    ssid, bssid, hidden = _ssid_fields(values.get("SSID"), values.get("BSSID"))
    channel, band = _wdutil_channel(values.get("Channel"))
    return WifiReading(
        interface=interface,
        connected=True,
        ssid=ssid,
        bssid=bssid,
        ssid_hidden_by_os=hidden,
        rssi_dbm=rssi,
        noise_dbm=_nonzero(values.get("Noise")),
        channel=channel,
        band_ghz=band,
        tx_rate_mbps=_nonzero(values.get("Tx Rate")),
        radio=_radio(values.get("PHY Mode")),
    )


def _airport_values(text: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in text.splitlines():
        match = _AIRPORT_LINE.match(line.rstrip("\r\n"))
        if match and match.group(1) not in values:
            values[match.group(1)] = match.group(2)
    return values


def parse_airport_info(text: str) -> WifiReading | None:
    """The link from `airport -I`, or None when the text has none of its keys.
    "AirPort: Off" (radio off) reads as not connected."""
    values = _airport_values(text)
    if "AirPort" in values:
        return WifiReading(interface=None, connected=False)
    if "agrCtlRSSI" not in values and "state" not in values:
        return None
    rssi = _nonzero(values.get("agrCtlRSSI"))
    # "running" is airport's associated state; "init"/"scanning" mean no link.
    state = values.get("state", "").strip()
    if rssi is None or (state and state != "running"):
        return WifiReading(interface=None, connected=False)
    ssid, bssid, hidden = _ssid_fields(values.get("SSID"), values.get("BSSID", "").strip())
    channel_raw = _number(values.get("channel", "").split(",")[0])
    # 802.11 channel numbers run 1-233 (6 GHz is the highest); anything else is noise.
    valid = channel_raw is not None and 0 < channel_raw <= _CHANNEL_MAX
    channel = int(channel_raw) if valid and channel_raw is not None else None
    return WifiReading(
        interface=None,  # airport -I does not name the interface
        connected=True,
        ssid=ssid,
        bssid=bssid,
        ssid_hidden_by_os=hidden,
        rssi_dbm=rssi,
        noise_dbm=_nonzero(values.get("agrCtlNoise")),
        channel=channel,
        band_ghz=channel_band_ghz(channel),
        tx_rate_mbps=_nonzero(values.get("lastTxRate")),
    )
