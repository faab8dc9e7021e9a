"""Parse `netsh wlan show interfaces` in any Windows display language.

Labels are translated (French "Canal", German "Kanal", Italian "Canale"...) and
their padding varies, so this parser never looks at a label. It relies on what does
not change with the language:

- every field is a `<label> : <value>` line, in a fixed order per Windows version;
- each interface block holds a GUID line (8-4-4-4-12 hex), two lines after the
  interface name; the first MAC address after it is the adapter's own address,
  the second one is the access point (BSSID), and the SSID is the line just above;
- values have recognisable shapes: `NN%` (signal; Turkish writes `%NN`), a negative
  integer (the Rssi line of Windows 11), `2,4 GHz` / `5 GHz` (band, comma or dot),
  `802.11xx` (radio type), plain numbers (channel, receive/transmit rates).

Known orders (checked on the en/fr/de/it/es captures under tests/replay/windows):
  Windows 7/10:  ... BSSID, network type, radio, auth, cipher, mode, CHANNEL, RX, TX,
                 SIGNAL, profile
  Windows 11:    ... AP BSSID, BAND, CHANNEL, [akm], network type, radio, auth,
                 cipher, mode, RX, TX, SIGNAL, [RSSI], profile, [QoS...]
so RX and TX are the two values just above the signal, and the channel follows the
band line when there is one, else sits just above RX. Without a band line (Windows
7/10) the band is derived from the channel (`agent.parsers.wifi_band`).

Windows 11 24H2 without location consent prints no block at all, only an error
that points at `ms-settings:privacy-location` (that URI is not translated).
"""

from __future__ import annotations

import re
from typing import NamedTuple

from agent.model import WifiReading
from agent.parsers.wifi_band import band_ghz, parse_band_text

_GUID = re.compile(r"^[0-9a-fx]{8}-[0-9a-fx]{4}-[0-9a-fx]{4}-[0-9a-fx]{4}-[0-9a-fx]{12}$", re.I)
# Hex pairs; captures shared on the internet often mask them ("zz:zz:..", "xx"), and a
# masked BSSID is still the BSSID line, so any two word characters are accepted.
_MAC = re.compile(r"^(?:[0-9a-z*]{2}[:-]){5}[0-9a-z*]{2}$", re.I)
_SIGNAL = re.compile(r"^(?:(\d{1,3})\s*%|%\s*(\d{1,3}))$", re.A)
_RSSI = re.compile(r"^-\d{1,3}$", re.A)
_BAND = re.compile(r"^(\d{1,2}(?:[.,]\d{1,3})?)\s*(?:GHz|ГГц)$", re.I | re.A)
_RADIO = re.compile(r"^802\.11[0-9a-z]{1,3}$", re.I)
_NUMBER = re.compile(r"^\d{1,5}(?:[.,]\d{1,3})?$", re.A)
_CHANNEL = re.compile(r"^\d{1,3}$", re.A)
_CHANNEL_MAX = 233  # highest 6 GHz channel number

# A hint only: connection is proven by a BSSID or a signal line, but a block that
# says "connected" in one of the fleet's languages is believed too (for builds that
# blank the other fields).
_CONNECTED_WORDS = frozenset(
    {
        "connected",
        "connecté",
        "connectée",
        "verbunden",
        "connessa",
        "connesso",
        "conectado",
        "conectada",
        "verbonden",
        "połączono",
        "подключено",
        "conectat",
    }
)
# The Settings URI in the location-consent error is the same in every language.
_LOCATION_DENIED = "privacy-location"


def _fields(text: str) -> list[str]:
    """The values of every `<label> : <value>` line, in order.

    The first colon separates label and value: labels never hold one, values may
    (MAC addresses, the Windows 11 "Connected Akm-cipher" line)."""
    out: list[str] = []
    for line in text.splitlines():
        label, sep, value = line.partition(":")
        if sep and label.strip():
            out.append(value.strip())
    return out


def _blocks(fields: list[str]) -> list[list[str]]:
    """One list of fields per interface, each starting at its name line (two lines
    above the GUID: name, description, GUID)."""
    starts = [i for i, f in enumerate(fields) if _GUID.match(f)]
    blocks = []
    for n, guid_at in enumerate(starts):
        end = starts[n + 1] - 2 if n + 1 < len(starts) else len(fields)
        blocks.append(fields[max(guid_at - 2, 0) : end])
    return blocks


def _number(value: str | None) -> float | None:
    if value is None or not _NUMBER.match(value):
        return None
    return float(value.replace(",", "."))


def _at(block: list[str], i: int | None) -> str | None:
    return block[i] if i is not None and 0 <= i < len(block) else None


def _find(block: list[str], pattern: re.Pattern[str], start: int = 0) -> int | None:
    for i in range(start, len(block)):
        if pattern.match(block[i]):
            return i
    return None


def _channel(block: list[str], band_at: int | None, signal_at: int | None) -> int | None:
    if band_at is not None:
        candidate = _at(block, band_at + 1)
    elif signal_at is not None:
        candidate = _at(block, signal_at - 3)  # old order: channel, RX, TX, signal
    else:
        candidate = None
    if candidate is None or not _CHANNEL.match(candidate):
        return None
    channel = int(candidate)
    return channel if 1 <= channel <= _CHANNEL_MAX else None


def _signal_pct(value: str | None) -> float | None:
    match = _SIGNAL.match(value or "")
    if match is None:
        return None
    pct = float(match.group(1) or match.group(2))
    return pct if pct <= 100 else None


class _Layout(NamedTuple):
    """Where each value sits in one interface block (None: not printed)."""

    bssid: int | None
    signal: int | None
    rssi: int | None
    band: int | None
    radio: int | None


def _locate(block: list[str]) -> _Layout:
    guid_at = _find(block, _GUID)
    own_mac_at = _find(block, _MAC, (guid_at or 0) + 1)
    signal_at = _find(block, _SIGNAL)
    return _Layout(
        bssid=_find(block, _MAC, own_mac_at + 1) if own_mac_at is not None else None,
        signal=signal_at,
        rssi=_find(block, _RSSI, signal_at) if signal_at is not None else None,
        band=_find(block, _BAND),
        radio=_find(block, _RADIO),
    )


def _is_connected(block: list[str], at: _Layout) -> bool:
    # Some drivers print "Signal : 0%" on a disconnected adapter: no proof of a link.
    heard = bool(_signal_pct(_at(block, at.signal)))
    said = any(value.lower() in _CONNECTED_WORDS for value in block)
    return at.bssid is not None or heard or said


def _parse_block(block: list[str]) -> WifiReading:
    name = _at(block, 0) or None
    at = _locate(block)
    if not _is_connected(block, at):
        return WifiReading(interface=name, connected=False)
    rssi = _at(block, at.rssi)
    channel = _channel(block, at.band, at.signal)
    rx_at = at.signal - 2 if at.signal is not None else None
    return WifiReading(
        interface=name,
        connected=True,
        # The SSID line is the one just above the BSSID in every known layout.
        ssid=(_at(block, at.bssid - 1) or None) if at.bssid is not None else None,
        bssid=_at(block, at.bssid),
        # Connected but no BSSID line: the OS withheld it.
        ssid_hidden_by_os=at.bssid is None,
        rssi_dbm=float(rssi) if rssi is not None else None,
        signal_pct=_signal_pct(_at(block, at.signal)),
        channel=channel,
        # Windows 10 prints no band line: the channel number tells (1-14 / 32-177).
        band_ghz=band_ghz(parse_band_text(_at(block, at.band)), channel),
        rx_rate_mbps=_number(_at(block, rx_at)),
        tx_rate_mbps=_number(_at(block, rx_at + 1 if rx_at is not None else None)),
        radio=_at(block, at.radio),
    )


def parse_netsh_interfaces(text: str) -> WifiReading | None:
    """The connected interface (else the first one), a location-withheld reading, or
    None when the text shows no Wi-Fi interface at all."""
    readings = [_parse_block(block) for block in _blocks(_fields(text))]
    reading = next((r for r in readings if r.connected), readings[0] if readings else None)
    if _LOCATION_DENIED not in text:
        return reading
    if reading is None:
        # Windows 11 24H2 without location consent: no field at all, not even the
        # state. `connected` has to be a bool; False here means "not known to be
        # connected", and ssid_hidden_by_os=True with no signal tells readers it is
        # unknown rather than a disconnection (so it must not count as one).
        return WifiReading(interface=None, connected=False, ssid_hidden_by_os=True)
    if reading.bssid is None:
        reading.ssid_hidden_by_os = True
    return reading
